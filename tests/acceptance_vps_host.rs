//! Acceptance tests of `selfhost_vps_host` and `selfhost_host_facts`: real
//! Terraform/OpenTofu CLIs, this build of the provider through a filesystem
//! mirror, and the test bed's real systemd hosts over real OpenSSH. What the
//! provider did is checked independently, with the system `ssh` client.
//!
//! The bed's hosts are containers (systemd-nspawn) sharing the machine's
//! kernel, like container-based VPS: `/proc/sys` is read-only outside
//! `net.*`, kernel modules cannot be loaded and there is no swap. The
//! provider reports those as warnings; the tests check that too.
//!
//! Run with the bed up: `eval "$(testbed/testbed env)"; cargo test --test acceptance_vps_host -- --nocapture`.

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sshd.rs"]
mod sshd;
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use support::bed::{Bed, Host, REQUIRED_PROVIDERS, bed, hosts_lock};
use support::{Cli, Workdir, clis_or_skip, for_each_cli, line_of, resource_change, state_resources, state_values};

const H: &str = "selfhost_vps_host.h";

/// The canonical host of DESIGN.md, on a bed host.
fn canonical_host(bed: &Bed, host: &Host, extra: &str) -> String {
    format!(
        r#"{provider}
resource "selfhost_vps_host" "h" {{
  ssh_connection {{
    host = "{addr}"
    port = {port}
  }}
  hostname       = "cp-1"
  timezone       = "Europe/Paris"
  packages       = ["curl", "less"]
  swap           = false
  kernel_modules = ["overlay", "br_netfilter"]
  sysctl = {{
    "net.ipv4.ip_forward" = "1"
  }}
  ssh_hardening {{
    password_authentication = false
    permit_root_login       = "prohibit-password"
  }}
  firewall {{
    allow {{ port = "22" }}
    allow {{ port = "80" }}
    allow {{ port = "443" }}
    allow {{
      port    = "6443"
      sources = ["10.0.0.0/8"]
    }}
    allow {{
      port     = "30000-32767"
      protocol = "tcp"
    }}
  }}
  admin_user {{
    name            = "ops"
    authorized_keys = ["{pubkey}"]
    sudo            = true
  }}
  container_runtime = "containerd"
  {extra}
}}

output "ssh" {{
  value = selfhost_vps_host.h.ssh
}}
"#,
        provider = bed.provider_block(),
        addr = host.addr,
        port = host.port,
        pubkey = bed.public_key,
    )
}

/// Bring a bed host back to a fresh VPS as far as this provider is
/// concerned: none of its files, table, manifest or drop-ins. Scenarios
/// start from here, whatever ran on the host before.
fn reset_host(bed: &Bed, host: &Host) {
    bed.sh(host, support::host_reset::RESET_HOST);
}

fn expect_empty_plan(wd: &Workdir) {
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "the plan must be empty (exit 0; 2 = changes)\n{o}");
}

fn apply(wd: &Workdir) -> support::Outcome {
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"])
}

/// The top-level attributes whose values differ between `before` and
/// `after` of a planned update.
fn changed_attributes(change: &Json) -> BTreeSet<String> {
    let before = &change["change"]["before"];
    let after = &change["change"]["after"];
    let unknown = &change["change"]["after_unknown"];
    let mut out = BTreeSet::new();
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        for (k, bv) in b {
            let now_unknown = unknown.get(k).is_some_and(|u| u == &Json::Bool(true));
            if a.get(k) != Some(bv) && !now_unknown {
                out.insert(k.clone());
            }
        }
    }
    out
}

