//! What a host is, as far as its node settings care: the facts one exec
//! reads (appended to every node probe, and run alone at plan time), and
//! the pure choice facts → node settings that `selfhost_k8s_cluster` makes
//! for every `node_settings` attribute the user leaves unset.
//!
//! A container-based host (systemd-nspawn, LXC, OpenVZ) shares its kernel,
//! its cgroup tree and its disk with others; each setting it gets differs
//! from the VPS default because of one fact, named beside the rule below
//! (testbed/README.md found each of them by a failure). A VM gets exactly
//! [`NodeSettings::default`].

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::spec::{CgroupDriver, NodeSettings};

/// The facts script: `fact.<name>=<value>` lines, no input, nothing
/// changed on the host (the oom_score_adj test runs in a subshell that
/// exits at once; the /proc/sys test writes back the value it read).
pub const SCRIPT: &str = r#"echo "fact.container=$(systemd-detect-virt -c 2>/dev/null || true)"
echo "fact.vm=$(systemd-detect-virt -v 2>/dev/null || true)"
echo "fact.cgroup_fs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null || true)"
echo "fact.root_fs=$(stat -fc %T / 2>/dev/null || true)"
f=/proc/sys/net/netfilter/nf_conntrack_max
if [ -w "$f" ] && (cat "$f" >"$f") 2>/dev/null; then echo fact.proc_sys=writable; else echo fact.proc_sys=read-only; fi
a=$(cat /proc/self/oom_score_adj 2>/dev/null || echo 0)
if [ "$a" -le -1000 ] 2>/dev/null || (echo $((a - 1)) >/proc/self/oom_score_adj) 2>/dev/null; then echo fact.oom_lower=yes; else echo fact.oom_lower=no; fi
if [ -e /proc/config.gz ] || [ -e "/boot/config-$(uname -r)" ]; then echo fact.kernel_config=yes; else echo fact.kernel_config=no; fi
echo "fact.init=$(cat /proc/1/comm 2>/dev/null || true)"
echo "fact.init_cgroup=$(awk -F: '$2 == "name=systemd" || $2 == "" {print $3; exit}' /proc/1/cgroup 2>/dev/null || true)"
"#;

/// What [`SCRIPT`] found. Parsed leniently: a missing line reads as the
/// VPS answer, so an odd host gets the defaults, never a guess.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// `systemd-detect-virt -c`: "systemd-nspawn", "lxc", "openvz", … or "none".
    pub container: String,
    /// `systemd-detect-virt -v`: "kvm", "xen", … or "none" (a container
    /// on a VM reports the VM here).
    pub vm: String,
    /// File system type of /sys/fs/cgroup: "cgroup2fs" (v2) or "tmpfs" (v1).
    pub cgroup_fs: String,
    /// File system type of `/`: "overlayfs" inside many containers.
    pub root_fs: String,
    /// /proc/sys can be written (it is read-only outside the machine's
    /// initial namespaces).
    pub proc_sys_writable: bool,
    /// A process may lower its oom_score_adj (needs CAP_SYS_RESOURCE).
    pub oom_lowerable: bool,
    /// A kernel configuration is readable (/proc/config.gz or
    /// /boot/config-<release>), which kubeadm's SystemVerification reads.
    pub kernel_config: bool,
    /// PID 1's command name ("systemd" on every supported distribution).
    pub init: String,
    /// PID 1's cgroup path (systemd hierarchy): "/init.scope" when the host
    /// has a cgroup tree of its own; "/../init.scope" when the mounted tree
    /// is a shared one above the host's own cgroup.
    pub init_cgroup: String,
    /// The script's lines were all there.
    pub complete: bool,
}

const KEYS: &[&str] = &[
    "container",
    "vm",
    "cgroup_fs",
    "root_fs",
    "proc_sys",
    "oom_lower",
    "kernel_config",
    "init",
    "init_cgroup",
];

impl HostFacts {
    /// Read [`SCRIPT`]'s lines out of `stdout` (other lines are ignored:
    /// the node probes print theirs beside them).
    pub fn parse(stdout: &str) -> HostFacts {
        let mut f = HostFacts {
            proc_sys_writable: true,
            oom_lowerable: true,
            kernel_config: true,
            ..HostFacts::default()
        };
        let mut seen = 0;
        for line in stdout.lines() {
            let Some((k, v)) = line.strip_prefix("fact.").and_then(|l| l.split_once('=')) else {
                continue;
            };
            let v = v.trim();
            let v = if v.len() > 200 { "" } else { v };
            if KEYS.contains(&k) {
                seen += 1;
            }
            match k {
                "container" => f.container = v.to_owned(),
                "vm" => f.vm = v.to_owned(),
                "cgroup_fs" => f.cgroup_fs = v.to_owned(),
                "root_fs" => f.root_fs = v.to_owned(),
                "proc_sys" => f.proc_sys_writable = v != "read-only",
                "oom_lower" => f.oom_lowerable = v != "no",
                "kernel_config" => f.kernel_config = v != "no",
                "init" => f.init = v.to_owned(),
                "init_cgroup" => f.init_cgroup = v.to_owned(),
                _ => {}
            }
        }
        f.complete = seen == KEYS.len();
        f
    }

