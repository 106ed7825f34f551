//! Acceptance test of the in-place upgrade (issue 18): a REAL kubeadm
//! cluster on two of the bed's k8s hosts, created at the previous release
//! (v1.35.4, from the bed's previous bundle) with an agent of two replicas
//! and a disruption budget, then upgraded to the current release (v1.36.3)
//! by changing `version` (and the bundle it comes from), with a real
//! Terraform CLI through this build of the provider.
//!
//! While the upgrade runs, a probe loop OUTSIDE the cluster (this test
//! process) asks the agent through a NodePort on both nodes every 200 ms
//! and counts the failures. The first upgrade apply is interrupted with
//! SIGINT (Ctrl-C) once the worker's own step has started: the state must
//! show the control plane upgraded and the worker not, the worker cordoned
//! and said so; the next apply finishes the upgrade. Refusals at plan time
//! (a skipped minor, a release not in the bundle, a downgrade) are checked
//! at `version`. Everything is checked independently with the real kubectl.
//!
//! `eval "$(testbed/testbed env)"; cargo test --test acceptance_k8s_upgrade -- --nocapture`

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::bed::bed_var;
use support::cluster_lifecycle::expect_empty_plan;
use support::k8s::{FRESH_HOST, K8sBed, assert_clean, cluster_config, cluster_kubectl, k3s_cluster_config, k8s_bed};
use support::kube::KubeBed;
use support::{Workdir, clis_or_skip};

const TEST: &str = "kubeadm_cluster_upgrades_in_place_with_the_agent_serving";
const NODE_PORT: u16 = 30080;

/// The agent that must keep answering: two replicas allowed on the
/// control plane too (two nodes: each drain needs somewhere to go), and a
/// budget so a drain never takes both.
const AGENT: &str = r#"
resource "selfhost_agent" "web" {
  kubeconfig = selfhost_k8s_cluster.main.kubeconfig
  namespace  = "agents"
  name       = "web"
  image      = "selfhost.test/echo:1"
  replicas   = 2
  port {
    name = "http"
    port = 8080
  }
  readiness_probe {
    http_path = "/ready"
  }
  resources {
    cpu_request    = "20m"
    cpu_limit      = "200m"
    memory_request = "16Mi"
    memory_limit   = "64Mi"
  }
  toleration {
    key      = "node-role.kubernetes.io/control-plane"
    operator = "Exists"
    effect   = "NoSchedule"
  }
  disruption_budget {
    min_available = "1"
  }
  # a stopping pod keeps serving until the Service's endpoints drop it
  shutdown_delay_seconds = 15
  wait_for_rollout       = true
}
"#;

/// The cluster (control plane + w1) at `version` from `bundle`, and the agent.
fn config(k: &K8sBed, version: &str, bundle: &str) -> String {
    with_version(k, cluster_config(k, &["w1"], AGENT), version, bundle)
}

/// [`config`] with distribution = "k3s" (the bed's k3s STAND-IN).
fn k3s_config(k: &K8sBed, version: &str, bundle: &str) -> String {
    with_version(k, k3s_cluster_config(k, &["w1"], AGENT), version, bundle)
}

fn with_version(k: &K8sBed, hcl: String, version: &str, bundle: &str) -> String {
    let from = "version       = \"v1.36.3\"";
    assert!(
        hcl.contains(from) && hcl.contains(&k.bundle),
        "the shared configuration changed"
    );
    hcl.replace(from, &format!("version       = \"{version}\""))
        .replace(&k.bundle, bundle)
}

/// Probe results: answers, and each failure with when and why.
#[derive(Default)]
struct Probed {
    ok: u64,
    failures: Vec<String>,
}

