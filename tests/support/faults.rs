//! Faults injected into a REAL kubeadm cluster's lifecycle (issue 20), each
//! checked by what a user sees: the CLI's exit and error text, the state
//! (`terraform state list`, `show -json`), the next apply and the plan
//! after it, and the cluster itself through the real kubectl.
//!
//! - Ctrl-C (SIGINT to the CLI) during the create, while a worker's
//!   `kubeadm join` runs on it: [`interrupted_create`].
//! - The SSH connection cut (every sshd on the host killed) while a new
//!   worker's `kubeadm join` runs: [`ssh_cut_during_join`].
//! - The API server restarted (its static pod's manifest moved out and
//!   back) while ten `selfhost_agent`s apply: [`api_server_restart_during_agents`].

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use super::bed::Host;
use super::cluster_lifecycle::expect_empty_plan;
use super::k8s::{K8sBed, ready_nodes};
use super::kube::KubeBed;
use super::{Outcome, Workdir, state_values};

const CLUSTER: &str = "selfhost_k8s_cluster.main";
const APPLY: [&str; 4] = ["apply", "-auto-approve", "-input=false", "-no-color"];

/// Whitespace collapsed (the CLI wraps diagnostics).
fn words(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `user@addr:port`, as the provider names a host.
fn label(k: &K8sBed, h: &Host) -> String {
    format!("{}@{}:{}", k.bed.user, h.addr, h.port)
}

/// A CLI run the test started itself: its files in the work directory.
struct Spawned {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    log: PathBuf,
    started: Instant,
}

impl Spawned {
    fn start(wd: &Workdir, name: &str, args: &[&str], extra: &[(&str, &str)]) -> Spawned {
        let out = wd.path.join(format!("{name}.out"));
        let err = wd.path.join(format!("{name}.err"));
        let log = wd.path.join(format!("{name}.log"));
        let log_path = log.display().to_string();
        let mut env: Vec<(&str, &str)> = extra.to_vec();
        env.push(("TF_LOG_PATH", &log_path));
        let child = wd
            .command(args, &env)
            .stdout(std::fs::File::create(&out).expect("out file"))
            .stderr(std::fs::File::create(&err).expect("err file"))
            .spawn()
            .expect("start the CLI");
        Spawned {
            child,
            out,
            err,
            log,
            started: Instant::now(),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its stdout and stderr so far.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default() + &std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Still running? Panics (with its output) when it ended.
    fn expect_running(&mut self, before: &str) {
        if let Some(status) = self.child.try_wait().expect("wait") {
            panic!("the apply ended ({status}) before {before}:\n{}", self.output());
        }
    }

    /// Wait until `needle` is in the provider's log (at most `limit`).
    fn wait_for_log(&mut self, needle: &str, limit: Duration) {
        while !self.log_text().contains(needle) {
            self.expect_running(&format!("logging {needle:?}"));
            assert!(
                self.started.elapsed() < limit,
                "no {needle:?} in the log within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("{needle:?} logged after {:.0?}", self.started.elapsed());
    }

    /// Wait for the CLI to exit (at most `limit`, else kill it and fail).
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let from = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            if from.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the CLI still ran {limit:?} later; killed:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGINT, as Ctrl-C sends; the exit status and how long it took.
    fn interrupt(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let at = Instant::now();
        let pid = self.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .expect("kill")
                .success()
        );
        let status = self.wait(limit);
        (status, at.elapsed())
    }
}

/// A watcher armed on a host: a transient systemd unit (outside every SSH
/// session, so killing sshd does not end it) that runs an action once
/// `kubeadm join` runs there. The join takes about a second on the bed:
/// too short to hit reliably from this process. Disarmed when dropped.
struct OnJoin<'a> {
    k: &'a K8sBed,
    host: &'a Host,
}

const ON_JOIN_UNIT: &str = "selfhost-test-on-join";
const ON_JOIN_MARK: &str = "/run/selfhost-test-on-join";

impl<'a> OnJoin<'a> {
    /// Run `action` (shell, no single quotes; `$pid` is kubeadm's) once
    /// `kubeadm join` runs on `host`, then write `$pid` to [`ON_JOIN_MARK`].
    fn arm(k: &'a K8sBed, host: &'a Host, action: &str) -> OnJoin<'a> {
        assert!(!action.contains('\''), "{action}");
        k.bed.sh(
            host,
            &format!(
                "systemctl stop {ON_JOIN_UNIT} >/dev/null 2>&1; rm -f {ON_JOIN_MARK}
systemd-run --quiet --collect --unit={ON_JOIN_UNIT} sh -c 'i=0; while ! pid=$(pgrep -o -f \"kubeadm [j]oin\"); do i=$((i+1)); [ $i -lt 36000 ] || exit 1; sleep 0.05; done; {action}; echo $pid > {ON_JOIN_MARK}'"
            ),
        );
        OnJoin { k, host }
    }

    /// The pid of the `kubeadm join` the action hit, once it ran.
    fn fired(&self) -> Option<String> {
        let out = self
            .k
            .bed
            .ssh(self.host, &format!("cat {ON_JOIN_MARK} 2>/dev/null; true"));
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!pid.is_empty()).then_some(pid)
    }
}

impl Drop for OnJoin<'_> {
    fn drop(&mut self) {
        let _ = self.k.bed.ssh(
            self.host,
            &format!("systemctl stop {ON_JOIN_UNIT} >/dev/null 2>&1; rm -f {ON_JOIN_MARK}; true"),
        );
    }
}

