//! Acceptance test of `selfhost_k8s_cluster`: a REAL kubeadm cluster on the
//! test bed's Kubernetes-capable hosts (`testbed up --k8s-hosts 3`), from
//! the bed's air-gapped bundle, driven by a real Terraform CLI through this
//! build of the provider. Hosts, cluster and a namespace go up in ONE
//! apply. What the provider did is checked independently: the real
//! `kubectl` with the kubeconfig output, and plain OpenSSH on the hosts.
//!
//! The hosts are systemd-nspawn containers sharing this machine's kernel
//! (cgroup v1, no module loading, an overlay root). The configuration sets
//! no node settings: the provider reads each host's facts and chooses what
//! testbed/README.md lists, which the checks below find on the nodes.
//!
//! Faults are injected into the lifecycle (issue 20, `support::faults`):
//! Ctrl-C during the create while the worker joins, the SSH connection cut
//! while the third host joins, the API server restarted while ten agents
//! apply; each time the next apply converges and the plan after is empty.
//!
//! `eval "$(testbed/testbed env)"; cargo test --test acceptance_k8s_cluster -- --nocapture`

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::Outcome;
use support::bed::Host;
use support::cluster_lifecycle::{Distribution, lifecycle};
use support::k8s::{K8sBed, assert_clean, cluster_config, cluster_config_with, k8s_bed};
use support::{Workdir, clis_or_skip};

/// kubeadm's part of the shared lifecycle.
struct Kubeadm;

impl Distribution for Kubeadm {
    fn name(&self) -> &'static str {
        "kubeadm"
    }

    fn config(&self, k: &K8sBed, workers: &[&str], install: &str) -> String {
        if install.is_empty() {
            cluster_config(k, workers, "")
        } else {
            cluster_config_with(k, workers, install, "")
        }
    }

    fn worker_unit(&self) -> (&'static str, &'static str) {
        ("kubelet", "kubelet stopped")
    }

    fn removal_log(&self) -> &'static str {
        "kubeadm reset"
    }

    fn join_log(&self) -> Option<&'static str> {
        Some("kubeadm join")
    }

    fn assert_clean(&self, k: &K8sBed, host: &Host) {
        assert_clean(k, host);
    }

    /// Every bootstrap token the cluster has (kubeadm init's and the
    /// join's) stays out of the log; progress is logged per phase.
    fn after_create(&self, k: &K8sBed, o: &Outcome) {
        let tokens = k.bed.sh(
            &k.hosts[0],
            "kubeadm token list --kubeconfig /etc/kubernetes/admin.conf | grep -oE '^[a-z0-9]{6}\\.[a-z0-9]{16}' || true",
        );
        assert!(!tokens.trim().is_empty(), "the join left a bootstrap token to look for");
        for t in tokens.split_whitespace() {
            assert!(!o.output().contains(t), "a bootstrap token reached the log");
            assert!(
                !o.output().contains(&t[7..]),
                "a bootstrap token's secret reached the log"
            );
        }
        assert!(o.output().contains("kubeadm init"), "progress is logged per phase");
        // The settings were chosen from the hosts' facts (nothing in the
        // HCL), logged, and written on every node (the plan's side is
        // checked by the lifecycle).
        assert!(
            o.output()
                .contains("node settings (applied) container (systemd-nspawn)"),
            "the choice is logged at INFO"
        );
        for (i, h) in k.hosts[..2].iter().enumerate() {
            let node = k.bed.sh(
                h,
                "grep -c 'snapshotter = \"native\"' /etc/containerd/config.toml; grep -c 'restrict_oom_score_adj = true' /etc/containerd/config.toml; grep -h '^cgroupDriver\\|^cgroupRoot\\|^failCgroupV1' /var/lib/kubelet/config.yaml",
            );
            let lines: Vec<&str> = node.lines().map(str::trim).collect();
            assert_eq!(lines[..2], ["1", "1"], "node {i}: containerd settings detected\n{node}");
            assert!(lines.contains(&"cgroupDriver: cgroupfs"), "node {i}: {node}");
            assert!(lines.contains(&"failCgroupV1: false"), "node {i}: {node}");
            assert!(lines.iter().any(|l| l.starts_with("cgroupRoot: /")), "node {i}: {node}");
        }
    }

    fn api_server_security(&self, k: &K8sBed, wd: &Workdir, kc: &support::kube::KubeBed) {
        let with = |attrs: &str| {
            cluster_config(k, &["w1"], "").replace(
                "  cni           = \"flannel\"\n",
                &format!("  cni           = \"flannel\"\n{attrs}"),
            )
        };
        support::api_security::api_server_security(k, support::api_security::Flavor::Kubeadm, wd, kc, &with);
    }

    /// Version changes kubeadm cannot take, or the bundle cannot provide,
    /// are refused at plan time, on `version`.
    fn after_import(&self, k: &K8sBed, wd: &Workdir) {
        for (to, why) in [
            ("v1.35.4", "Kubernetes does not support downgrades"),
            ("v1.38.0", "skips 1 minor version"),
            (
                "v1.36.4",
                "the bundle holds Kubernetes \"v1.36.3\", but `version` is \"v1.36.4\"",
            ),
        ] {
            wd.write(
                "main.tf",
                &cluster_config(k, &["w1"], "").replace("\"v1.36.3\"", &format!("\"{to}\"")),
            );
            let o = wd.run(&["plan", "-input=false", "-no-color"]);
            assert_eq!(o.code, Some(1), "{o}");
            // the CLI wraps a diagnostic's text
            let words = o.output().split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(words.contains(why), "{to}: {o}");
            assert!(
                o.output().contains(&format!("version       = \"{to}\"")),
                "at the attribute: {o}"
            );
        }
        wd.write("main.tf", &cluster_config(k, &["w1"], ""));
        // Issue 21: Pod Security Admission and deploy credentials.
        support::cluster_security::namespace_security(k, wd, &cluster_config(k, &["w1"], ""));
    }
}