/// Ask every address's NodePort every 200 ms until `stop`.
fn probe_loop(addrs: Vec<String>, stop: Arc<AtomicBool>) -> Probed {
    let started = Instant::now();
    let mut out = Probed::default();
    while !stop.load(Ordering::Relaxed) {
        for a in &addrs {
            match get(a) {
                Ok(()) => out.ok += 1,
                Err(why) => out
                    .failures
                    .push(format!("{:>6.1}s {a}: {why}", started.elapsed().as_secs_f64())),
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    out
}

/// Until both nodes' NodePort answer (kube-proxy programs a new NodePort
/// within seconds), at most 90 s.
fn await_answers(k: &K8sBed) {
    let waited = Instant::now();
    while let Err(why) = get(&k.hosts[0].addr).and_then(|()| get(&k.hosts[1].addr)) {
        assert!(
            waited.elapsed() < Duration::from_secs(90),
            "the agent never answered through the NodePort: {why}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The probe loop over the first two hosts, on its own thread, until the
/// returned flag is set.
fn start_probing(k: &K8sBed) -> (Arc<AtomicBool>, std::thread::JoinHandle<Probed>) {
    let stop = Arc::new(AtomicBool::new(false));
    let addrs: Vec<String> = k.hosts[..2].iter().map(|h| h.addr.clone()).collect();
    let flag = stop.clone();
    (stop, std::thread::spawn(move || probe_loop(addrs, flag)))
}

/// Two Ready agent pods, none of them one of `before` (the drains
/// rescheduled every pod).
fn assert_rescheduled(kc: &KubeBed, before: &[String]) {
    let after = agent_pods(kc);
    assert_eq!(after.len(), 2, "two Ready agent pods after the upgrade");
    assert!(
        after.iter().all(|u| !before.contains(u)),
        "every agent pod was rescheduled by the drains ({before:?} -> {after:?})"
    );
}

/// One HTTP GET through the NodePort; an answer from the echo agent or why not.
fn get(addr: &str) -> Result<(), String> {
    let target = format!("{addr}:{NODE_PORT}");
    let sock = target
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /probe HTTP/1.0\r\nHost: web\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| format!("read: {e}"))?;
    if body.starts_with("HTTP/1.0 200") && body.contains("echo from web-") {
        Ok(())
    } else {
        Err(format!("answer: {:?}", body.lines().next().unwrap_or("")))
    }
}

/// A NodePort Service of the test's own (not the provider's: the agent's
/// Service stays as the provider made it) selecting the agent's pods.
fn node_port(kc: &KubeBed) {
    kc.apply(&format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: web-nodeport, namespace: agents}}
spec:
  type: NodePort
  selector: {{selfhost.dev/agent: web}}
  ports: [{{port: 80, targetPort: 8080, nodePort: {NODE_PORT}}}]
"#
    ));
}

/// `name version unschedulable annotation` of every node.
fn node_lines(kc: &KubeBed) -> Vec<String> {
    let out = kc.ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.nodeInfo.kubeletVersion} {.spec.unschedulable} {.metadata.annotations.selfhost\\.dev/upgrading-to}{\"\\n\"}{end}",
    ]);
    out.lines().map(|l| l.trim().to_owned()).collect()
}

