//! An independent NetworkPolicy evaluator: cyclonus (a Go tool written for
//! NetworkPolicy conformance work), installed with `go install` from the Go
//! module proxy and cached by version. Given the policies it reads from the
//! bed's API server (with kubectl's kubeconfig, not the provider's code) and
//! flows between peers whose labels and IPs come from the live pods, it says
//! which flows Kubernetes' NetworkPolicy semantics allow. Tests compare that
//! with the truth table their HCL intends.

#![allow(dead_code)] // each test file uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value as Json, json};

use super::kube::KubeBed;

/// The pinned version (`go install ...@VERSION`).
pub const CYCLONUS_VERSION: &str = "v0.5.6";

/// The evaluator's binary.
pub struct Evaluator {
    bin: PathBuf,
}

/// `~/.cache/selfhost-tools/cyclonus-<version>/cyclonus`, installed when
/// missing (once per test process: concurrent tests wait for the first);
/// `None` after a loud SKIP when Go is not installed (a panic under CI).
pub fn evaluator(test: &str) -> Option<Evaluator> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    match BIN.get_or_init(install) {
        Some(bin) => Some(Evaluator { bin: bin.clone() }),
        None if std::env::var_os("CI").is_some() => {
            panic!("{test}: `go` is needed to install the NetworkPolicy evaluator (cyclonus)")
        }
        None => {
            eprintln!(
                "\n*** SKIP (evaluator part of) {test}: `go` is not installed, so the NetworkPolicy evaluator (cyclonus) cannot be ***\n"
            );
            None
        }
    }
}

fn install() -> Option<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".to_owned());
    let dir = Path::new(&home)
        .join(".cache/selfhost-tools")
        .join(format!("cyclonus-{CYCLONUS_VERSION}"));
    let bin = dir.join("cyclonus");
    if bin.is_file() {
        return Some(bin);
    }
    let go = Command::new("go").arg("version").output();
    if !go.is_ok_and(|o| o.status.success()) {
        return None;
    }
    std::fs::create_dir_all(&dir).expect("create the tool cache");
    eprintln!("installing cyclonus {CYCLONUS_VERSION} into {} (once)", dir.display());
    let out = Command::new("go")
        .args([
            "install",
            &format!("github.com/mattfenwick/cyclonus/cmd/cyclonus@{CYCLONUS_VERSION}"),
        ])
        .env("GOBIN", &dir)
        .env("GOFLAGS", "-mod=mod")
        .stdin(Stdio::null())
        .output()
        .expect("run go install");
    assert!(
        out.status.success() && bin.is_file(),
        "go install cyclonus failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(bin)
}

/// One end of a flow.
#[derive(Clone, Debug)]
pub enum Peer {
    /// The pods of an agent of the test's namespace (labels and IP read
    /// from the live pod).
    Agent(&'static str),
    /// A pod elsewhere, described by hand (e.g. the cluster DNS).
    Pod {
        namespace: &'static str,
        labels: &'static [(&'static str, &'static str)],
        ip: &'static str,
    },
    /// An address outside the cluster.
    Ip(&'static str),
}

/// Traffic from one peer to another on a port.
#[derive(Clone, Debug)]
pub struct Flow {
    pub from: Peer,
    pub to: Peer,
    pub port: u16,
    /// "TCP" or "UDP".
    pub protocol: &'static str,
}

impl Flow {
    pub fn new(from: Peer, to: Peer, port: u16, protocol: &'static str) -> Flow {
        Flow {
            from,
            to,
            port,
            protocol,
        }
    }
}

impl std::fmt::Display for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |p: &Peer| match p {
            Peer::Agent(a) => (*a).to_owned(),
            Peer::Pod { namespace, labels, .. } => format!("{namespace}/{labels:?}"),
            Peer::Ip(ip) => (*ip).to_owned(),
        };
        write!(
            f,
            "{} -> {} {}/{}",
            name(&self.from),
            name(&self.to),
            self.port,
            self.protocol
        )
    }
}