/// What the host really is, read with plain ssh.
fn assert_host_is_canonical(bed: &Bed, host: &Host) {
    let report = bed.sh(
        host,
        r#"
echo "hostname=$(hostname)"
echo "localtime=$(readlink /etc/localtime)"
echo "curl=$(dpkg-query -W -f='${Status}' curl 2>/dev/null)"
echo "forward=$(cat /proc/sys/net/ipv4/ip_forward)"
echo "sshd_password=$(sshd -T 2>/dev/null | grep -i '^passwordauthentication ' | cut -d' ' -f2)"
echo "sshd_root=$(sshd -T 2>/dev/null | grep -i '^permitrootlogin ' | cut -d' ' -f2)"
echo "ops_keys=$(cat ~ops/.ssh/authorized_keys 2>/dev/null | wc -l)"
echo "ops_sudo=$(sudo -l -U ops 2>/dev/null | grep -c NOPASSWD)"
echo "containerd=$(dpkg-query -W -f='${Status}' containerd 2>/dev/null)"
echo "systemd_cgroup=$(grep -c 'SystemdCgroup = true' /etc/containerd/config.toml 2>/dev/null)"
nft list table inet selfhost
"#,
    );
    for want in [
        "hostname=cp-1",
        "localtime=/usr/share/zoneinfo/Europe/Paris",
        "curl=install ok installed",
        "forward=1",
        "sshd_password=no",
        "sshd_root=without-password",
        "ops_keys=1",
        "ops_sudo=1",
        "containerd=install ok installed",
        "systemd_cgroup=1",
        "drop comment \"selfhost-default-drop\"",
        "tcp dport 22 ",
        "tcp dport 30000-32767 ",
        "ip saddr 10.0.0.0/8 tcp dport 6443 ",
    ] {
        let found = report
            .lines()
            .any(|l| l.contains(want) || l.trim_start().starts_with(want));
        assert!(found, "the host does not show {want:?}:\n{report}");
    }
}

#[test]
fn vps_host_canonical_lifecycle_drift_and_import() {
    let test = "vps_host_canonical_lifecycle_drift_and_import";
    let Some(bed) = bed(test) else { return };
    let _lock = hosts_lock();
    let host = bed.hosts[0].clone();
    for_each_cli(test, |cli| {
        reset_host(&bed, &host);
        let wd = Workdir::new(cli, "host-canonical");
        let config = canonical_host(&bed, &host, "");
        wd.write("main.tf", &config);
        wd.init();
        let o = apply(&wd);
        // The bed's hosts cannot load modules: a warning on that attribute
        // (its line in main.tf), not a failure.
        let out = o.output();
        let at = format!("main.tf line {}", line_of(&config, "kernel_modules ="));
        assert!(
            out.contains("Warning: Not applied on this host") && out.contains(&at),
            "the kernel_modules warning at {at}:\n{o}"
        );
        expect_empty_plan(&wd);
        assert_host_is_canonical(&bed, &host);

        let show = wd.show_json(None);
        let values = state_values(&show, H);
        assert_eq!(values["ssh"]["host"], host.addr.as_str());
        assert_eq!(values["ssh"]["user"], bed.user.as_str());
        assert!(
            values["ssh"]["host_key"]
                .as_str()
                .unwrap_or_default()
                .starts_with("ssh-"),
            "{values:#}"
        );
        assert_eq!(values["id"].as_str().map(str::len), Some(32), "machine id: {values:#}");
        assert!(
            values["os"].as_str().unwrap_or_default().contains("Debian"),
            "{values:#}"
        );

        // Tamper by hand: exactly these four aspects must show as drift.
        bed.sh(
            &host,
            r#"sysctl -qw net.ipv4.ip_forward=0
nft flush table inet selfhost
sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/' /etc/ssh/sshd_config.d/00-selfhost.conf
: > ~ops/.ssh/authorized_keys"#,
        );
        let o = wd.run(&[
            "plan",
            "-detailed-exitcode",
            "-input=false",
            "-no-color",
            "-out=drift.plan",
        ]);
        assert_eq!(o.code, Some(2), "drift must show in the plan\n{o}");
        let plan = wd.show_json(Some("drift.plan"));
        let change = resource_change(&plan, H);
        assert_eq!(change["change"]["actions"], serde_json::json!(["update"]), "{change:#}");
        let changed = changed_attributes(change);
        let expected: BTreeSet<String> = ["sysctl", "firewall", "ssh_hardening", "admin_user"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            changed, expected,
            "drift must be exactly the tampered aspects: {change:#}"
        );
        apply(&wd);
        expect_empty_plan(&wd);
        assert_host_is_canonical(&bed, &host);

        // Import the hardened host into a fresh state: the plan is empty.
        let wd2 = Workdir::new(cli, "host-import");
        // No outputs here: Terraform 1.0 counts a new output as a change.
        let config = canonical_host(&bed, &host, "");
        wd2.write("main.tf", config.split("\noutput \"ssh\"").next().unwrap_or(&config));
        wd2.init();
        let id = format!("{}@{}:{}", bed.user, host.addr, host.port);
        wd2.ok(&["import", "-input=false", "-no-color", H, &id]);
        expect_empty_plan(&wd2);
        let imported = wd2.show_json(None);
        assert_eq!(state_values(&imported, H)["id"], values["id"]);

        // Destroy with the default on_destroy = "keep": the host stays hardened.
        wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        assert!(state_resources(&wd.show_json(None)).is_empty());
        assert_host_is_canonical(&bed, &host);
    });
}

