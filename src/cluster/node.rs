//! What one node needs besides the bundle: its configuration files, the
//! kubeadm prerequisites, the probe a refresh runs, and how its output
//! reads. Pure: the resource runs these over SSH.

use super::containerd;
use super::kubeadm;
pub use super::probe::{Probe, parse_probe, readyz_probe};
use super::spec::ClusterSpec;
use crate::network::Hostname;

/// containerd's configuration file.
pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
/// The drop-in for containerd.service (only when a setting needs one).
pub const CONTAINERD_DROP_IN: &str = "/etc/systemd/system/containerd.service.d/10-selfhost.conf";
/// kubeadm's prerequisites for every node, kept across reboots.
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/60-selfhost-k8s.conf";
/// The kernel modules kubeadm needs (overlay, br_netfilter), loaded at boot.
pub const MODULES_FILE: &str = "/etc/modules-load.d/selfhost-k8s.conf";
/// Where the bundle is unpacked on a node.
pub const BUNDLE_DIR: &str = "/var/lib/selfhost/k8s-bundle";
/// The admin kubeconfig kubeadm writes on the control plane.
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
/// kubeadm's configuration files (0600: the join file holds a token).
pub const INIT_CONFIG: &str = "/etc/kubeadm/init.json";
/// The `UpgradeConfiguration` of an in-place upgrade (no secret in it).
pub const UPGRADE_CONFIG: &str = "/etc/kubeadm/upgrade.json";
/// The kubeadm join configuration of a worker.
pub const JOIN_CONFIG: &str = "/etc/kubeadm/join.json";
/// Makes the kubelet's `cgroupRoot` before each kubelet start (only when
/// one is set: with the cgroupfs driver the kubelet requires it to exist in
/// every hierarchy and does not create it; a host's systemd may trim it).
pub const CGROUP_ROOT_SCRIPT: &str = "/usr/local/lib/selfhost/kubelet-cgroup-root";
/// The kubelet drop-in that runs [`CGROUP_ROOT_SCRIPT`] before each start.
pub const CGROUP_ROOT_DROP_IN: &str = "/etc/systemd/system/kubelet.service.d/20-selfhost-cgroup-root.conf";
/// The CNI manifest applied from the control plane.
pub const CNI_MANIFEST: &str = "/etc/kubeadm/cni.yaml";

const SYSCTL: &str = "net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\n";
const MODULES: &str = "overlay\nbr_netfilter\n";

/// A file to write on a node: path, contents, mode.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFile {
    /// Absolute path on the node.
    pub path: &'static str,
    /// The file's full contents.
    pub contents: String,
    /// The file's permission bits, e.g. `0o600`.
    pub mode: u32,
}

/// The configuration files node `node` gets before the bundle is installed,
/// and the files it must NOT have (a drop-in no setting asks for any more).
pub fn files(spec: &ClusterSpec, node: &Hostname, sandbox_image: &str) -> (Vec<NodeFile>, Vec<&'static str>) {
    let mut write = vec![
        NodeFile {
            path: CONTAINERD_CONFIG,
            contents: containerd::config_toml(spec, sandbox_image),
            mode: 0o644,
        },
        NodeFile {
            path: SYSCTL_FILE,
            contents: SYSCTL.to_owned(),
            mode: 0o644,
        },
        NodeFile {
            path: MODULES_FILE,
            contents: MODULES.to_owned(),
            mode: 0o644,
        },
    ];
    let mut remove = Vec::new();
    match containerd::unit_drop_in(spec) {
        Some(text) => write.push(NodeFile {
            path: CONTAINERD_DROP_IN,
            contents: text,
            mode: 0o644,
        }),
        None => remove.push(CONTAINERD_DROP_IN),
    }
    match spec.cgroup_root_for(node) {
        Some(root) => {
            write.push(NodeFile {
                path: CGROUP_ROOT_SCRIPT,
                contents: cgroup_root_script(&root),
                mode: 0o755,
            });
            write.push(NodeFile {
                path: CGROUP_ROOT_DROP_IN,
                contents: format!("[Service]\nExecStartPre={CGROUP_ROOT_SCRIPT}\n"),
                mode: 0o644,
            });
        }
        None => remove.extend([CGROUP_ROOT_SCRIPT, CGROUP_ROOT_DROP_IN]),
    }
    write.push(NodeFile {
        path: kubeadm::KUBELET_PATCH,
        contents: kubeadm::kubelet_patch(spec, node),
        mode: 0o644,
    });
    (write, remove)
}