#[test]
fn kubeadm_cluster_in_one_apply_grows_shrinks_repairs_and_leaves_hosts_clean() {
    const TEST: &str = "kubeadm_cluster_in_one_apply_grows_shrinks_repairs_and_leaves_hosts_clean";
    let Some(k) = k8s_bed(TEST) else { return };
    let clis = clis_or_skip(TEST);
    // One CLI: a cluster bootstrap takes minutes; the newest Terraform.
    let Some(cli) = clis.last() else { return };
    eprintln!("==== {TEST}: {} ({})", cli.label(), cli.path.display());
    lifecycle(&k, cli, &mut Kubeadm);
}

/// Bad settings are refused at validate time, each at its own line, by
/// every CLI; no host is contacted (the addresses are documentation ones).
#[test]
fn bad_cluster_settings_are_refused_at_their_attribute() {
    const TEST: &str = "bad_cluster_settings_are_refused_at_their_attribute";
    let bad = r#"terraform {
  required_providers {
    selfhost = { source = "selfhost/selfhost" }
  }
}

resource "selfhost_k8s_cluster" "main" {
  version = "latest"
  install {
    source         = "bundle"
    bundle         = "/nonexistent"
    containerd_url = "file:///etc"
    runc_version   = "latest"
  }
  control_plane = { host = "203.0.113.10", port = 22, user = "root", host_key = "ssh-ed25519 AAAA" }
  pod_cidr      = "10.244.0.0/16"
  service_cidr  = "10.244.128.0/20"
  cni           = "calico"
  secrets_encryption_key_version = 0
  node_settings {
    kubelet_cgroup_root  = "relative/path"
    kubelet_extra_config = "[1, 2]"
  }
  pod_security  = "strict"
  namespace {
    name = "Not_A_Label"
  }
  namespace {
    name         = "web"
    pod_security = "open"
    labels       = { "pod-security.kubernetes.io/enforce" = "privileged" }
    deployer {
      token_duration = "5m"
    }
  }
  namespace {
    name = "kube-system"
  }
}
"#;
    support::expect_invalid_at(
        TEST,
        "k8s-validate",
        bad,
        &[
            ("version = \"latest\"", "is not a Kubernetes release version"),
            ("service_cidr  =", "overlaps pod_cidr"),
            ("cni           =", "must be one of \"flannel\", \"none\""),
            (
                "secrets_encryption_key_version = 0",
                "must be a whole number between 1 and 1000000",
            ),
            ("containerd_url =", "is not an http:// or https:// URL"),
            ("runc_version   =", "is not a release version"),
            ("kubelet_cgroup_root  =", "is not a cgroup path"),
            ("kubelet_extra_config =", "JSON object"),
            ("name = \"Not_A_Label\"", "Invalid namespace name"),
            (
                "pod_security  = \"strict\"",
                "must be one of \"restricted\", \"baseline\", \"privileged\"",
            ),
            (
                "pod_security = \"open\"",
                "must be one of \"restricted\", \"baseline\", \"privileged\"",
            ),
            ("labels       =", "the Pod Security labels come from `pod_security`"),
            ("token_duration = \"5m\"", "is shorter than 10m"),
            (
                "name = \"kube-system\"",
                "belongs to Kubernetes or to this resource's add-ons",
            ),
        ],
    );
}