#[test]
fn vps_host_firewall_that_closes_ssh_is_refused_at_plan_time() {
    let test = "vps_host_firewall_that_closes_ssh_is_refused_at_plan_time";
    for_each_cli(test, |cli| {
        let wd = Workdir::new(cli, "host-lockout");
        let config = format!(
            r#"{REQUIRED_PROVIDERS}
provider "selfhost" {{}}

resource "selfhost_vps_host" "h" {{
  ssh_connection {{
    host = "192.0.2.10"
  }}
  firewall {{
    allow {{ port = "80" }}
    allow {{
      port    = "22"
      protocol = "udp"
    }}
  }}
}}
"#
        );
        wd.write("main.tf", &config);
        wd.init();
        let o = wd.run(&["validate", "-no-color"]);
        assert_ne!(o.code, Some(0), "{o}");
        let out = o.output();
        assert!(out.contains("Firewall would lock out SSH"), "{o}");
        assert!(out.contains("tcp port 22") || out.contains("port 22"), "{o}");
        // The rule that covers port 22 with the wrong protocol is the one named.
        assert!(
            out.contains(&format!("main.tf line {}", line_of(&config, "protocol = \"udp\""))),
            "{o}"
        );
        // Bad values name their attribute.
        let bad = format!(
            r#"{REQUIRED_PROVIDERS}
provider "selfhost" {{}}

resource "selfhost_vps_host" "h" {{
  ssh_connection {{
    host = "192.0.2.10"
  }}
  timezone = "Mars/Olympus"
  sysctl   = {{ "net.ipv4.ip forward" = "1" }}
  packages = ["curl; rm -rf /"]
  admin_user {{
    name            = "Bad User"
    authorized_keys = ["-----BEGIN OPENSSH PRIVATE KEY-----"]
  }}
  firewall {{
    allow {{ port = "22" }}
    allow {{
      port    = "70000"
      sources = ["10.0.0.1/8"]
    }}
  }}
}}
"#
        );
        wd.write("main.tf", &bad);
        let o = wd.run(&["validate", "-no-color"]);
        assert_ne!(o.code, Some(0), "{o}");
        let out = o.output();
        for (summary, needle) in [
            ("Invalid time zone", "timezone ="),
            ("Invalid sysctl key", "sysctl   ="),
            ("Invalid package name", "packages ="),
            ("Invalid user name", "name            ="),
            ("Invalid public key", "authorized_keys ="),
            ("Invalid port", "port    = \"70000\""),
            ("Invalid CIDR", "sources ="),
        ] {
            assert!(out.contains(summary), "missing {summary:?}:\n{o}");
            assert!(
                out.contains(&format!("main.tf line {}", line_of(&bad, needle))),
                "{summary} must point at line {} ({needle}):\n{o}",
                line_of(&bad, needle)
            );
        }
        // The validator's own words (the CLI wraps them), not the
        // configuration's snippet.
        let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains("this is a PRIVATE key; authorized_keys takes the public key"),
            "{o}"
        );
    });
}

/// The newest CLI of the bed: the scenarios below need one CLI, not all.
fn newest_cli(test: &str) -> Option<&'static Cli> {
    clis_or_skip(test).iter().max_by_key(|c| c.version_tuple())
}