/// Wait until no kubeadm process runs on `host` (an interrupted join
/// rolls itself back with `kubeadm reset`), at most 2 min; what ran, for
/// the log.
fn settle(k: &K8sBed, host: &Host) {
    let from = Instant::now();
    loop {
        let out = k.bed.ssh(host, "pgrep -af '^kubeadm ' || true");
        let left = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if left.is_empty() {
            break;
        }
        eprintln!("still running on {}: {left}", host.addr);
        assert!(
            from.elapsed() < Duration::from_secs(120),
            "kubeadm still runs on {}: {left}",
            host.addr
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!("no kubeadm left on {} after {:.0?}", host.addr, from.elapsed());
}

/// `name -> (ready, status)` of the cluster's `nodes` in the state.
fn state_nodes(wd: &Workdir) -> Vec<(String, bool, String)> {
    let show = wd.show_json(None);
    let v = state_values(&show, CLUSTER);
    v["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| {
                    (
                        n["name"].as_str().unwrap_or("").to_owned(),
                        n["ready"].as_bool().unwrap_or(false),
                        n["status"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Host names of the bed's k8s hosts `0..n`.
fn names(k: &K8sBed, n: usize) -> Vec<String> {
    k.hosts[..n]
        .iter()
        .map(|h| k.bed.sh(h, "hostname").trim().to_owned())
        .collect()
}

/// Fault 1. The cluster's first apply (the configuration in `wd`: the
/// control plane and one worker, `k.hosts[0..2]`) is interrupted with
/// SIGINT once `kubeadm join` runs on the worker (the control plane is up
/// then; a watcher on the worker holds the join with SIGSTOP until the CLI
/// exited, then lets it go on, and the worker settles: a join whose
/// session is gone rolls itself back). The CLI stops within its limit with an error naming the worker
/// and the step; the state holds the cluster with the control plane in its
/// `nodes` (status "ok") and its kubeconfig (the root outputs are not
/// updated by a failed apply). Terraform taints a resource whose
/// create failed: the plan says so and, as the runbook says, `terraform
/// untaint` then `apply` finishes the join in place, without a second
/// `kubeadm init`. Returns both applies' output and provider log (at
/// TRACE) as one outcome, for the checks of a first apply.
pub fn interrupted_create(k: &K8sBed, wd: &Workdir, join_log: &str) -> Outcome {
    let (cp, worker) = (&k.hosts[0], &k.hosts[1]);
    let node_names = names(k, 2);
    let trigger = format!("{}: {join_log}", label(k, worker));
    // The join is held (SIGSTOP) once it runs, so Ctrl-C surely lands in it.
    let watcher = OnJoin::arm(k, worker, "kill -STOP $pid");
    let mut run = Spawned::start(wd, "create-1", &APPLY, &[("TF_LOG", "TRACE")]);
    run.wait_for_log(&trigger, Duration::from_secs(25 * 60));
    let pid = loop {
        if let Some(pid) = watcher.fired() {
            break pid;
        }
        run.expect_running("kubeadm join ran on the worker");
        assert!(
            run.started.elapsed() < Duration::from_secs(27 * 60),
            "kubeadm join never ran on {}",
            worker.addr
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    eprintln!(
        "kubeadm join (pid {pid}) runs on {} after {:.0?}",
        worker.addr,
        run.started.elapsed()
    );
    let (status, took) = run.interrupt(Duration::from_secs(120));
    eprintln!("fault 1 (Ctrl-C during the create's join): terraform exited {status} {took:.1?} after SIGINT");
    k.bed.sh(worker, &format!("kill -CONT {pid} 2>/dev/null; true"));
    drop(watcher);
    settle(k, worker);
    let first = run.output();
    eprintln!("fault 1: what the user saw:\n{first}");
    assert!(!status.success(), "an interrupted apply fails:\n{first}");
    let text = words(&first);
    assert!(
        !text.contains("panic") && !text.contains("plugin did not respond"),
        "{first}"
    );
    assert!(
        text.contains(&format!("{}: kubeadm join was stopped by Ctrl-C", label(k, worker))),
        "the error names the worker and the step:\n{first}"
    );

    // The state: the cluster, its control plane, the kubeconfig.
    let list = wd.ok(&["state", "list"]).stdout;
    assert!(list.lines().any(|l| l == CLUSTER), "{list}");
    let nodes = state_nodes(wd);
    eprintln!("fault 1: nodes in the state: {nodes:?}");
    // (Ready or not yet: its pod network may still be starting.)
    assert!(
        nodes.iter().any(|(n, _, status)| *n == node_names[0] && status == "ok"),
        "the state lists the control plane, running: {nodes:?}"
    );
    // The root outputs are not updated by a failed apply (Terraform's
    // rule); the cluster's kubeconfig is in the state.
    let show = wd.show_json(None);
    let kubeconfig = state_values(&show, CLUSTER)["kubeconfig"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        kubeconfig.contains(&format!("server: https://{}:6443", cp.addr)),
        "the cluster's kubeconfig is in the state after the stop"
    );

    // Terraform taints a failed create; the runbook's way to continue in
    // place is `untaint`, then apply.
    let o = wd.run(&["plan", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "{o}");
    assert!(
        o.stdout.contains(&format!("{CLUSTER} is tainted, so must be replaced")),
        "{o}"
    );
    wd.ok(&["untaint", CLUSTER]);
    let o = wd.run(&["plan", "-input=false", "-no-color"]);
    assert!(o.stdout.contains(&format!("{CLUSTER} will be updated in-place")), "{o}");

    let started = Instant::now();
    let mut o = wd.run_env(&APPLY, &[("TF_LOG", "TRACE")]);
    assert_eq!(o.code, Some(0), "the next apply finishes the join:\n{o}");
    eprintln!("fault 1: the resuming apply took {:.0?}", started.elapsed());
    assert!(
        !o.stderr.contains(&format!("{}: kubeadm init", label(k, cp))),
        "the control plane was not initialised again:\n{}",
        o.stdout
    );
    let nodes = state_nodes(wd);
    assert!(
        node_names
            .iter()
            .all(|name| nodes.iter().any(|(n, ready, _)| n == name && *ready)),
        "both nodes in the state, Ready: {nodes:?}"
    );
    expect_empty_plan(wd, "after the resumed create");
    o.stdout = first + &o.stdout;
    o.stderr = run.log_text() + &o.stderr;
    o
}

/// Fault 2. The configuration in `wd` adds `k.hosts[2]` as a worker; its
/// apply runs until `kubeadm join` runs on that host, then every sshd on
/// it is killed (by a watcher on the host, within 50 ms). The apply fails by itself, naming the host and the step;
/// the state keeps the cluster (the other nodes Ready); once sshd is back
/// (systemd restarts it) the next apply joins the host and the plan after
/// it is empty.
pub fn ssh_cut_during_join(k: &K8sBed, wd: &Workdir, join_log: &str) {
    let host = &k.hosts[2];
    let node_names = names(k, 3);
    let trigger = format!("{}: {join_log}", label(k, host));
    let watcher = OnJoin::arm(k, host, "pkill -9 -x sshd");
    let mut run = Spawned::start(wd, "grow-1", &APPLY, &[("TF_LOG", "INFO")]);
    run.wait_for_log(&trigger, Duration::from_secs(20 * 60));
    let cut = Instant::now();
    let status = run.wait(Duration::from_secs(10 * 60));
    let out = run.output();
    eprintln!(
        "fault 2 (sshd killed during kubeadm join): terraform exited {status} {:.1?} after the join step was logged; what the user saw:\n{out}",
        cut.elapsed()
    );
    assert_eq!(status.code(), Some(1), "the apply fails by itself:\n{out}");
    let text = words(&out);
    assert!(
        !text.contains("panic") && !text.contains("plugin did not respond"),
        "{out}"
    );
    assert!(
        text.contains("Lost the node during kubeadm join")
            && text.contains(&format!(
                "{}: the SSH connection was lost during kubeadm join",
                label(k, host)
            )),
        "the error names the host and the step:\n{out}"
    );

    // sshd is back (systemd restarts it).
    let from = Instant::now();
    while !k.bed.ssh(host, "true").status.success() {
        assert!(from.elapsed() < Duration::from_secs(60), "sshd never came back");
        std::thread::sleep(Duration::from_millis(500));
    }
    let pid = watcher.fired();
    assert!(pid.is_some(), "the watcher killed sshd while kubeadm join ran");
    drop(watcher);
    settle(k, host);

    // The state keeps the cluster; its other nodes are Ready.
    let nodes = state_nodes(wd);
    eprintln!("fault 2: nodes in the state: {nodes:?}");
    for name in &node_names[..2] {
        assert!(
            nodes.iter().any(|(n, ready, _)| n == name && *ready),
            "{name} Ready in the state: {nodes:?}"
        );
    }

    // The next apply converges.
    let o = wd.run(&APPLY);
    assert_eq!(o.code, Some(0), "the next apply joins the host:\n{o}");
    let nodes = state_nodes(wd);
    assert!(
        node_names
            .iter()
            .all(|name| nodes.iter().any(|(n, ready, _)| n == name && *ready)),
        "three nodes in the state, Ready: {nodes:?}"
    );
    expect_empty_plan(wd, "after the join the SSH cut stopped");
}

/// Ten agents with a Service, a Secret and a ConfigMap each (`count`),
/// on the cluster of `selfhost_k8s_cluster.main`.
pub const AGENTS: &str = r#"
resource "selfhost_agent" "fleet" {
  count      = 10
  kubeconfig = selfhost_k8s_cluster.main.kubeconfig
  namespace  = "agents"
  name       = "fleet-${count.index}"
  image      = "selfhost.test/echo:1"
  replicas   = 1
  secret_env   = { API_TOKEN = "token-${count.index}" }
  config_files = { "agent.yaml" = "index: ${count.index}\n" }
  port {
    name = "http"
    port = 8080
  }
  readiness_probe {
    http_path = "/ready"
  }
  resources {
    cpu_request    = "5m"
    cpu_limit      = "100m"
    memory_request = "16Mi"
    memory_limit   = "48Mi"
  }
  timeouts {
    create = "10m"
    update = "10m"
  }
}
"#;

/// How many objects of `kind` carry the agents' ownership label.
fn count_agent_objects(kc: &KubeBed, kind: &str) -> usize {
    let out = kc.ok(&[
        "-n",
        "agents",
        "get",
        kind,
        "-l",
        "selfhost.dev/resource=agent",
        "-o",
        "name",
    ]);
    out.lines().filter(|l| !l.trim().is_empty()).count()
}

/// Fault 3. `config` (the cluster's configuration) plus [`AGENTS`] is
/// applied (three at a time) and once the first agent's objects are
/// applied, the API server's static pod is stopped (its manifest moved out
/// of /etc/kubernetes/manifests until the process is gone) and started
/// again (moved back). The apply must end by itself within the agents'
/// timeouts: success, or a clear error (no panic, no hang). The state then
/// lists only agents that exist (or, tainted, whose create failed); the next apply converges, the plan after
/// is empty, and the cluster holds exactly ten of each object kind.
pub fn api_server_restart_during_agents(k: &K8sBed, wd: &Workdir, kc: &KubeBed, config: &str) {
    let cp = &k.hosts[0];
    wd.write("main.tf", &format!("{config}{AGENTS}"));
    let mut args = APPLY.to_vec();
    args.push("-parallelism=3");
    let mut run = Spawned::start(wd, "agents-1", &args, &[("TF_LOG", "INFO")]);
    run.wait_for_log("applied the agent's objects", Duration::from_secs(10 * 60));
    let stop = Instant::now();
    k.bed.sh(
        cp,
        r#"set -e
mv /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/kube-apiserver.yaml.stopped
i=0
while pgrep -x kube-apiserver >/dev/null; do
  i=$((i+1)); [ "$i" -lt 120 ] || { echo "kube-apiserver still runs 60 s after its manifest left" >&2; exit 1; }
  sleep 0.5
done"#,
    );
    eprintln!(
        "fault 3: kube-apiserver gone {:.1?} after its manifest left",
        stop.elapsed()
    );
    run.expect_running("the API server went down (nothing would be tested)");
    std::thread::sleep(Duration::from_secs(5));
    k.bed.sh(
        cp,
        "mv /etc/kubernetes/kube-apiserver.yaml.stopped /etc/kubernetes/manifests/kube-apiserver.yaml",
    );
    let from = Instant::now();
    while !kc.run(&["get", "--raw", "/readyz"], None).0 {
        assert!(
            from.elapsed() < Duration::from_secs(300),
            "the API server did not come back in 5 min"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "fault 3: the API server answers again {:.0?} after it was stopped",
        stop.elapsed()
    );
    let status = run.wait(Duration::from_secs(15 * 60));
    let out = run.output();
    let log = run.log_text();
    let retried: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("transient Kubernetes API failure; retrying"))
        .collect();
    let retries = retried.len();
    let starting = retried
        .iter()
        .filter(|l| l.contains("403 Forbidden while the API server is not ready"))
        .count();
    let refused = retried.iter().filter(|l| l.contains("Connection refused")).count();
    eprintln!(
        "fault 3: retried API calls: {refused} refused connections, {starting} 403s of the starting server, {} others",
        retries - refused - starting
    );
    if let Some(l) = retried.iter().find(|l| l.contains("403 Forbidden while")) {
        eprintln!("fault 3: e.g. {l}");
    }
    eprintln!(
        "fault 3 (kube-apiserver restarted during ten agents): terraform exited {status} after {:.0?}, {retries} retried API calls in the log; what the user saw:\n{out}",
        run.started.elapsed()
    );
    let text = words(&out);
    assert!(
        !text.contains("panic") && !text.contains("plugin did not respond"),
        "{out}"
    );
    if !status.success() {
        assert_eq!(status.code(), Some(1), "{out}");
        assert!(
            text.contains("Error:") && text.contains("selfhost_agent.fleet["),
            "a failure is a diagnostic on the agent it stopped:\n{out}"
        );
    }

    // What the state lists exists in the cluster, but for agents whose
    // create failed: Terraform keeps them tainted, to be replaced.
    let pulled: serde_json::Value =
        serde_json::from_str(&wd.ok(&["state", "pull"]).stdout).expect("state pull is JSON");
    let mut in_state = Vec::new();
    for r in pulled["resources"].as_array().into_iter().flatten() {
        if r["type"] != "selfhost_agent" {
            continue;
        }
        for i in r["instances"].as_array().into_iter().flatten() {
            in_state.push((i["index_key"].as_i64().unwrap_or(-1), i["status"] == "tainted"));
        }
    }
    eprintln!("fault 3: agents in the state after the restart (index, tainted): {in_state:?}");
    let deployments = kc.ok(&[
        "-n",
        "agents",
        "get",
        "deployments",
        "-l",
        "selfhost.dev/resource=agent",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    for (i, tainted) in &in_state {
        assert!(
            *tainted || deployments.split_whitespace().any(|d| d == format!("fleet-{i}")),
            "selfhost_agent.fleet[{i}] is in the state (not tainted), so its Deployment exists: {deployments}"
        );
    }

    // The next apply converges: ten of each, nothing orphaned or twice.
    let o = wd.run(&APPLY);
    assert_eq!(o.code, Some(0), "the apply after the restart converges:\n{o}");
    expect_empty_plan(wd, "after the API server restart");
    let list = wd.ok(&["state", "list"]).stdout;
    assert_eq!(
        list.lines().filter(|l| l.starts_with("selfhost_agent.fleet[")).count(),
        10,
        "{list}"
    );
    for kind in ["deployments", "services", "configmaps", "secrets"] {
        assert_eq!(count_agent_objects(kc, kind), 10, "{kind} of the agents");
    }
    let nodes = ready_nodes(kc);
    assert!(nodes.iter().all(|(_, r)| *r), "every node Ready again: {nodes:?}");
}
