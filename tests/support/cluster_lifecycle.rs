//! The lifecycle every distribution of `selfhost_k8s_cluster` must go
//! through, written once: ONE apply from bare hosts to a cluster with a
//! namespace, secrets kept out of the log, import round trip, a stopped
//! service shown as drift and repaired, a worker added in place and removed
//! (drained, Node deleted, host clean), destroy with the workers cleaned
//! before the control plane. What differs per distribution (its files, its
//! secrets, where a new worker's binaries come from) is a [`Distribution`].
//! A distribution with fault injection ([`Distribution::join_log`]) has its
//! first apply interrupted (Ctrl-C) during the worker's join, the third
//! host's join cut (sshd killed), and its API server restarted while ten
//! agents apply ([`super::faults`]).

#![allow(dead_code)] // each test binary uses one distribution

use std::time::{Duration, Instant};

use super::bed::Host;
use super::k8s::{
    FRESH_HOST, K8sBed, cluster_kubectl, destroy_workers_first, echo_through_service_dns, import_round_trip,
    ready_nodes,
};
use super::{Cli, Outcome, Workdir, state_values};

const CLUSTER: &str = "selfhost_k8s_cluster.main";

/// What one distribution brings to the shared lifecycle.
pub trait Distribution {
    /// `distribution` as the state holds it.
    fn name(&self) -> &'static str;
    /// The configuration: hosts `cp` and `workers`, the cluster with
    /// `install` (empty: the bed's bundle).
    fn config(&self, k: &K8sBed, workers: &[&str], install: &str) -> String;
    /// The unit a worker runs, and the node status a stopped one shows.
    fn worker_unit(&self) -> (&'static str, &'static str);
    /// The provider's log message starting a node's removal.
    fn removal_log(&self) -> &'static str;
    /// Panics unless nothing of the distribution is left on `host`.
    fn assert_clean(&self, k: &K8sBed, host: &Host);
    /// After the first apply (its output `o`, logged at TRACE): the
    /// distribution's secrets are not in it, its files are in place.
    fn after_create(&self, k: &K8sBed, o: &Outcome);
    /// After the import round trip.
    fn after_import(&self, _k: &K8sBed, _wd: &Workdir) {}
    /// The `install {}` block the grown cluster uses (empty: the bundle);
    /// may apply and check a refused attempt first.
    fn install_for_growth(&mut self, _k: &K8sBed, _wd: &Workdir) -> String {
        String::new()
    }
    /// After the third host joined.
    fn after_growth(&self, _k: &K8sBed) {}
    /// The provider's log message starting a worker's join (after the
    /// host's label), when the lifecycle injects faults ([`super::faults`]):
    /// Ctrl-C and an SSH cut at that step, and an API server restart
    /// (a kubeadm static pod) during an apply of ten agents.
    fn join_log(&self) -> Option<&'static str> {
        None
    }
    /// Secrets encryption and the audit log, on by default: checked, turned
    /// off and on; ends with the configuration of `config(k, ["w1"], "")`.
    fn api_server_security(&self, _k: &K8sBed, _wd: &Workdir, _kc: &super::kube::KubeBed) {}
}

fn apply(wd: &Workdir) -> Outcome {
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"])
}

pub fn expect_empty_plan(wd: &Workdir, why: &str) {
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(
        o.code,
        Some(0),
        "{why}: the plan must be empty (exit 0; 2 = changes)\n{o}"
    );
}

/// The node settings detected from the hosts' facts show in a plan: a
/// replacement planned once the hosts exist reads their facts at plan time
/// (logged as "planned") and plans `effective_node_settings` per node with
/// the container profile the bed's hosts have; nothing is applied.
fn planned_node_settings(k: &K8sBed, wd: &Workdir) {
    let o = wd.run_env(
        &[
            "plan",
            "-replace=selfhost_k8s_cluster.main",
            "-out=replace.tfplan",
            "-input=false",
            "-no-color",
        ],
        &[("TF_LOG", "INFO")],
    );
    assert_eq!(o.code, Some(0), "{o}");
    assert!(
        o.stderr.contains("node settings (planned) container (systemd-nspawn)"),
        "the facts were read at plan time and the choice logged:\n{o}"
    );
    let show: serde_json::Value =
        serde_json::from_str(&wd.ok(&["show", "-json", "replace.tfplan"]).stdout).expect("plan JSON");
    let change = show["resource_changes"]
        .as_array()
        .and_then(|rc| rc.iter().find(|c| c["address"] == "selfhost_k8s_cluster.main"))
        .expect("the cluster in the plan");
    let planned = &change["change"]["after"]["effective_node_settings"];
    for h in &k.hosts[..2] {
        let node = &planned[h.addr.as_str()];
        assert_eq!(node["profile"], "container (systemd-nspawn)", "{h:?} in {planned}");
        assert_eq!(node["containerd_snapshotter"], "native", "{h:?} in {planned}");
        assert_eq!(node["kubelet_cgroup_driver"], "cgroupfs", "{h:?} in {planned}");
    }
    std::fs::remove_file(wd.path.join("replace.tfplan")).expect("remove the plan file");
}