#[test]
fn vps_host_host_key_change_is_a_hard_error_naming_both_fingerprints() {
    let test = "vps_host_host_key_change_is_a_hard_error_naming_both_fingerprints";
    let Some(bed) = bed(test) else { return };
    let Some(cli) = newest_cli(test) else { return };
    let _lock = hosts_lock();
    let host = bed.hosts[1].clone();
    let wd = Workdir::new(cli, "host-key");
    wd.write(
        "main.tf",
        &format!(
            r#"{provider}
resource "selfhost_vps_host" "h" {{
  ssh_connection {{
    host = "{addr}"
  }}
  sysctl = {{ "net.ipv4.ip_forward" = "1" }}
}}
"#,
            provider = bed.provider_block(),
            addr = host.addr
        ),
    );
    wd.init();
    apply(&wd);
    expect_empty_plan(&wd);
    let old = bed.fingerprint(&host);
    // Swap every host key for new ones (kept aside to restore after).
    bed.sh(
        &host,
        r#"set -e
mkdir -p /root/hostkeys.keep
cp -a /etc/ssh/ssh_host_* /root/hostkeys.keep/
rm -f /etc/ssh/ssh_host_*
ssh-keygen -q -A
systemctl restart ssh"#,
    );
    let restore = || {
        // The bed's known_hosts holds the old key: restore it with the
        // provider-independent client that accepts only... the new key.
        let new_known = tempfile::NamedTempFile::new().expect("temp");
        let scan = std::process::Command::new("ssh-keyscan")
            .args(["-p", &host.port.to_string(), &host.addr])
            .output()
            .expect("ssh-keyscan");
        std::fs::write(new_known.path(), &scan.stdout).expect("write");
        let tmp_bed = Bed {
            known_hosts: new_known.path().display().to_string(),
            ..bed.clone()
        };
        tmp_bed.sh(
            &host,
            "rm -f /etc/ssh/ssh_host_* && cp -a /root/hostkeys.keep/* /etc/ssh/ && rm -rf /root/hostkeys.keep && systemctl restart ssh",
        );
    };
    let o = wd.run(&["plan", "-input=false", "-no-color"]);
    let new = {
        let scan = std::process::Command::new("ssh-keyscan")
            .args(["-t", "ed25519", "-p", &host.port.to_string(), &host.addr])
            .output()
            .expect("ssh-keyscan");
        let f = tempfile::NamedTempFile::new().expect("temp");
        std::fs::write(f.path(), &scan.stdout).expect("write");
        let fp = std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(f.path())
            .output()
            .expect("ssh-keygen");
        String::from_utf8_lossy(&fp.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    };
    restore();
    assert_ne!(o.code, Some(0), "a changed host key must fail the plan\n{o}");
    let out = o.output();
    assert!(out.contains("SSH host key mismatch"), "{o}");
    assert!(
        out.contains(&old),
        "the error must name the recorded fingerprint {old}\n{o}"
    );
    assert!(
        out.contains(&new),
        "the error must name the seen fingerprint {new}\n{o}"
    );
    // With the old keys back, all is well again.
    expect_empty_plan(&wd);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
}

/// A machine-side nftables rule that drops this machine's SSH packets to
/// one host; removed on drop.
struct DirectPathBlocked {
    table: &'static str,
}

impl DirectPathBlocked {
    fn new(addr: &str) -> Self {
        let table = "selfhost_test_bastion";
        let rules = format!(
            "table inet {table} {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n  ip daddr {addr} tcp dport 22 drop\n }}\n}}\n"
        );
        let status = std::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().expect("stdin").write_all(rules.as_bytes())?;
                c.wait()
            })
            .expect("run nft");
        assert!(status.success(), "nft -f failed");
        DirectPathBlocked { table }
    }
}

impl Drop for DirectPathBlocked {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "inet", self.table])
            .status();
    }
}

#[test]
fn vps_host_through_a_bastion_when_the_host_is_unreachable_directly() {
    let test = "vps_host_through_a_bastion_when_the_host_is_unreachable_directly";
    let Some(bed) = bed(test) else { return };
    let Some(cli) = newest_cli(test) else { return };
    let _lock = hosts_lock();
    let (jump, target) = (bed.hosts[1].clone(), bed.hosts[2].clone());
    let wd = Workdir::new(cli, "host-bastion");
    wd.write(
        "main.tf",
        &format!(
            r#"{provider}
resource "selfhost_vps_host" "h" {{
  ssh_connection {{
    host            = "{target}"
    connect_timeout = "20s"
    bastion {{
      host = "{jump}"
    }}
  }}
  timezone = "Europe/Paris"
  sysctl   = {{ "net.ipv4.ip_forward" = "1" }}
}}
"#,
            provider = bed.provider_block(),
            target = target.addr,
            jump = jump.addr
        ),
    );
    wd.init();
    {
        let _blocked = DirectPathBlocked::new(&target.addr);
        // The control: plain ssh cannot reach the target directly now.
        let direct = bed.ssh(&target, "true");
        assert!(
            !direct.status.success(),
            "the direct path must be blocked for this test"
        );
        apply(&wd);
        expect_empty_plan(&wd);
    }
    // The target's sshd saw the provider come from the jump host's address.
    let log = bed.sh(
        &target,
        "journalctl -u ssh --no-pager -o cat | grep 'Accepted publickey' | tail -n 20",
    );
    assert!(
        log.contains(&format!("from {} ", jump.addr)),
        "the target must have been reached through {}:\n{log}",
        jump.addr
    );
    let tz = bed.sh(&target, "readlink /etc/localtime");
    assert!(tz.contains("Europe/Paris"), "{tz}");
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
}

