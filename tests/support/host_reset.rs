//! One script that takes a bed host back to what `testbed up` made, for
//! every suite that changes hosts (tests/acceptance_vps_host.rs,
//! tests/host_bed.rs): cargo runs test binaries one after another on the
//! same hosts, so each suite starts from this state, not from whatever
//! the previous one left.

#![allow(dead_code)]

/// Run as root (the bed's user) with `sh -s`. Packages stay installed (a
/// test cannot uninstall what the image had), everything the provider
/// writes or backs up goes.
pub const RESET_HOST: &str = r#"nft delete table inet selfhost 2>/dev/null
systemctl disable selfhost-firewall.service >/dev/null 2>&1
if [ -e /etc/containerd/.selfhost-absent ]; then rm -f /etc/containerd/config.toml
elif [ -e /etc/containerd/.selfhost-orig ]; then cp -p /etc/containerd/.selfhost-orig /etc/containerd/config.toml; fi
rm -f /etc/containerd/.selfhost-orig /etc/containerd/.selfhost-absent
rm -rf /var/lib/selfhost /etc/nftables.d/selfhost.nft /etc/systemd/system/selfhost-firewall.service \
  /etc/ssh/sshd_config.d/00-selfhost.conf /etc/ssh/sshd_config.d/90-test-verbose.conf \
  /etc/ssh/sshd_config.d/0-tamper.conf \
  /etc/sysctl.d/99-selfhost.conf /etc/modules-load.d/selfhost.conf /etc/sudoers.d/selfhost-* \
  /etc/apt/apt.conf.d/99test-blackhole
for f in /etc/ssh/sshd_config.d/*.conf; do [ -e "$f" ] && sed -i 's/^#selfhost-disabled# //' "$f"; done
systemctl daemon-reload
systemctl reload ssh
# sshd re-executes on reload: wait until it listens again.
for i in $(seq 50); do ss -ltn | grep -q ':22 ' && break; sleep 0.1; done
exit 0"#;