/// The whole lifecycle on the bed's three k8s hosts with `cli`.
pub fn lifecycle(k: &K8sBed, cli: &'static Cli, d: &mut dyn Distribution) {
    for h in &k.hosts[..3] {
        k.bed.sh(h, FRESH_HOST);
    }
    let names: Vec<String> = k.hosts[..3]
        .iter()
        .map(|h| k.bed.sh(h, "hostname").trim().to_owned())
        .collect();
    let mut wd = Workdir::new(cli, d.name());
    wd.set_step_timeout(Duration::from_secs(30 * 60));
    wd.write("main.tf", &d.config(k, &["w1"], ""));
    wd.init();

    // 1. ONE apply: two hosts, the cluster on them, a namespace with quota
    // (with faults: interrupted during the worker's join, then resumed).
    let started = Instant::now();
    let o = match d.join_log() {
        Some(join) => super::faults::interrupted_create(k, &wd, join),
        None => wd.run_env(
            &["apply", "-auto-approve", "-input=false", "-no-color"],
            &[("TF_LOG", "TRACE")],
        ),
    };
    assert_eq!(o.code, Some(0), "{o}");
    eprintln!("create: {:.0?}", started.elapsed());
    let kubeconfig = wd.ok(&["output", "-raw", "kubeconfig"]).stdout;
    assert!(
        kubeconfig.contains(&format!("server: https://{}:6443", k.hosts[0].addr)),
        "the kubeconfig points at the address Terraform reaches"
    );
    let client_key = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-key-data:"))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    assert!(client_key.len() > 40, "the kubeconfig has a client key");
    assert!(!o.output().contains(&client_key), "the admin key reached the log");
    d.after_create(k, &o);
    planned_node_settings(k, &wd);

    let kc = cluster_kubectl(k, &wd);
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
    assert_eq!(v["distribution"], d.name());
    assert_eq!(v["api_server_url"], format!("https://{}:6443", k.hosts[0].addr));
    assert!(
        v["ca_certificate"]
            .as_str()
            .unwrap_or_default()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    echo_through_service_dns(&kc, &names[1], &names[0]);
    expect_empty_plan(&wd, "after the first apply");

    // Import round-trips: the settings come back from the cluster's record.
    import_round_trip(&wd);
    d.after_import(k, &wd);
    d.api_server_security(k, &wd, &kc);

    // 2. A stopped worker service is drift; apply repairs it.
    let (unit, status) = d.worker_unit();
    k.bed.sh(&k.hosts[1], &format!("systemctl stop {unit}"));
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(2), "a stopped {unit} must show in the plan\n{o}");
    assert!(o.stdout.contains(status), "{o}");
    assert!(o.stdout.contains("1 to change"), "{o}");
    apply(&wd);
    assert_eq!(
        k.bed.sh(&k.hosts[1], &format!("systemctl is-active {unit}")).trim(),
        "active"
    );
    expect_empty_plan(&wd, "after the repair");

    // 3. A third host joins as a worker: an in-place update.
    let install = d.install_for_growth(k, &wd);
    wd.write("main.tf", &d.config(k, &["w1", "w2"], &install));
    let o = wd.run(&["plan", "-input=false", "-no-color"]);
    assert!(
        o.stdout.contains("selfhost_k8s_cluster.main will be updated in-place"),
        "{o}"
    );
    assert!(!o.stdout.contains("must be replaced"), "{o}");
    match d.join_log() {
        Some(join) => super::faults::ssh_cut_during_join(k, &wd, join),
        None => {
            apply(&wd);
        }
    }
    d.after_growth(k);
    let nodes = ready_nodes(&kc);
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(nodes.iter().any(|(n, r)| *n == names[2] && *r), "{nodes:?}");
    expect_empty_plan(&wd, "after adding a worker");

    // 4. Removing it drains it, deletes its Node and cleans the host.
    wd.write("main.tf", &d.config(k, &["w1"], &install));
    apply(&wd);
    let nodes = ready_nodes(&kc);
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(!nodes.iter().any(|(n, _)| *n == names[2]), "{nodes:?}");
    d.assert_clean(k, &k.hosts[2]);
    expect_empty_plan(&wd, "after removing a worker");

    // With faults: the API server restarted while ten agents apply.
    if d.join_log().is_some() {
        super::faults::api_server_restart_during_agents(k, &wd, &kc, &d.config(k, &["w1"], &install));
    }

    // 5. Destroy cleans every node, workers first (checked in the provider's log).
    destroy_workers_first(k, &wd, &k.hosts[0], &[&k.hosts[1]], d.removal_log());
    d.assert_clean(k, &k.hosts[0]);
    d.assert_clean(k, &k.hosts[1]);
}