/// sshd's own log of one host since `since` (a Unix time), without the
/// lines of the session that reads it.
fn sshd_log_since(bed: &Bed, host: &Host, since: u64) -> Vec<String> {
    let out = bed.sh(
        host,
        &format!(
            "echo \"self=$(echo $SSH_CONNECTION | cut -d' ' -f2)\"; journalctl -u ssh --no-pager -o cat --since @{since}"
        ),
    );
    let own_port = out
        .lines()
        .find_map(|l| l.strip_prefix("self="))
        .unwrap_or_default()
        .trim()
        .to_owned();
    out.lines()
        .filter(|l| !l.starts_with("self="))
        .filter(|l| own_port.is_empty() || !l.contains(&format!(" port {own_port} ")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn vps_host_three_hosts_in_parallel_and_one_connection_per_host_per_refresh() {
    let test = "vps_host_three_hosts_in_parallel_and_one_connection_per_host_per_refresh";
    let Some(bed) = bed(test) else { return };
    let Some(cli) = newest_cli(test) else { return };
    let _lock = hosts_lock();
    // sshd logs each exec ("Starting session: command ...") at VERBOSE.
    for h in &bed.hosts {
        reset_host(&bed, h);
        bed.sh(
            h,
            "echo 'LogLevel VERBOSE' > /etc/ssh/sshd_config.d/90-test-verbose.conf && systemctl reload ssh && for i in $(seq 50); do ss -ltn | grep -q ':22 ' && break; sleep 0.1; done",
        );
    }
    let mut config = bed.provider_block();
    for (i, h) in bed.hosts.iter().enumerate() {
        config.push_str(&format!(
            r#"
resource "selfhost_vps_host" "h{i}" {{
  ssh_connection {{
    host = "{addr}"
  }}
  timezone = "UTC"
  sysctl   = {{ "net.ipv4.ip_forward" = "1" }}
}}
"#,
            addr = h.addr
        ));
    }
    let wd = Workdir::new(cli, "host-parallel");
    wd.write("main.tf", &config);
    wd.init();
    apply(&wd);
    std::thread::sleep(Duration::from_millis(1100)); // journalctl --since has 1 s resolution
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let started = Instant::now();
    let o = wd.run(&[
        "plan",
        "-refresh-only",
        "-detailed-exitcode",
        "-input=false",
        "-no-color",
    ]);
    // Terraform 1.10+ may exit 2 from a refresh-only plan that found
    // nothing (hashicorp/terraform#36403, #37406: "No changes" printed, no
    // drift in the plan); the printed verdict is what users see.
    let no_changes = o.stdout.contains("No changes.") && !o.stdout.contains("changed outside of");
    assert!(
        o.code == Some(0) || (o.code == Some(2) && no_changes),
        "a no-op refresh finds nothing\n{o}"
    );
    eprintln!("refresh of 3 hosts took {:.1?}", started.elapsed());
    for h in &bed.hosts {
        let log = sshd_log_since(&bed, h, since);
        let accepted = log.iter().filter(|l| l.contains("Accepted publickey")).count();
        let execs = log.iter().filter(|l| l.contains("Starting session: command")).count();
        assert_eq!(
            accepted,
            1,
            "{}: one SSH connection per refresh:\n{}",
            h.addr,
            log.join("\n")
        );
        assert_eq!(execs, 1, "{}: one facts exec per refresh:\n{}", h.addr, log.join("\n"));
    }
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    for h in &bed.hosts {
        bed.sh(
            h,
            "rm -f /etc/ssh/sshd_config.d/90-test-verbose.conf && systemctl reload ssh",
        );
    }
}

/// A TCP listener on the bed's host-side address that accepts and never
/// answers: an apt proxy pointed at it makes a package install hang, so
/// the provider is reliably inside a step. Stops when dropped.
struct BlackHole {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl BlackHole {
    fn new(addr: &str) -> Self {
        let listener = std::net::TcpListener::bind((addr, 0)).expect("bind black hole");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(300);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok((conn, _)) = listener.accept() {
                    held.push(conn);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        BlackHole { port, stop }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn vps_host_sshd_killed_mid_apply_fails_cleanly_and_reapply_converges() {
    let test = "vps_host_sshd_killed_mid_apply_fails_cleanly_and_reapply_converges";
    let Some(bed) = bed(test) else { return };
    let Some(cli) = newest_cli(test) else { return };
    let _lock = hosts_lock();
    let host = bed.hosts[1].clone();
    reset_host(&bed, &host);
    // The host reaches the machine at the bridge's address (the apt proxy's).
    let Some(proxy) = support::bed::bed_var(test, "SELFHOST_TEST_APT_PROXY") else {
        return;
    };
    let gateway = proxy
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let hole = BlackHole::new(&gateway);
    bed.sh(
        &host,
        &format!(
            "apt-get remove -y -q cowsay >/dev/null 2>&1; apt-get clean; hostname tb-before-kill; echo tb-before-kill > /etc/hostname
echo 'Acquire::http::Proxy \"http://{gateway}:{}\";' > /etc/apt/apt.conf.d/99test-blackhole",
            hole.port
        ),
    );
    let wd = Workdir::new(cli, "host-killed");
    wd.write(
        "main.tf",
        &format!(
            r#"{provider}
resource "selfhost_vps_host" "h" {{
  ssh_connection {{
    host            = "{addr}"
    connect_timeout = "30s"
  }}
  hostname = "killed-1"
  packages = ["cowsay"]
}}
"#,
            provider = bed.provider_block(),
            addr = host.addr
        ),
    );
    wd.init();
    let killer = {
        let bed = bed.clone();
        let host = host.clone();
        std::thread::spawn(move || {
            // Wait until apt runs (the hostname step is done; the packages
            // step hangs on the black hole), then kill every sshd.
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                let out = bed.ssh(&host, "hostname; pgrep -x apt-get >/dev/null && echo apt-running; true");
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                if text.contains("killed-1") && text.contains("apt-running") {
                    let _ = bed.ssh(&host, "systemd-run --collect sh -c 'sleep 1; pkill -9 -x sshd'");
                    return true;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            false
        })
    };
    let o = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(killer.join().unwrap_or(false), "the packages step never started\n{o}");
    // Exit 1: the CLI ended the apply itself with an error (a run killed at
    // the step's time limit has no exit code).
    assert_eq!(
        o.code,
        Some(1),
        "apply must fail by itself when sshd dies under it\n{o}"
    );
    let out = o.output();
    assert!(!out.contains("panic") && !out.contains("plugin did not respond"), "{o}");
    assert!(out.contains("Lost the host") || out.contains("Cannot reach"), "{o}");
    // State keeps what was done: the hostname step finished.
    let show = wd.show_json(None);
    let values = state_values(&show, H);
    assert_eq!(values["hostname"], "killed-1", "{values:#}");
    drop(hole);
    // sshd is back (systemd restarts it); with apt working again the
    // re-apply converges and the plan after it is empty.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !bed.ssh(&host, "true").status.success() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    bed.sh(
        &host,
        "pkill -x apt-get; rm -f /etc/apt/apt.conf.d/99test-blackhole; true",
    );
    apply(&wd);
    expect_empty_plan(&wd);
    let status = bed.sh(&host, "dpkg-query -W -f='${Status}' cowsay");
    assert_eq!(status.trim(), "install ok installed");
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
}

/// The files and settings `selfhost_vps_host` touches, as text.
fn touched_snapshot(bed: &Bed, host: &Host) -> String {
    bed.sh(
        host,
        r#"for f in /etc/hostname /etc/hosts /etc/timezone /etc/fstab /etc/sysctl.d/99-selfhost.conf \
  /etc/modules-load.d/selfhost.conf /etc/ssh/sshd_config.d/00-selfhost.conf \
  /etc/apt/apt.conf.d/20auto-upgrades /etc/sudoers.d/selfhost-ops2 /etc/nftables.d/selfhost.nft /etc/nftables.conf; do
  if [ -e "$f" ]; then echo "== $f"; cat "$f"; else echo "== $f (absent)"; fi
done
echo "== localtime $(readlink /etc/localtime)"
echo "== hostname $(hostname)"
echo "== forward $(cat /proc/sys/net/ipv4/ip_forward)"
echo "== sshd"; sshd -T 2>/dev/null | grep -Ei '^(passwordauthentication|permitrootlogin|x11forwarding) '
echo "== nft"; nft list table inet selfhost 2>&1 | head -n 3
echo "== ops2 keys"; cat ~ops2/.ssh/authorized_keys 2>/dev/null
exit 0
"#,
    )
}

#[test]
fn vps_host_on_destroy_revert_leaves_the_host_as_it_was() {
    let test = "vps_host_on_destroy_revert_leaves_the_host_as_it_was";
    let Some(bed) = bed(test) else { return };
    let Some(cli) = newest_cli(test) else { return };
    let _lock = hosts_lock();
    let host = bed.hosts[2].clone();
    reset_host(&bed, &host);
    let before = touched_snapshot(&bed, &host);
    let wd = Workdir::new(cli, "host-revert");
    wd.write(
        "main.tf",
        &format!(
            r#"{provider}
resource "selfhost_vps_host" "h" {{
  ssh_connection {{
    host = "{addr}"
  }}
  hostname = "revert-1"
  timezone = "America/New_York"
  sysctl   = {{ "net.ipv4.ip_forward" = "0" }}
  ssh_hardening {{
    password_authentication = false
    x11_forwarding          = false
  }}
  firewall {{
    allow {{ port = "22" }}
  }}
  admin_user {{
    name            = "ops2"
    authorized_keys = ["{pubkey}"]
    sudo            = true
  }}
  on_destroy = "revert"
}}
"#,
            provider = bed.provider_block(),
            addr = host.addr,
            pubkey = bed.public_key
        ),
    );
    wd.init();
    apply(&wd);
    expect_empty_plan(&wd);
    let during = touched_snapshot(&bed, &host);
    assert_ne!(before, during, "the apply changed nothing?");
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    let after = touched_snapshot(&bed, &host);
    // The user account and its key stay (documented: users are kept); the
    // rest is exactly as before.
    let strip = |s: &str| s.split("== ops2 keys").next().unwrap_or_default().to_owned();
    assert_eq!(strip(&before), strip(&after), "revert must restore what was there");
    bed.sh(&host, "userdel -r ops2 2>/dev/null; true");
}

#[test]
fn host_facts_data_source_reads_a_real_host() {
    let test = "host_facts_data_source_reads_a_real_host";
    let Some(bed) = bed(test) else { return };
    let _lock = hosts_lock();
    let host = bed.hosts[0].clone();
    for_each_cli(test, |cli| {
        let wd = Workdir::new(cli, "host-facts");
        wd.write(
            "main.tf",
            &format!(
                r#"{provider}
data "selfhost_host_facts" "h" {{
  ssh_connection {{
    host = "{addr}"
  }}
}}

output "facts" {{
  value = {{
    machine_id = data.selfhost_host_facts.h.machine_id
    kernel     = data.selfhost_host_facts.h.kernel
    cpus       = data.selfhost_host_facts.h.cpus
    host_key   = data.selfhost_host_facts.h.host_key
    os         = data.selfhost_host_facts.h.os
  }}
}}
"#,
                provider = bed.provider_block(),
                addr = host.addr
            ),
        );
        wd.init();
        apply(&wd);
        let o = wd.ok(&["output", "-json", "facts"]);
        let facts: Json = serde_json::from_str(&o.stdout).expect("facts JSON");
        let real = bed.sh(&host, "cat /etc/machine-id; uname -r; nproc");
        let mut lines = real.lines();
        assert_eq!(facts["machine_id"], lines.next().unwrap_or_default(), "{facts:#}");
        assert_eq!(facts["kernel"], lines.next().unwrap_or_default(), "{facts:#}");
        assert_eq!(
            facts["cpus"].as_f64().map(|c| c as u64).map(|c| c.to_string()),
            lines.next().map(str::to_owned),
            "{facts:#}"
        );
        assert!(
            facts["host_key"].as_str().unwrap_or_default().starts_with("ssh-"),
            "{facts:#}"
        );
    });
}

/// The private key's body lines: none may appear in a log, an output or
/// the state.
fn key_material(bed: &Bed) -> Vec<String> {
    let text = std::fs::read_to_string(&bed.key).unwrap_or_else(|e| panic!("read {}: {e}", bed.key));
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 20)
        .map(str::to_owned)
        .collect();
    assert!(!lines.is_empty(), "{} has no key body", bed.key);
    lines
}

fn assert_no_key_in(what: &str, text: &str, key: &[String]) {
    for line in key {
        assert!(!text.contains(line.as_str()), "the private key leaked into {what}");
    }
}

/// A small host: quick to apply, and one step whose INFO line is known.
fn small_host(bed: &Bed, host: &Host, provider_ssh: &str, connection_extra: &str, forward: &str) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "selfhost" {{
  ssh {{
    user = "{user}"
    {provider_ssh}
  }}
}}

resource "selfhost_vps_host" "h" {{
  ssh_connection {{
    host = "{addr}"
    port = {port}
    {connection_extra}
  }}
  sysctl = {{
    "net.ipv4.ip_forward" = "{forward}"
  }}
  firewall {{
    allow {{ port = "22" }}
    allow {{ port = "443" }}
  }}
}}
"#,
        user = bed.user,
        addr = host.addr,
        port = host.port,
    )
}

/// `TF_LOG=TRACE` shows where an apply is (one INFO line per step and
/// host) and never the private key, whether it comes from the provider's
/// `ssh {}` or, on CLIs with write-only attributes, from
/// `ssh_connection.private_key_wo` (then refreshes use the agent).
#[test]
fn vps_host_trace_logs_show_progress_and_never_the_private_key() {
    let test = "vps_host_trace_logs_show_progress_and_never_the_private_key";
    let Some(bed) = bed(test) else { return };
    let _lock = hosts_lock();
    let host = bed.hosts[1].clone();
    let key = key_material(&bed);
    for_each_cli(test, |cli| {
        reset_host(&bed, &host);
        let mut wd = Workdir::new(cli, "host-trace");
        let log = wd.path.join("trace.log");
        let log_path = log.display().to_string();
        let key_file = format!("private_key = file(\"{}\")", bed.key);
        wd.write("main.tf", &small_host(&bed, &host, &key_file, "", "1"));
        wd.init();
        wd.set_env("TF_LOG", "TRACE");
        wd.set_env("TF_LOG_PATH", &log_path);
        let mut outputs = vec![apply(&wd)];
        outputs.push(wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]));
        assert_eq!(outputs[1].code, Some(0), "the plan must be empty\n{}", outputs[1]);

        let log_text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("read {log_path}: {e}"));
        // Progress names the host as its connection target (user@host:port).
        let target = format!("{}@{}:{}", bed.user, host.addr, host.port);
        for line in [
            format!("[INFO]  provider.terraform-provider-selfhost_v0.1.0: {target}: firewall: 2 allow rules applied"),
            format!("[INFO]  provider.terraform-provider-selfhost_v0.1.0: {target}: sysctl: net.ipv4.ip_forward=1"),
        ] {
            assert!(log_text.contains(&line), "no INFO progress line `{line}` in {log_path}");
        }
        assert_no_key_in(&format!("the TRACE log {log_path}"), &log_text, &key);
        for o in &outputs {
            assert_no_key_in(&format!("the output of `{}`", o.command), &o.output(), &key);
        }
        let state = std::fs::read_to_string(wd.path.join("terraform.tfstate")).expect("state file");
        assert_no_key_in("the state", &state, &key);

        // Write-only: Terraform 1.11+ and OpenTofu 1.11+.
        if cli.version_tuple() < (1, 11, 0) {
            eprintln!(
                "{}: no write-only attributes; private_key_wo is not exercised",
                cli.label()
            );
            return;
        }
        let agent = sshd::Agent::start();
        agent.add(std::path::Path::new(&bed.key));
        wd.set_env("SSH_AUTH_SOCK", &agent.socket.display().to_string());
        let wo = format!("private_key_wo = file(\"{}\")", bed.key);
        wd.write("main.tf", &small_host(&bed, &host, "agent = true", &wo, "0"));
        std::fs::remove_file(&log).expect("remove the first log");
        let mut outputs = vec![apply(&wd)];
        outputs.push(wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]));
        assert_eq!(outputs[1].code, Some(0), "the plan must be empty\n{}", outputs[1]);
        assert_eq!(bed.sh(&host, "cat /proc/sys/net/ipv4/ip_forward").trim(), "0");
        let show = wd.show_json(None);
        let values = state_values(&show, H);
        assert!(
            values["ssh_connection"][0]["private_key_wo"].is_null(),
            "write-only: null in state\n{values:#}"
        );
        let log_text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("read {log_path}: {e}"));
        assert_no_key_in(&format!("the TRACE log {log_path}"), &log_text, &key);
        for o in &outputs {
            assert_no_key_in(&format!("the output of `{}`", o.command), &o.output(), &key);
        }
        let state = std::fs::read_to_string(wd.path.join("terraform.tfstate")).expect("state file");
        assert_no_key_in("the state", &state, &key);
    });
}
