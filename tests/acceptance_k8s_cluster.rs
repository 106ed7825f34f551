//! Acceptance test of `selfhost_k8s_cluster`: a REAL kubeadm cluster on the
//! test bed's Kubernetes-capable hosts (`testbed up --k8s-hosts 3`), from
//! the bed's air-gapped bundle, driven by a real Terraform CLI through this
//! build of the provider. Hosts, cluster and a namespace go up in ONE
//! apply. What the provider did is checked independently: the real
//! `kubectl` with the kubeconfig output, and plain OpenSSH on the hosts.
//!
//! The hosts are systemd-nspawn containers sharing this machine's kernel
//! (cgroup v1, no module loading, an overlay root), so the configuration
//! sets the node settings testbed/README.md lists, in HCL, as a user of a
//! container-based VPS would.
//!
//! `eval "$(testbed/testbed env)"; cargo test --test acceptance_k8s_cluster -- --nocapture`

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::bed::Host;
use support::k8s::{
    FRESH_HOST, K8sBed, assert_clean, cluster_config, destroy_workers_first, echo_through_service_dns,
    import_round_trip, k8s_bed, ready_nodes,
};
use support::kube::KubeBed;
use support::{Workdir, clis_or_skip, state_values};

const CLUSTER: &str = "selfhost_k8s_cluster.main";

fn apply(wd: &Workdir) -> support::Outcome {
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"])
}

fn expect_empty_plan(wd: &Workdir, why: &str) {
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(
        o.code,
        Some(0),
        "{why}: the plan must be empty (exit 0; 2 = changes)\n{o}"
    );
}

fn hostname(k: &K8sBed, h: &Host) -> String {
    k.bed.sh(h, "hostname").trim().to_owned()
}