/// Create `root` (a validated cgroup path) in every cgroup v1 hierarchy, or
/// in the unified hierarchy on a cgroup v2 host; a new cpuset gets its
/// parent's CPUs and memory nodes (an empty one takes no tasks).
fn cgroup_root_script(root: &str) -> String {
    format!(
        r#"#!/bin/sh
# Written by terraform-provider-selfhost (selfhost_k8s_cluster).
root={root}
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
  exec mkdir -p "/sys/fs/cgroup$root"
fi
for c in /sys/fs/cgroup/*/; do
  [ -e "${{c}}cgroup.procs" ] && [ ! -e "${{c}}cgroup.controllers" ] || continue
  d="${{c%/}}$root"
  [ -d "$d" ] && continue
  mkdir -p "$d" || exit 1
  if [ -e "$d/cpuset.cpus" ]; then
    cat "${{c}}cpuset.cpus" >"$d/cpuset.cpus" && cat "${{c}}cpuset.mems" >"$d/cpuset.mems" || exit 1
  fi
done
"#,
        root = crate::shell::quote(root)
    )
}

/// The directories the files above live in.
pub const CONFIG_DIRS: &[&str] = &[
    "/usr/local/lib/selfhost",
    "/etc/systemd/system/kubelet.service.d",
    "/etc/containerd",
    "/etc/systemd/system/containerd.service.d",
    "/etc/sysctl.d",
    "/etc/modules-load.d",
    kubeadm::PATCHES_DIR,
    BUNDLE_DIR,
];

/// Load the modules where the host can (a container-based VPS cannot, and
/// has them from its host kernel) and set the sysctls kubeadm checks.
pub fn prerequisites_script() -> String {
    format!(
        "set -eu\nfor m in overlay br_netfilter; do modprobe \"$m\" 2>/dev/null || true; done\nsysctl -q -p {SYSCTL_FILE}\n"
    )
}

/// One exec that tells a node's state as `key=value` lines.
pub fn probe_script() -> String {
    format!(
        r#"set -u
echo "hostname=$(hostname)"
systemctl is-active --quiet containerd && echo containerd=active || echo containerd=inactive
systemctl is-active --quiet kubelet && echo kubelet=active || echo kubelet=inactive
[ -e /etc/kubernetes/kubelet.conf ] && echo joined=yes || echo joined=no
if [ -e {ADMIN_CONF} ]; then
  echo initialized=yes
{readyz}else
  echo initialized=no
fi
if command -v kubeadm >/dev/null 2>&1; then echo "kubeadm=$(kubeadm version -o short 2>/dev/null)"; else echo kubeadm=; fi
{security}{facts}"#,
        security = super::apiserver::probe_lines(),
        readyz = readyz_probe(&format!("kubectl --kubeconfig {ADMIN_CONF}")),
        facts = super::facts::SCRIPT,
    )
}

/// Start what a node runs (after a reboot, or stopped by hand).
pub fn start_services_script() -> &'static str {
    "set -e\nsystemctl enable --now containerd >/dev/null 2>&1\nsystemctl enable kubelet >/dev/null 2>&1\nsystemctl restart kubelet\n"
}

/// Undo a kubeadm init or join that failed half-way (static pods, certs,
/// kubelet.conf), so the next apply starts it again from scratch instead
/// of taking a half-made node for a finished one.
const ROLLBACK: &str = "kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock >/dev/null 2>&1";

/// `kubeadm init` from [`INIT_CONFIG`] (the configuration carries the
/// preflight errors to ignore); rolled back when it fails. The token
/// kubeadm would print is not.
pub fn init_script() -> String {
    format!("if ! kubeadm init --skip-token-print --config {INIT_CONFIG}; then\n  {ROLLBACK}\n  exit 1\nfi\n")
}

/// `kubeadm join` from [`JOIN_CONFIG`]; rolled back when it fails. The
/// file holds the token and is removed afterwards, whatever the outcome.
pub fn join_script() -> String {
    format!(
        "trap 'rm -f {JOIN_CONFIG}' EXIT\nif ! kubeadm join --config {JOIN_CONFIG}; then\n  {ROLLBACK}\n  exit 1\nfi\n"
    )
}

/// A short-lived bootstrap token for one join, printed as kubeadm's join
/// command (the resource parses it; it never reaches a log).
pub const TOKEN_SCRIPT: &str = "set -e\nkubeadm token create --ttl 15m --print-join-command\n";

/// `kubectl` on the control plane with the admin kubeconfig, its
/// arguments quoted.
pub fn kubectl(args: &[&str]) -> String {
    let mut s = format!("kubectl --kubeconfig {ADMIN_CONF}");
    for a in args {
        s.push(' ');
        s.push_str(&crate::shell::quote(a));
    }
    s.push('\n');
    s
}

/// Drain `node` and delete its Node object (before its host is reset),
/// with the control plane's `kubectl` (kubeadm's [`kubectl`], or k3s's).
pub fn drain_script(node: &Hostname, kubectl: fn(&[&str]) -> String) -> String {
    let n = node.as_str();
    format!(
        "set -e\n{}{}",
        kubectl(&[
            "drain",
            n,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--force",
            "--timeout=120s"
        ]),
        kubectl(&["delete", "node", n, "--ignore-not-found", "--wait=true"])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::spec::{ImageSource, NodeSettings};
    use crate::network as validate;

    #[test]
    fn scripts_are_valid_sh_and_names_are_quoted() {
        for s in [
            probe_script(),
            prerequisites_script(),
            init_script(),
            join_script(),
            start_services_script().to_owned(),
            TOKEN_SCRIPT.to_owned(),
        ] {
            crate::shell::assert_valid_sh(&s);
        }
        let node = validate::hostname("tb-k8s2").expect("name");
        let d = drain_script(&node, kubectl);
        crate::shell::assert_valid_sh(&d);
        assert!(d.contains("'drain' 'tb-k8s2'"), "{d}");
    }

    #[test]
    fn probe_output_reads_back() {
        let p = parse_probe(
            "hostname=tb-k8s1\ncontainerd=active\nkubelet=inactive\njoined=yes\ninitialized=yes\nreadyz=ok\nkubeadm=v1.36.3\n",
        );
        assert_eq!(
            p,
            Probe {
                hostname: "tb-k8s1".into(),
                containerd_active: true,
                kubelet_active: false,
                joined: true,
                initialized: true,
                installed_version: "v1.36.3".into(),
                k3s_unit: String::new(),
                api_ready: true,
                facts: crate::cluster::facts::HostFacts::parse(""),
                security: Default::default(),
            }
        );
        assert_eq!(
            parse_probe("garbage\n"),
            Probe {
                facts: crate::cluster::facts::HostFacts::parse(""),
                ..Probe::default()
            }
        );
    }

    #[test]
    fn files_follow_the_settings() {
        let node = validate::hostname("n1").expect("name");
        let spec = |settings| {
            ClusterSpec::new(
                "v1.36.3",
                "10.0.0.1",
                "10.244.0.0/16",
                "10.96.0.0/12",
                ImageSource::Bundle,
                settings,
            )
            .expect("valid")
        };
        let (write, remove) = files(&spec(NodeSettings::default()), &node, "registry.k8s.io/pause:3.10.2");
        let paths: Vec<&str> = write.iter().map(|f| f.path).collect();
        assert_eq!(
            paths,
            [CONTAINERD_CONFIG, SYSCTL_FILE, MODULES_FILE, kubeadm::KUBELET_PATCH]
        );
        assert_eq!(remove, [CONTAINERD_DROP_IN, CGROUP_ROOT_SCRIPT, CGROUP_ROOT_DROP_IN]);
        let bed = NodeSettings {
            containerd_oom_score_adjust: Some(0),
            cgroup_root: Some("/{node}".into()),
            ..NodeSettings::default()
        };
        let (write, remove) = files(&spec(bed), &node, "p");
        assert_eq!(write.len(), 7);
        assert!(remove.is_empty());
        assert!(write[4].contents.contains("root='/n1'\n"), "{}", write[4].contents);
        crate::shell::assert_valid_sh(&write[4].contents);
        assert_eq!(
            write[6].contents,
            "{\"cgroupDriver\":\"systemd\",\"cgroupRoot\":\"/n1\"}\n"
        );
    }
}