/// The UIDs of the agent's Running and Ready pods.
fn agent_pods(kc: &KubeBed) -> Vec<String> {
    let out = kc.ok(&[
        "-n",
        "agents",
        "get",
        "pods",
        "-l",
        "selfhost.dev/agent=web",
        "-o",
        "jsonpath={range .items[*]}{.metadata.uid} {.status.phase} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
    ]);
    out.lines()
        .filter(|l| l.ends_with(" Running True"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn words(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The cluster's values in the state.
fn cluster_state(wd: &Workdir) -> serde_json::Value {
    support::state_values(&wd.show_json(None), "selfhost_k8s_cluster.main").clone()
}

/// A plan of `hcl` must fail at `version` with `needle` (word by word: the
/// CLI wraps diagnostics).
fn refused_at_version(wd: &Workdir, hcl: &str, needle: &str) {
    wd.write("main.tf", hcl);
    let o = wd.run(&["plan", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(1), "{o}");
    let text = words(&o.output());
    assert!(text.contains(&words(needle)), "expected {needle:?}:\n{o}");
    assert!(text.contains("version"), "the diagnostic names `version`:\n{o}");
}

/// What a node runs of the bundle's runtime: containerd's start time (it
/// changes on a restart) and the SHA-256 of containerd, runc and the CNI
/// bridge plugin as installed.
fn runtime_on(k: &K8sBed, h: &support::bed::Host) -> (String, String) {
    let started = k
        .bed
        .sh(h, "systemctl show -p ActiveEnterTimestampMonotonic --value containerd");
    let sums = k.bed.sh(
        h,
        "sha256sum /usr/local/bin/containerd /usr/local/sbin/runc /opt/cni/bin/bridge | cut -d' ' -f1",
    );
    (started.trim().to_owned(), sums)
}

/// The same three files in `bundle`.
fn runtime_in(bundle: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("cd \"$1\" && sha256sum containerd/bin/containerd runc/runc.amd64 cni/bin/bridge | cut -d' ' -f1")
        .arg("sh")
        .arg(bundle)
        .output()
        .expect("sha256sum");
    assert!(out.status.success(), "sha256sum in {bundle}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn kubeadm_cluster_upgrades_in_place_with_the_agent_serving() {
    let Some(k) = k8s_bed(TEST) else { return };
    let _hosts = support::bed::hosts_lock();
    let Some(previous) = bed_var(TEST, "SELFHOST_TEST_K8S_BUNDLE_PREVIOUS") else {
        return;
    };
    let Some(from) = bed_var(TEST, "SELFHOST_TEST_K8S_PREVIOUS_VERSION") else {
        return;
    };
    let to = "v1.36.3";
    let clis = clis_or_skip(TEST);
    let Some(cli) = clis.last() else { return };
    eprintln!("==== {TEST}: {} ({}): {from} -> {to}", cli.label(), cli.path.display());
    for h in &k.hosts[..2] {
        k.bed.sh(h, FRESH_HOST);
    }
    let names: Vec<String> = k.hosts[..2]
        .iter()
        .map(|h| k.bed.sh(h, "hostname").trim().to_owned())
        .collect();
    let (cp, w1) = (&names[0], &names[1]);
    let old = config(&k, &from, &previous);
    let new = config(&k, to, &k.bundle);

    let mut wd = Workdir::new(cli, "upgrade");
    wd.set_step_timeout(Duration::from_secs(30 * 60));
    wd.write("main.tf", &old);
    wd.init();

    // 1. Two bare hosts -> a cluster at the previous release -> the agent.
    let started = Instant::now();
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    eprintln!("create at {from}: {:.0?}", started.elapsed());
    let kc = cluster_kubectl(&k, &wd);
    let s = cluster_state(&wd);
    assert_eq!(s["running_version"], from.as_str(), "{s}");
    for n in s["nodes"].as_array().expect("nodes") {
        assert_eq!(n["version"], from.as_str(), "{n}");
    }
    node_port(&kc);
    let before = agent_pods(&kc);
    assert_eq!(before.len(), 2, "two Ready agent pods before the upgrade");
    // kube-proxy programs the new NodePort within seconds
    await_answers(&k);

    // 2. Refused at plan time, at `version`, with the reason.
    refused_at_version(
        &wd,
        &config(&k, "v1.37.2", &k.bundle),
        &format!("{from} → v1.37.2 skips 1 minor version"),
    );
    refused_at_version(
        &wd,
        &config(&k, to, &previous),
        &format!("the bundle holds Kubernetes \"{from}\""),
    );

    let runtime_before: Vec<(String, String)> = k.hosts[..2].iter().map(|h| runtime_on(&k, h)).collect();
    for (h, (_, sums)) in k.hosts[..2].iter().zip(&runtime_before) {
        assert_eq!(
            sums,
            &runtime_in(&previous),
            "{}: the previous bundle's runtime",
            h.addr
        );
    }

    // 3. The upgrade, interrupted (SIGINT, as Ctrl-C sends) once the
    // worker's own step started; the probe loop runs throughout.
    let (stop, prober) = start_probing(&k);
    wd.write("main.tf", &new);
    let log = wd.path.join("upgrade-1.log");
    let started = Instant::now();
    let mut child = wd
        .command(
            &["apply", "-auto-approve", "-input=false", "-no-color"],
            &[("TF_LOG", "INFO"), ("TF_LOG_PATH", &log.display().to_string())],
        )
        .stdout(std::fs::File::create(wd.path.join("upgrade-1.out")).expect("out file"))
        .stderr(std::fs::File::create(wd.path.join("upgrade-1.err")).expect("err file"))
        .spawn()
        .expect("start the upgrade apply");
    let trigger = format!("{}:{}: kubeadm upgrade node", k.hosts[1].addr, k.hosts[1].port);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&trigger) {
            break;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            let out = std::fs::read_to_string(wd.path.join("upgrade-1.out")).unwrap_or_default();
            panic!("the upgrade apply ended ({status}) before the worker's step:\n{out}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(25 * 60),
            "no worker step in 25 min"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("worker step after {:.0?}: SIGINT", started.elapsed());
    let interrupted = Instant::now();
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            interrupted.elapsed() < Duration::from_secs(120),
            "terraform still running 120 s after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("terraform exited {status} {:.1?} after SIGINT", interrupted.elapsed());
    assert!(!status.success(), "an interrupted apply fails");
    let out = std::fs::read_to_string(wd.path.join("upgrade-1.out")).unwrap_or_default()
        + &std::fs::read_to_string(wd.path.join("upgrade-1.err")).unwrap_or_default();
    let text = words(&out);
    assert!(
        text.contains(&format!("Upgrade to {to} stopped")) && text.contains(w1.as_str()),
        "the error names the step and the node:\n{out}"
    );
    let s = cluster_state(&wd);
    assert_eq!(
        s["version"],
        from.as_str(),
        "the state keeps the version not every node runs: {s}"
    );
    assert_eq!(s["running_version"], to, "{s}");
    let versions: Vec<(String, String)> = s["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or("").to_owned(),
                n["version"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [(cp.clone(), to.to_owned()), (w1.clone(), from.clone())],
        "the state shows the control plane upgraded and the worker not"
    );
    let lines = node_lines(&kc);
    eprintln!("nodes after the interruption: {lines:?}");
    if lines.iter().any(|l| l.starts_with(w1.as_str()) && l.contains(" true ")) {
        assert!(text.contains("stays cordoned"), "a cordoned node is said so:\n{out}");
    }
    let o = wd.ok(&["plan", "-input=false", "-no-color"]);
    assert!(
        words(&o.stdout).contains(&format!("~ version = \"{from}\" -> \"{to}\"")),
        "the next plan shows the upgrade again:\n{o}"
    );

    // 4. The next apply finishes it, from the worker's step.
    let started = Instant::now();
    let o = wd.run_env(
        &["apply", "-auto-approve", "-input=false", "-no-color"],
        &[("TF_LOG", "INFO")],
    );
    assert_eq!(o.code, Some(0), "{o}");
    eprintln!("resumed upgrade: {:.0?}", started.elapsed());
    assert!(o.stderr.contains(&trigger), "the worker's step ran again:\n{o}");
    assert!(
        !o.stderr.contains("kubeadm upgrade apply"),
        "the control plane was not upgraded twice:\n{o}"
    );
    stop.store(true, Ordering::Relaxed);
    let probed = prober.join().expect("probe loop");
    eprintln!(
        "probe loop through the upgrade: {} answers, {} failures{}",
        probed.ok,
        probed.failures.len(),
        probed.failures.iter().map(|f| format!("\n  {f}")).collect::<String>()
    );

    let lines = node_lines(&kc);
    assert_eq!(
        lines,
        [format!("{cp} {to}"), format!("{w1} {to}")],
        "both nodes at {to}, schedulable, unmarked"
    );
    let server = kc.ok(&["version", "-o", "json"]);
    let server: serde_json::Value = serde_json::from_str(&server).expect("version JSON");
    assert_eq!(server["serverVersion"]["gitVersion"], to);
    let s = cluster_state(&wd);
    assert_eq!(
        (s["version"].as_str(), s["running_version"].as_str()),
        (Some(to), Some(to)),
        "{s}"
    );
    for n in s["nodes"].as_array().expect("nodes") {
        assert_eq!(
            (n["version"].as_str(), n["ready"].as_bool()),
            (Some(to), Some(true)),
            "{n}"
        );
    }
    // The runtime pinned by the bundle came along: each node runs the new
    // bundle's containerd, runc and CNI plugins, containerd restarted in
    // its window (both bundles carry containerd 1.6.20 here, so this shows
    // the install and the restart, not a version change).
    for (h, (started, _)) in k.hosts[..2].iter().zip(&runtime_before) {
        let (now, sums) = runtime_on(&k, h);
        assert_eq!(sums, runtime_in(&k.bundle), "{}: the new bundle's runtime", h.addr);
        assert_ne!(&now, started, "{}: containerd restarted during the upgrade", h.addr);
    }
    assert_rescheduled(&kc, &before);
    assert!(
        probed.ok > 100 && probed.failures.is_empty(),
        "the agent kept answering through the upgrade"
    );
    expect_empty_plan(&wd, "after the upgrade");

    // 5. A downgrade is refused at `version`.
    refused_at_version(&wd, &old, "Kubernetes does not support downgrades");
    wd.write("main.tf", &new);

    // 6. Destroy leaves the hosts clean.
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    for h in &k.hosts[..2] {
        assert_clean(&k, h);
    }
}

/// The same upgrade with distribution = "k3s" against the bed's k3s
/// STAND-IN (testbed/README.md: real kubelet, containerd and control-plane
/// images of each release behind a k3s-shaped binary; not k3s): the
/// binary replaced and the unit restarted, server first, then the agent
/// drained, upgraded and uncordoned, while the agent keeps answering.
#[test]
fn k3s_cluster_upgrades_in_place_with_the_agent_serving() {
    const TEST: &str = "k3s_cluster_upgrades_in_place_with_the_agent_serving";
    let Some(k) = k8s_bed(TEST) else { return };
    let _hosts = support::bed::hosts_lock();
    let Some(previous) = bed_var(TEST, "SELFHOST_TEST_K8S_BUNDLE_PREVIOUS") else {
        return;
    };
    let Some(from) = bed_var(TEST, "SELFHOST_TEST_K8S_PREVIOUS_VERSION") else {
        return;
    };
    let to = "v1.36.3";
    let clis = clis_or_skip(TEST);
    let Some(cli) = clis.last() else { return };
    eprintln!(
        "==== {TEST}: {} ({}): {from} -> {to} (k3s STAND-IN)",
        cli.label(),
        cli.path.display()
    );
    for h in &k.hosts[..2] {
        k.bed.sh(h, FRESH_HOST);
    }
    let old = k3s_config(&k, &from, &previous);
    let new = k3s_config(&k, to, &k.bundle);
    let mut wd = Workdir::new(cli, "k3s-upgrade");
    wd.set_step_timeout(Duration::from_secs(30 * 60));
    wd.write("main.tf", &old);
    wd.init();
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let kc = cluster_kubectl(&k, &wd);
    assert_eq!(cluster_state(&wd)["running_version"], from.as_str());
    node_port(&kc);
    let before = agent_pods(&kc);
    assert_eq!(before.len(), 2, "two Ready agent pods before the upgrade");
    await_answers(&k);

    let (stop, prober) = start_probing(&k);
    wd.write("main.tf", &new);
    let started = Instant::now();
    let o = wd.run_env(
        &["apply", "-auto-approve", "-input=false", "-no-color"],
        &[("TF_LOG", "INFO")],
    );
    stop.store(true, Ordering::Relaxed);
    let probed = prober.join().expect("probe loop");
    assert_eq!(o.code, Some(0), "{o}");
    eprintln!(
        "k3s upgrade: {:.0?}; probe loop: {} answers, {} failures{}",
        started.elapsed(),
        probed.ok,
        probed.failures.len(),
        probed.failures.iter().map(|f| format!("\n  {f}")).collect::<String>()
    );
    assert!(!o.stderr.contains("kubeadm"), "no kubeadm step in a k3s upgrade:\n{o}");
    // server first, then the agent, each drained in its turn
    let drained: Vec<Option<usize>> = k.hosts[..2]
        .iter()
        .map(|h| o.stderr.find(&format!("{}:{}: draining", h.addr, h.port)))
        .collect();
    assert!(
        matches!(drained[..], [Some(server), Some(agent)] if server < agent),
        "the server drained before the agent: {drained:?}\n{o}"
    );
    let s = cluster_state(&wd);
    assert_eq!(
        (s["version"].as_str(), s["running_version"].as_str()),
        (Some(to), Some(to)),
        "{s}"
    );
    for n in s["nodes"].as_array().expect("nodes") {
        assert_eq!(
            (n["version"].as_str(), n["ready"].as_bool()),
            (Some(to), Some(true)),
            "{n}"
        );
    }
    for h in &k.hosts[..2] {
        let v = k.bed.sh(h, "/usr/local/bin/k3s --version | head -1");
        assert!(v.contains(&format!("{to}+k3s")), "{}: {v}", h.addr);
    }
    assert_rescheduled(&kc, &before);
    assert!(
        probed.ok > 50 && probed.failures.is_empty(),
        "the agent kept answering through the upgrade"
    );
    expect_empty_plan(&wd, "after the k3s upgrade");
    refused_at_version(&wd, &old, "Kubernetes does not support downgrades");
    wd.write("main.tf", &new);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
}