    /// A container shares its kernel with others (systemd-nspawn, LXC,
    /// OpenVZ, docker, …).
    pub fn is_container(&self) -> bool {
        !matches!(self.container.as_str(), "" | "none")
    }

    /// The cgroup tree is v1 (legacy or hybrid): /sys/fs/cgroup is a tmpfs
    /// of per-controller hierarchies rather than the unified cgroup2fs.
    pub fn cgroup_v1(&self) -> bool {
        !self.cgroup_fs.is_empty() && self.cgroup_fs != "cgroup2fs"
    }

    /// The root file system is an overlay (overlayfs cannot be stacked on it).
    pub fn overlay_root(&self) -> bool {
        matches!(self.root_fs.as_str(), "overlayfs" | "overlay" | "aufs")
    }

    /// The cgroup tree mounted here is not the host's own: PID 1 sits
    /// outside its cgroup namespace's root ("/.." in its path), so the tree
    /// under /sys/fs/cgroup is shared with other hosts (the test bed binds
    /// the machine's tree into every host).
    pub fn shared_cgroup_tree(&self) -> bool {
        self.init_cgroup.starts_with("/..")
    }

    /// The host's systemd can manage cgroups for the kubelet: PID 1 is
    /// systemd and the tree is its own.
    pub fn systemd_owns_cgroups(&self) -> bool {
        (self.init.is_empty() || self.init == "systemd") && !self.shared_cgroup_tree()
    }

    /// "container (systemd-nspawn)", "vm (kvm)" or "physical".
    pub fn profile(&self) -> String {
        if self.is_container() {
            format!("container ({})", self.container)
        } else if !matches!(self.vm.as_str(), "" | "none") {
            format!("vm ({})", self.vm)
        } else {
            "physical".to_owned()
        }
    }

    /// The facts as the plan shows them.
    pub fn summary(&self) -> BTreeMap<String, String> {
        let or_none = |s: &str| if s.is_empty() { "none".to_owned() } else { s.to_owned() };
        let yes = |b: bool, y: &str, n: &str| if b { y.to_owned() } else { n.to_owned() };
        BTreeMap::from([
            ("container".to_owned(), or_none(&self.container)),
            ("vm".to_owned(), or_none(&self.vm)),
            (
                "cgroup".to_owned(),
                if self.cgroup_v1() { "v1" } else { "v2" }.to_owned(),
            ),
            ("root_fs".to_owned(), or_none(&self.root_fs)),
            (
                "proc_sys".to_owned(),
                yes(self.proc_sys_writable, "writable", "read-only"),
            ),
            (
                "oom_score_adj".to_owned(),
                yes(self.oom_lowerable, "can be lowered", "cannot be lowered"),
            ),
            (
                "kernel_config".to_owned(),
                yes(self.kernel_config, "visible", "not visible"),
            ),
            (
                "cgroup_tree".to_owned(),
                yes(self.shared_cgroup_tree(), "shared", "own"),
            ),
        ])
    }

    /// The node settings these facts call for; each difference from the
    /// VPS default ([`NodeSettings::default`]) follows from one fact.
    pub fn node_settings(&self) -> NodeSettings {
        let mut s = NodeSettings::default();
        // overlayfs cannot be mounted on an overlay root ("invalid argument").
        if self.overlay_root() {
            s.snapshotter = "native".to_owned();
        }
        // runc asks for a negative oom_score_adj (-998) for the pod sandbox
        // and dies when it cannot set it; systemd does not start a unit
        // whose OOMScoreAdjust (-999 upstream) cannot be set.
        if !self.oom_lowerable {
            s.restrict_oom_score_adj = true;
            s.containerd_oom_score_adjust = Some(0);
        }
        // The kubelet's systemd driver asks systemd for kubepods.slice; a
        // host whose systemd does not own the tree cannot give it one.
        if !self.systemd_owns_cgroups() {
            s.cgroup_driver = CgroupDriver::Cgroupfs;
        }
        // Hosts sharing one cgroup tree would share /kubepods: each node
        // gets its own subtree, named after the node.
        if self.shared_cgroup_tree() {
            s.cgroup_root = Some("/{node}".to_owned());
        }
        // kubelet >= 1.35 refuses cgroup v1 unless told otherwise, and
        // kubeadm's SystemVerification then fails "unless explicitly skipped".
        if self.cgroup_v1() {
            s.kubelet_extra.insert("failCgroupV1".into(), json!(false));
            s.ignore_preflight_errors.insert("SystemVerification".into());
        }
        // SystemVerification reads the kernel configuration.
        if !self.kernel_config {
            s.ignore_preflight_errors.insert("SystemVerification".into());
        }
        // A container's disk is its host machine's: percentages of it say
        // nothing about this node, and the image GC (from 85%) would delete
        // images an air-gapped node cannot pull again.
        if self.is_container() {
            s.kubelet_extra.insert("imageGCHighThresholdPercent".into(), json!(100));
            s.kubelet_extra.insert("imageGCLowThresholdPercent".into(), json!(99));
            s.kubelet_extra.insert(
                "evictionHard".into(),
                json!({
                    "memory.available": "100Mi",
                    "nodefs.available": "2Gi",
                    "nodefs.inodesFree": "5%",
                    "imagefs.available": "2Gi",
                    "imagefs.inodesFree": "5%",
                }),
            );
        }
        // kube-proxy writes nf_conntrack_max and the conntrack timeouts
        // unless told to leave the kernel alone.
        if !self.proc_sys_writable {
            s.kube_proxy_extra.insert(
                "conntrack".into(),
                json!({"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"}),
            );
        }
        s
    }
}

