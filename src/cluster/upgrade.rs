//! In-place upgrades, the pure part: which `version` changes a cluster can
//! take (kubeadm's skew policy: one minor up at a time, or any patch up;
//! never down), what is left to do on a cluster that may have stopped
//! half-way ([`steps`]), and the kubeadm/kubectl scripts. The resource asks
//! at plan time, refuses the rest at `version`, and runs the steps.

use super::node::UPGRADE_CONFIG;
use super::spec::Version;
use crate::network::Hostname;

/// The annotation a node carries while an upgrade has it cordoned, so an
/// apply that resumes knows the cordon is the upgrade's to lift (and one
/// an operator set by hand is left alone).
pub const CORDON_ANNOTATION: &str = "selfhost.dev/upgrading-to";

/// An allowed change of Kubernetes release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upgrade {
    /// Same minor, a later patch (`v1.36.1` → `v1.36.3`).
    Patch,
    /// The next minor (`v1.35.4` → `v1.36.3`).
    Minor,
}

/// Whether a cluster running `from` can be upgraded in place to `to`;
/// `Ok(None)` when they are the same release. The error says why not and
/// what to do instead.
pub fn check(from: &Version, to: &Version) -> Result<Option<Upgrade>, String> {
    let key = |v: &Version| (v.major, v.minor, v.patch);
    if key(from) == key(to) {
        return Ok(None);
    }
    if key(to) < key(from) {
        return Err(format!(
            "{to} is older than the {from} the cluster runs: Kubernetes does not support downgrades (etcd's data and the API objects may already be in the newer form). Keep `version` at {from}, or restore the cluster from a backup taken before the upgrade."
        ));
    }
    if to.major != from.major {
        return Err(format!(
            "{from} → {to} changes the major version; this provider upgrades within one major version only."
        ));
    }
    match to.minor - from.minor {
        0 => Ok(Some(Upgrade::Patch)),
        1 => Ok(Some(Upgrade::Minor)),
        n => Err(format!(
            "{from} → {to} skips {} minor version{}: kubeadm's version skew policy upgrades one minor at a time. Upgrade to the latest v{}.{}.x first, apply, then to {to}.",
            n - 1,
            if n == 2 { "" } else { "s" },
            from.major,
            from.minor + 1
        )),
    }
}

/// The Kubernetes release in a version string as components report it
/// (`v1.36.3`, k3s's `v1.36.3+k3s1`), `None` when it is not one.
pub fn release_of(reported: &str) -> Option<Version> {
    let core = reported.split_once('+').map_or(reported, |(v, _)| v);
    Version::parse(core.trim()).ok()
}

/// What one node runs, as the API server tells it. Index 0 is the control
/// plane; the workers follow in configuration order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRuns {
    /// The kubelet's version (`status.nodeInfo.kubeletVersion`).
    pub kubelet: String,
    /// The node is cordoned and carries [`CORDON_ANNOTATION`].
    pub cordoned_by_upgrade: bool,
}

/// One step of an upgrade, on the node at that index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Upload the new release, install its kubeadm, import its images;
    /// nothing restarted (every node at once).
    Stage(Vec<usize>),
    /// `kubeadm upgrade plan` and `kubeadm upgrade apply` on the control
    /// plane (k3s: nothing, its server is upgraded in its window).
    ControlPlane,
    /// The node's window, one node at a time: drain, (a kubeadm worker:
    /// `kubeadm upgrade node`), the new kubelet, kubectl and runtime,
    /// restart, Ready at the new version, uncordon.
    Node(usize),
    /// An earlier apply upgraded the node but stopped before uncordoning it.
    Uncordon(usize),
}

/// What is left to bring every node of `nodes` to `target`, given whether
/// the control plane's own components already run it (API server and
/// kube-proxy at `target`). Pure and repeatable: an apply that stopped
/// anywhere gets the rest, in the documented order (control plane first,
/// then each worker).
pub fn steps(target: &Version, control_plane_done: bool, nodes: &[NodeRuns]) -> Vec<Step> {
    let behind: Vec<usize> = (0..nodes.len())
        .filter(|&i| release_of(&nodes[i].kubelet).as_ref() != Some(target))
        .collect();
    let mut stage = behind.clone();
    if !control_plane_done && !stage.contains(&0) && !nodes.is_empty() {
        stage.insert(0, 0);
    }
    let mut out = Vec::new();
    if !stage.is_empty() {
        out.push(Step::Stage(stage));
    }
    if !control_plane_done {
        out.push(Step::ControlPlane);
    }
    for (i, n) in nodes.iter().enumerate() {
        if behind.contains(&i) {
            out.push(Step::Node(i));
        } else if n.cordoned_by_upgrade {
            out.push(Step::Uncordon(i));
        }
    }
    out
}

fn upgrade_command(args: &str) -> String {
    // one stream: kubeadm logs to stderr and reports to stdout, and a
    // failure's diagnostic quotes the last lines of both in order
    format!("kubeadm upgrade {args} --config {UPGRADE_CONFIG} 2>&1\n")
}