/// The labels and IP of a running pod of `agent` in `ns`.
fn agent_pod(bed: &KubeBed, ns: &str, agent: &str) -> (Json, String) {
    let out = bed.ok(&[
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        &format!("selfhost.dev/agent={agent}"),
        "-o",
        "json",
    ]);
    let pods: Json = serde_json::from_str(&out).expect("kubectl get pods -o json");
    let pod = pods["items"]
        .as_array()
        .and_then(|a| a.first())
        .unwrap_or_else(|| panic!("no pod of agent {agent} in {ns}"))
        .clone();
    let ip = pod["status"]["podIP"].as_str().unwrap_or_default().to_owned();
    (pod["metadata"]["labels"].clone(), ip)
}

fn peer_json(bed: &KubeBed, ns: &str, p: &Peer) -> Json {
    let ns_labels = |n: &str| json!({ "kubernetes.io/metadata.name": n });
    match p {
        Peer::Agent(a) => {
            let (labels, ip) = agent_pod(bed, ns, a);
            json!({"Internal": {"PodLabels": labels, "NamespaceLabels": ns_labels(ns), "Namespace": ns}, "IP": ip})
        }
        Peer::Pod { namespace, labels, ip } => {
            let labels: serde_json::Map<String, Json> =
                labels.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
            json!({"Internal": {"PodLabels": labels, "NamespaceLabels": ns_labels(namespace), "Namespace": namespace}, "IP": ip})
        }
        Peer::Ip(ip) => json!({ "IP": ip }),
    }
}

impl Evaluator {
    /// Whether each of `flows` is allowed by the NetworkPolicies of `ns`
    /// on the bed's API server.
    pub fn allowed(&self, bed: &KubeBed, ns: &str, flows: &[Flow], dir: &Path) -> Vec<bool> {
        let traffic: Vec<Json> = flows
            .iter()
            .map(|f| {
                json!({
                    "Source": peer_json(bed, ns, &f.from),
                    "Destination": peer_json(bed, ns, &f.to),
                    "Protocol": f.protocol,
                    "ResolvedPort": f.port,
                    "ResolvedPortName": "",
                })
            })
            .collect();
        let path = dir.join("traffic.json");
        std::fs::write(&path, serde_json::to_string_pretty(&traffic).expect("JSON")).expect("write traffic.json");
        let out = Command::new(&self.bin)
            .args(["analyze", "--mode", "query-traffic", "-n", ns, "--traffic-path"])
            .arg(&path)
            .env("KUBECONFIG", &bed.kubeconfig)
            .stdin(Stdio::null())
            .output()
            .expect("run cyclonus");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "cyclonus failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // One verdict per flow, in order: the footer "IS ALLOWED? | TRUE".
        let verdicts: Vec<bool> = stdout
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("is allowed?"))
            .map(|l| l.to_ascii_lowercase().contains("true"))
            .collect();
        assert_eq!(
            verdicts.len(),
            flows.len(),
            "one verdict per flow expected from cyclonus:\n{stdout}"
        );
        verdicts
    }
}

/// Compare the evaluator's verdicts with `expected` (flow, allowed), naming
/// every flow that differs.
pub fn assert_truth_table(eval: &Evaluator, bed: &KubeBed, ns: &str, expected: &[(Flow, bool)], dir: &Path) {
    let flows: Vec<Flow> = expected.iter().map(|(f, _)| f.clone()).collect();
    let got = eval.allowed(bed, ns, &flows, dir);
    let wrong: Vec<String> = expected
        .iter()
        .zip(&got)
        .filter(|((_, want), got)| want != *got)
        .map(|((f, want), got)| format!("{f}: intended {want}, evaluated {got}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "flows differing from the intended truth table:\n{}",
        wrong.join("\n")
    );
}