/// `kubelet_extra`/`kube_proxy_extra` as the JSON text the attributes
/// take, or `None` when empty.
pub fn json_text(m: &BTreeMap<String, Value>) -> Option<String> {
    if m.is_empty() {
        None
    } else {
        Some(Value::Object(m.clone().into_iter().collect()).to_string())
    }
}

/// Recorded on the test bed's host tb3-k8s1 (a systemd-nspawn container
/// on a KVM machine, 2026-12-06) with [`SCRIPT`].
#[cfg(test)]
pub const BED_HOST_FIXTURE: &str = "fact.container=systemd-nspawn
fact.vm=kvm
fact.cgroup_fs=tmpfs
fact.root_fs=overlayfs
fact.proc_sys=read-only
fact.oom_lower=no
fact.kernel_config=yes
fact.init=systemd
fact.init_cgroup=/../init.scope
";

/// A typical KVM VPS (Debian 12 / Ubuntu 24.04): no container, the
/// unified cgroup tree, an ext4 root, root may do everything.
#[cfg(test)]
pub const KVM_VPS_FIXTURE: &str = "fact.container=none
fact.vm=kvm
fact.cgroup_fs=cgroup2fs
fact.root_fs=ext2/ext3
fact.proc_sys=writable
fact.oom_lower=yes
fact.kernel_config=yes
fact.init=systemd
fact.init_cgroup=/init.scope
";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn checks(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_script_is_valid_sh() {
        crate::shell::assert_valid_sh(SCRIPT);
    }

    #[test]
    fn a_vm_gets_exactly_the_vps_defaults() {
        let f = HostFacts::parse(KVM_VPS_FIXTURE);
        assert!(f.complete);
        assert_eq!(f.profile(), "vm (kvm)");
        assert_eq!(f.node_settings(), NodeSettings::default());
    }

    #[test]
    fn the_bed_host_gets_what_the_bed_needs() {
        let f = HostFacts::parse(BED_HOST_FIXTURE);
        assert!(f.complete);
        assert_eq!(f.profile(), "container (systemd-nspawn)");
        let s = f.node_settings();
        assert_eq!(s.snapshotter, "native");
        assert!(s.restrict_oom_score_adj);
        assert_eq!(s.containerd_oom_score_adjust, Some(0));
        assert_eq!(s.cgroup_driver, CgroupDriver::Cgroupfs);
        assert_eq!(s.cgroup_root.as_deref(), Some("/{node}"));
        assert_eq!(s.ignore_preflight_errors, checks(&["SystemVerification"]));
        assert_eq!(s.kubelet_extra.get("failCgroupV1"), Some(&json!(false)));
        assert_eq!(s.kubelet_extra.get("imageGCHighThresholdPercent"), Some(&json!(100)));
        assert_eq!(s.kubelet_extra["evictionHard"]["nodefs.available"], json!("2Gi"));
        assert_eq!(s.kube_proxy_extra["conntrack"]["maxPerCore"], json!(0));
        assert_eq!(f.summary()["cgroup_tree"], "shared");
    }

    /// An unprivileged LXC container with its own cgroup namespace on a
    /// cgroup v2 machine: no cgroupRoot, systemd keeps the driver.
    #[test]
    fn a_container_with_its_own_cgroup_tree_keeps_systemd() {
        let f = HostFacts::parse(
            "fact.container=lxc\nfact.vm=none\nfact.cgroup_fs=cgroup2fs\nfact.root_fs=zfs\nfact.proc_sys=read-only\nfact.oom_lower=no\nfact.kernel_config=no\nfact.init=systemd\nfact.init_cgroup=/init.scope\n",
        );
        let s = f.node_settings();
        assert_eq!(s.snapshotter, "overlayfs");
        assert_eq!(s.cgroup_driver, CgroupDriver::Systemd);
        assert_eq!(s.cgroup_root, None);
        assert!(!s.kubelet_extra.contains_key("failCgroupV1"));
        assert_eq!(s.ignore_preflight_errors, checks(&["SystemVerification"]));
        assert!(s.kubelet_extra.contains_key("evictionHard"));
    }

    /// Missing or garbled lines read as the VPS answer, never as a guess.
    #[test]
    fn unreadable_output_gives_the_defaults() {
        let f = HostFacts::parse("garbage\nfact.unknown=1\n");
        assert!(!f.complete);
        assert_eq!(f.node_settings(), NodeSettings::default());
        assert_eq!(f.profile(), "physical");
    }
}