/// `kubeadm upgrade plan` (its table goes to the provider's DEBUG log).
pub fn plan_script() -> String {
    upgrade_command("plan")
}

/// `kubeadm upgrade apply` on the control plane, non-interactive; then
/// the backup directories it made (it names the manifests' in its output,
/// never etcd's), for [`backups`].
pub fn apply_script() -> String {
    format!(
        "set -e\n{}find /etc/kubernetes/tmp -maxdepth 1 -name 'kubeadm-backup-*' -newer {UPGRADE_CONFIG} 2>/dev/null | sort || true\n",
        upgrade_command("apply --yes")
    )
}

/// `kubeadm upgrade node` on a worker (its kubelet configuration from the
/// cluster's, with the node's patch).
pub fn node_script() -> String {
    upgrade_command("node")
}

/// The backup directories `kubeadm upgrade apply` names in its output
/// (the old static pod manifests, and etcd's data when etcd was upgraded).
pub fn backups(apply_output: &str) -> Vec<String> {
    let mut dirs: Vec<String> = Vec::new();
    for word in apply_output.split(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        if let Some(start) = word.find("/etc/kubernetes/tmp/kubeadm-backup-") {
            let path = &word[start..];
            let dir = path
                .match_indices('/')
                .nth(4)
                .map_or(path, |(i, _)| &path[..i])
                .trim_end_matches(['.', ',', ':']);
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_owned());
            }
        }
    }
    dirs
}

/// Mark `node` as the upgrade's, then drain it: evictions (which
/// PodDisruptionBudgets may hold back; kubectl retries them) for at most
/// `timeout_secs`, DaemonSet pods left in place. kubectl gives up on any
/// other error, such as an API server that restarts under it (its node was
/// just upgraded): the drain, idempotent, is tried again a few times.
pub fn drain_script(node: &Hostname, target: &Version, timeout_secs: u64, kubectl: fn(&[&str]) -> String) -> String {
    let n = node.as_str();
    let mark = format!("{CORDON_ANNOTATION}={target}");
    let timeout = format!("--timeout={}s", timeout_secs.max(1));
    let drain = kubectl(&[
        "drain",
        n,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--force",
        &timeout,
    ]);
    format!(
        "set -e\n{}tries=0\nuntil {}; do\n  tries=$((tries + 1))\n  [ $tries -lt 5 ] || exit 1\n  echo \"drain failed; again in 10 s ($tries/5)\" >&2\n  sleep 10\ndone\n",
        kubectl(&["annotate", "node", n, &mark, "--overwrite"]),
        drain.trim_end()
    )
}

/// Wait until the API server answers `/readyz` five times in a row, two
/// seconds apart (at most ten minutes): after the control plane's kubelet
/// restarts at the new version it restarts the static pods, and the API
/// server refuses requests (its authorizer not ready) for a while.
pub fn settle_script(kubectl: fn(&[&str]) -> String) -> String {
    let readyz = kubectl(&["--request-timeout=5s", "get", "--raw", "/readyz"]);
    format!(
        "ok=0\nfor i in $(seq 300); do\n  r=$({} 2>/dev/null || true)\n  if [ \"$r\" = ok ]; then ok=$((ok + 1)); [ $ok -lt 5 ] || exit 0; else ok=0; fi\n  sleep 2\ndone\necho \"the API server did not answer /readyz steadily within 10 minutes\" >&2\nexit 1\n",
        readyz.trim_end()
    )
}