#[test]
fn kubeadm_cluster_in_one_apply_grows_shrinks_repairs_and_leaves_hosts_clean() {
    const TEST: &str = "kubeadm_cluster_in_one_apply_grows_shrinks_repairs_and_leaves_hosts_clean";
    let Some(k) = k8s_bed(TEST) else { return };
    let clis = clis_or_skip(TEST);
    // One CLI: a cluster bootstrap takes minutes; the newest Terraform.
    let Some(cli) = clis.last() else { return };
    eprintln!("==== {TEST}: {} ({})", cli.label(), cli.path.display());
    for h in &k.hosts[..3] {
        k.bed.sh(h, FRESH_HOST);
    }
    let (cp_name, w1_name, w2_name) = (
        hostname(&k, &k.hosts[0]),
        hostname(&k, &k.hosts[1]),
        hostname(&k, &k.hosts[2]),
    );
    let mut wd = Workdir::new(cli, "k8s-cluster");
    wd.set_step_timeout(Duration::from_secs(30 * 60));
    wd.write("main.tf", &cluster_config(&k, &["w1"], ""));
    wd.init();

    // 1. ONE apply: two hosts, the cluster on them, a namespace with quota.
    let started = Instant::now();
    let o = wd.run_env(
        &["apply", "-auto-approve", "-input=false", "-no-color"],
        &[("TF_LOG", "DEBUG")],
    );
    assert_eq!(o.code, Some(0), "{o}");
    eprintln!("create: {:.0?}", started.elapsed());
    let kubeconfig = wd.ok(&["output", "-raw", "kubeconfig"]).stdout;
    assert!(
        kubeconfig.contains("https://10."),
        "the kubeconfig points at the address Terraform reaches"
    );
    // Secrets of the cluster never reach the log.
    let client_key = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-key-data:"))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    assert!(client_key.len() > 40, "the kubeconfig has a client key");
    assert!(!o.output().contains(&client_key), "the admin key reached the log");
    // Every bootstrap token the cluster has (kubeadm init's and the join's).
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

    let kc_path = wd.path.join("kubeconfig");
    std::fs::write(&kc_path, &kubeconfig).expect("write kubeconfig");
    let kc = KubeBed {
        kubectl: k.kubectl.clone(),
        kubeconfig: kc_path.display().to_string(),
    };
    let nodes = ready_nodes(&kc);
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(nodes.iter().all(|(_, ready)| *ready), "both nodes Ready: {nodes:?}");
    let quota = kc.ok(&[
        "-n",
        "agents",
        "get",
        "resourcequota",
        "selfhost-quota",
        "-o",
        "jsonpath={.spec.hard.pods}",
    ]);
    assert_eq!(quota, "20");
    let state = wd.show_json(None);
    let v = state_values(&state, CLUSTER);
    assert_eq!(v["running_version"], "v1.36.3");
    assert_eq!(v["api_server_url"], format!("https://{}:6443", k.hosts[0].addr));
    assert!(
        v["ca_certificate"]
            .as_str()
            .unwrap_or_default()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    echo_through_service_dns(&kc, &w1_name, &cp_name);
    expect_empty_plan(&wd, "after the first apply");

    // Import round-trips: the settings come back from the cluster's record.
    import_round_trip(&wd);

    // An upgrade is refused at plan time, on `version`.
    wd.write(
        "main.tf",
        &cluster_config(&k, &["w1"], "").replace("\"v1.36.3\"", "\"v1.36.4\""),
    );
    let o = wd.run(&["plan", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.output().contains("Kubernetes upgrades are not supported yet"), "{o}");
    assert!(o.output().contains("version"), "{o}");
    wd.write("main.tf", &cluster_config(&k, &["w1"], ""));

    // 2. A stopped kubelet is drift; apply repairs it.
    k.bed.sh(&k.hosts[1], "systemctl stop kubelet");
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(2), "a stopped kubelet must show in the plan\n{o}");
    assert!(o.stdout.contains("kubelet stopped"), "{o}");
    assert!(o.stdout.contains("1 to change"), "{o}");
    apply(&wd);
    assert_eq!(k.bed.sh(&k.hosts[1], "systemctl is-active kubelet").trim(), "active");
    expect_empty_plan(&wd, "after the repair");

    // 3. A third host joins as a worker: an in-place update.
    wd.write("main.tf", &cluster_config(&k, &["w1", "w2"], ""));
    let o = wd.run(&["plan", "-input=false", "-no-color"]);
    assert!(
        o.stdout.contains("selfhost_k8s_cluster.main will be updated in-place"),
        "{o}"
    );
    assert!(!o.stdout.contains("must be replaced"), "{o}");
    apply(&wd);
    let nodes = ready_nodes(&kc);
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(nodes.iter().any(|(n, r)| *n == w2_name && *r), "{nodes:?}");
    expect_empty_plan(&wd, "after adding a worker");

    // 4. Removing it drains it, deletes its Node and resets the host.
    wd.write("main.tf", &cluster_config(&k, &["w1"], ""));
    apply(&wd);
    let nodes = ready_nodes(&kc);
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(!nodes.iter().any(|(n, _)| *n == w2_name), "{nodes:?}");
    assert_clean(&k, &k.hosts[2]);
    expect_empty_plan(&wd, "after removing a worker");

    // 5. Destroy resets every node, workers first (checked in the provider's log).
    destroy_workers_first(&k, &wd, &k.hosts[0], &[&k.hosts[1]], "kubeadm reset");
    assert_clean(&k, &k.hosts[0]);
    assert_clean(&k, &k.hosts[1]);
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
  node_settings {
    kubelet_cgroup_root  = "relative/path"
    kubelet_extra_config = "[1, 2]"
  }
  namespace {
    name = "Not_A_Label"
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
            ("cni           =", "calico"),
            ("containerd_url =", "is not an http:// or https:// URL"),
            ("runc_version   =", "is not a release version"),
            ("kubelet_cgroup_root  =", "is not a cgroup path"),
            ("kubelet_extra_config =", "JSON object"),
            ("name = \"Not_A_Label\"", "Invalid namespace name"),
        ],
    );
}