/// Uncordon `node` and drop the upgrade's mark.
pub fn uncordon_script(node: &Hostname, kubectl: fn(&[&str]) -> String) -> String {
    let n = node.as_str();
    let unmark = format!("{CORDON_ANNOTATION}-");
    format!(
        "set -e\n{}{}",
        kubectl(&["uncordon", n]),
        kubectl(&["annotate", "node", n, &unmark])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("version")
    }

    #[test]
    fn one_minor_up_or_any_patch_up_and_nothing_else() {
        assert_eq!(check(&v("v1.36.3"), &v("v1.36.3")), Ok(None));
        assert_eq!(check(&v("v1.36.1"), &v("v1.36.3")), Ok(Some(Upgrade::Patch)));
        assert_eq!(check(&v("v1.35.4"), &v("v1.36.3")), Ok(Some(Upgrade::Minor)));
        assert_eq!(check(&v("v1.35.4"), &v("v1.36.0")), Ok(Some(Upgrade::Minor)));
        let down = check(&v("v1.36.3"), &v("v1.35.4")).expect_err("downgrade");
        assert!(down.contains("does not support downgrades"), "{down}");
        let patch_down = check(&v("v1.36.3"), &v("v1.36.1")).expect_err("downgrade");
        assert!(patch_down.contains("older"), "{patch_down}");
        let skip = check(&v("v1.34.2"), &v("v1.36.3")).expect_err("skip");
        assert!(
            skip.contains("skips 1 minor version:") && skip.contains("v1.35.x first"),
            "{skip}"
        );
        let skip2 = check(&v("v1.33.0"), &v("v1.36.3")).expect_err("skip");
        assert!(skip2.contains("skips 2 minor versions"), "{skip2}");
        assert!(check(&v("v1.36.3"), &v("v2.0.0")).is_err());
    }

    fn runs(kubelet: &str, cordoned: bool) -> NodeRuns {
        NodeRuns {
            kubelet: kubelet.into(),
            cordoned_by_upgrade: cordoned,
        }
    }

    #[test]
    fn a_fresh_upgrade_stages_everything_then_goes_control_plane_first() {
        let t = v("v1.36.3");
        let nodes = [runs("v1.35.4", false), runs("v1.35.4", false), runs("v1.35.4", false)];
        assert_eq!(
            steps(&t, false, &nodes),
            [
                Step::Stage(vec![0, 1, 2]),
                Step::ControlPlane,
                Step::Node(0),
                Step::Node(1),
                Step::Node(2)
            ]
        );
    }

    #[test]
    fn an_upgrade_that_stopped_resumes_where_it_stopped() {
        let t = v("v1.36.3");
        // stopped in the worker's window after its drain
        let nodes = [runs("v1.36.3", false), runs("v1.35.4", true)];
        assert_eq!(steps(&t, true, &nodes), [Step::Stage(vec![1]), Step::Node(1)]);
        // stopped after the worker's restart, before its uncordon
        let nodes = [runs("v1.36.3", false), runs("v1.36.3", true)];
        assert_eq!(steps(&t, true, &nodes), [Step::Uncordon(1)]);
        // stopped inside `kubeadm upgrade apply`: the API server may be new, kube-proxy not
        let nodes = [runs("v1.35.4", false), runs("v1.35.4", false)];
        assert_eq!(
            steps(&t, false, &nodes),
            [
                Step::Stage(vec![0, 1]),
                Step::ControlPlane,
                Step::Node(0),
                Step::Node(1)
            ]
        );
        // the control plane's kubelet new (by hand) but its components not
        let nodes = [runs("v1.36.3", false), runs("v1.35.4", false)];
        assert_eq!(
            steps(&t, false, &nodes),
            [Step::Stage(vec![0, 1]), Step::ControlPlane, Step::Node(1)]
        );
        // done: nothing; k3s's versions read the same
        let nodes = [runs("v1.36.3+k3s1", false), runs("v1.36.3", false)];
        assert!(steps(&t, true, &nodes).is_empty());
    }

    #[test]
    fn scripts_are_valid_sh_and_names_are_quoted() {
        let node = crate::network::hostname("tb-k8s2").expect("name");
        let t = v("v1.36.3");
        for s in [
            plan_script(),
            apply_script(),
            node_script(),
            drain_script(&node, &t, 600, crate::cluster::node::kubectl),
            uncordon_script(&node, crate::cluster::node::kubectl),
            settle_script(crate::cluster::node::kubectl),
            settle_script(crate::cluster::k3s::kubectl),
        ] {
            crate::shell::assert_valid_sh(&s);
        }
        let d = drain_script(&node, &t, 600, crate::cluster::node::kubectl);
        assert!(
            d.contains("'annotate' 'node' 'tb-k8s2' 'selfhost.dev/upgrading-to=v1.36.3' '--overwrite'"),
            "{d}"
        );
        assert!(
            d.contains("'drain' 'tb-k8s2' '--ignore-daemonsets'") && d.contains("'--timeout=600s'"),
            "{d}"
        );
        assert!(!d.contains("--disable-eviction"), "drains respect PodDisruptionBudgets");
        assert!(apply_script().contains("kubeadm upgrade apply --yes --config /etc/kubeadm/upgrade.json"));
    }

    #[test]
    fn the_backups_kubeadm_names_are_found() {
        let out = r#"[upgrade/staticpods] Moved new manifest to "/etc/kubernetes/manifests/kube-apiserver.yaml" and backed up old manifest to "/etc/kubernetes/tmp/kubeadm-backup-manifests-2026-12-07-08-01-02/kube-apiserver.yaml"
[upgrade/etcd] Backing up etcd data to /etc/kubernetes/tmp/kubeadm-backup-etcd-2026-12-07-08-01-02/etcd
[upgrade/staticpods] ... "/etc/kubernetes/tmp/kubeadm-backup-manifests-2026-12-07-08-01-02/etcd.yaml"
"#;
        assert_eq!(
            backups(out),
            [
                "/etc/kubernetes/tmp/kubeadm-backup-manifests-2026-12-07-08-01-02",
                "/etc/kubernetes/tmp/kubeadm-backup-etcd-2026-12-07-08-01-02"
            ]
        );
        assert!(backups("nothing here").is_empty());
        assert_eq!(release_of("v1.36.3+k3s1"), Some(v("v1.36.3")));
        assert_eq!(release_of("garbage"), None);
    }
}
