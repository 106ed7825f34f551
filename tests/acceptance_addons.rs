//! The platform's front door and walls, on a REAL kubeadm cluster of the
//! test bed, in ONE apply from bare hosts: `selfhost_k8s_cluster` with its
//! add-ons (traefik with ACME, kube-network-policies, metrics-server) and
//! agents using them. Checked from outside the provider: curl from this
//! process, the real kubectl, plain OpenSSH, pebble's own log, and an
//! independent NetworkPolicy evaluator (cyclonus).
//!
//! - HTTPS: pebble (Let's Encrypt's ACME test server) and its challenge DNS
//!   server run on the bed's host side, outside the cluster, like a real
//!   ACME CA; pebble's HTTPS certificate is made here and given to the
//!   cluster as `acme.ca_certificate` (what a private ACME server needs).
//!   challtestsrv answers every name with the ingress node's address, so
//!   pebble's HTTP-01 check reaches traefik on port 80. curl gets the
//!   agent's answer over HTTPS with pebble's root as the only trust
//!   anchor; plain HTTP redirects; a restarted traefik orders nothing new.
//! - Enforcement by packets: agents on two workers (same node and across
//!   VXLAN), default-deny in both directions, one allowed flow; the bed's
//!   kube-network-policies build carries an NFQUEUE patch because this
//!   machine's kernel lacks nft_queue (testbed/README.md).
//! - `kubectl top`, an HPA with a current CPU utilization.
//! - Drift of an add-on, one turned off leaving nothing behind, destroy.
//!
//! `eval "$(testbed/testbed env)"; eval "$(scripts/test-tools)"; cargo test --test acceptance_addons -- --nocapture`

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::host_side::{Daemon, free_port, wait_listening};
use support::k8s::{FRESH_HOST, K8sBed, assert_clean, cluster_config, cluster_kubectl, k8s_bed};
use support::kube::KubeBed;
use support::netpol::{Flow, Peer, assert_truth_table, evaluator};
use support::{Workdir, clis_or_skip};

const HOST_NAME: &str = "shop.selfhost.test";
const NS: &str = "agents";
/// The bundle's metrics-server image (the add-on's pinned one).
const METRICS_IMAGE: &str = "registry.k8s.io/metrics-server/metrics-server:v0.8.0";

/// pebble and challtestsrv on the host side.
struct Acme {
    directory: String,
    /// pebble's own HTTPS certificate (self-signed, made here).
    server_ca: PathBuf,
    management: String,
    log: PathBuf,
    _pebble: Daemon,
    _dns: Daemon,
}

fn start_acme(dir: &Path, ingress_ip: &str) -> Acme {
    let pebble = std::env::var("SELFHOST_TEST_PEBBLE").expect("SELFHOST_TEST_PEBBLE (scripts/test-tools)");
    let challtestsrv =
        std::env::var("SELFHOST_TEST_CHALLTESTSRV").expect("SELFHOST_TEST_CHALLTESTSRV (scripts/test-tools)");
    let addr = support::host_side::address();
    let (cert, key) = (dir.join("pebble-cert.pem"), dir.join("pebble-key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
        ])
        .args(["-subj", "/CN=pebble", "-addext", &format!("subjectAltName=IP:{addr}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (dns_port, mgmt_dns, port, mgmt) = (free_port(&addr), free_port(&addr), free_port(&addr), free_port(&addr));
    let dns = Daemon(
        Command::new(&challtestsrv)
            .args(["-defaultIPv4", ingress_ip, "-defaultIPv6", ""])
            .args(["-dnsserver", &format!("{addr}:{dns_port}")])
            .args(["-management", &format!("{addr}:{mgmt_dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble-challtestsrv"),
    );
    wait_listening(&addr, mgmt_dns, "challtestsrv");
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("{addr}:{port}"),
        "managementListenAddress": format!("{addr}:{mgmt}"),
        "certificate": cert, "privateKey": key,
        // where the HTTP-01 and TLS-ALPN-01 checks connect: the ingress's host ports
        "httpPort": 80, "tlsPort": 443,
        "ocspResponderURL": "", "externalAccountBindingRequired": false,
    }});
    let cfg = dir.join("pebble.json");
    std::fs::write(&cfg, config.to_string()).expect("pebble config");
    let log = dir.join("pebble.log");
    let log_file = std::fs::File::create(&log).expect("pebble log");
    let pebble = Daemon(
        Command::new(&pebble)
            .arg("-config")
            .arg(&cfg)
            .args(["-dnsserver", &format!("{addr}:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("start pebble"),
    );
    wait_listening(&addr, port, "pebble");
    Acme {
        directory: format!("https://{addr}:{port}/dir"),
        server_ca: cert,
        management: format!("https://{addr}:{mgmt}"),
        log,
        _pebble: pebble,
        _dns: dns,
    }
}

impl Acme {
    /// The root that signs the certificates pebble issues (new every run).
    fn issuing_root(&self, dir: &Path) -> PathBuf {
        let path = dir.join("pebble-root.pem");
        let out = Command::new("curl")
            .args(["-sS", "-k", "-o"])
            .arg(&path)
            .arg(format!("{}/roots/0", self.management))
            .output()
            .expect("curl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        path
    }

    fn issued(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("Issued certificate serial")
            .count()
    }
}

/// The cluster's `ingress {}` (on the control plane) for `acme`.
fn ingress_block(acme: &Acme) -> String {
    format!(
        r#"  ingress {{
    acme {{
      email          = "ops@selfhost.test"
      server         = "{}"
      ca_certificate = file("{}")
    }}
  }}

"#,
        acme.directory,
        acme.server_ca.display()
    )
}

fn listener_agent(name: &str, node: &str) -> String {
    format!(
        r#"
resource "selfhost_agent" "{name}" {{
  kubeconfig    = selfhost_k8s_cluster.main.kubeconfig
  namespace     = "{NS}"
  name          = "{name}"
  image         = "selfhost.test/client:1"
  # two HTTP listeners (the fetch binary is the echo server when given no URL)
  command       = ["sh", "-c", "fetch & LISTEN=:9090 exec fetch"]
  node_selector = {{ "kubernetes.io/hostname" = "{node}" }}
  port {{
    name = "http"
    port = 8080
  }}
  port {{
    name = "other"
    port = 9090
  }}
}}
"#
    )
}

fn client_agent(name: &str, node: &str) -> String {
    format!(
        r#"
resource "selfhost_agent" "{name}" {{
  kubeconfig    = selfhost_k8s_cluster.main.kubeconfig
  namespace     = "{NS}"
  name          = "{name}"
  image         = "selfhost.test/client:1"
  command       = ["sleep", "36000"]
  node_selector = {{ "kubernetes.io/hostname" = "{node}" }}
}}
"#
    )
}

const SHOP: &str = r#"
resource "selfhost_agent" "shop" {
  kubeconfig = selfhost_k8s_cluster.main.kubeconfig
  namespace  = "agents"
  name       = "shop"
  image      = "selfhost.test/echo:1"
  port {
    name = "http"
    port = 8080
  }
  resources {
    cpu_request    = "50m"
    cpu_limit      = "200m"
    memory_request = "32Mi"
    memory_limit   = "64Mi"
  }
  ingress {
    host = "shop.selfhost.test"
  }
  autoscaling {
    min_replicas = 1
    max_replicas = 3
    cpu_percent  = 60
  }
}
"#;

const POLICIES: &str = r#"
resource "selfhost_network_policy" "api" {
  kubeconfig   = selfhost_k8s_cluster.main.kubeconfig
  namespace    = "agents"
  name         = "api-ingress"
  agents       = ["api-a", "api-b"]
  default_deny = ["ingress"]
  ingress {
    from_agents = ["front"]
    ports       = ["8080/tcp"]
  }
}

resource "selfhost_network_policy" "front" {
  kubeconfig   = selfhost_k8s_cluster.main.kubeconfig
  namespace    = "agents"
  name         = "front-egress"
  agents       = ["front"]
  default_deny = ["egress"]
  allow_dns    = true
  egress {
    to_agents = ["api-a", "api-b"]
    ports     = ["8080/tcp"]
  }
}
"#;

fn node_name(k: &K8sBed, i: usize) -> String {
    k.bed.sh(&k.hosts[i], "hostname").trim().to_owned()
}

/// The whole configuration; `policies` and `metrics` toggle parts.
fn config(k: &K8sBed, acme: &Acme, policies: bool, metrics: bool) -> String {
    let (w1, w2) = (node_name(k, 1), node_name(k, 2));
    let mut workloads = String::from(SHOP);
    workloads.push_str(&listener_agent("api-a", &w1));
    workloads.push_str(&listener_agent("api-b", &w2));
    workloads.push_str(&client_agent("front", &w1));
    workloads.push_str(&client_agent("intruder", &w2));
    if policies {
        workloads.push_str(POLICIES);
    }
    let hcl = cluster_config(k, &["w1", "w2"], &workloads);
    let mut cluster_lines = ingress_block(acme);
    if !metrics {
        cluster_lines.push_str("  metrics_server = false\n\n");
    }
    let anchor = "  timeouts {\n    create = \"25m\"";
    assert!(hcl.contains(anchor), "the cluster block's timeouts moved");
    hcl.replacen(anchor, &format!("{cluster_lines}{anchor}"), 1)
}

fn apply(wd: &Workdir) {
    let o = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "{o}");
}

fn expect_empty_plan(wd: &Workdir, when: &str) {
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "the plan {when} must be empty\n{o}");
}

/// curl with `args`, retried until `ok` accepts its output or `limit` passes.
fn curl_until(args: &[&str], limit: Duration, ok: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + limit;
    loop {
        let out = Command::new("curl").args(args).output().expect("curl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() && ok(&text) {
            return text;
        }
        assert!(Instant::now() < until, "curl {args:?} never succeeded:\n{text}");
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn https(cp: &str, root: &Path, path: &str) -> String {
    let resolve = format!("{HOST_NAME}:443:{cp}");
    let url = format!("https://{HOST_NAME}{path}");
    let root = root.display().to_string();
    curl_until(
        &[
            "-sS",
            "-v",
            "--max-time",
            "10",
            "--resolve",
            &resolve,
            "--cacert",
            &root,
            &url,
        ],
        Duration::from_secs(120),
        |t| t.contains("echo from shop-"),
    )
}

/// `fetch` from a pod of agent `from` to `url`: Ok(answer) or Err(error).
fn fetch(kc: &KubeBed, from: &str, url: &str) -> Result<String, String> {
    let (ok, out, err) = kc.run(&["-n", NS, "exec", &format!("deploy/{from}"), "--", "fetch", url], None);
    if ok { Ok(out) } else { Err(format!("{out}{err}")) }
}

fn pod_ip(kc: &KubeBed, agent: &str) -> String {
    kc.ok(&[
        "-n",
        NS,
        "get",
        "pods",
        "-l",
        &format!("selfhost.dev/agent={agent}"),
        "-o",
        "jsonpath={.items[0].status.podIP}",
    ])
    .trim()
    .to_owned()
}

/// A flow that must pass (retried briefly: rules settle within seconds).
fn passes(kc: &KubeBed, from: &str, url: &str) {
    let mut last = String::new();
    for _ in 0..15 {
        match fetch(kc, from, url) {
            Ok(a) if a.starts_with("echo from ") => return,
            Ok(a) => last = a,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    panic!("{from} -> {url} must pass: {last}");
}

/// A flow that must be dropped: the connection times out (a refusal
/// would mean the packets got through to a closed port).
fn blocked(kc: &KubeBed, from: &str, url: &str) {
    match fetch(kc, from, url) {
        Ok(a) => panic!("{from} -> {url} must be blocked, got: {a}"),
        Err(e) => assert!(
            e.contains("Timeout") || e.contains("timeout") || e.contains("deadline"),
            "{from} -> {url}: expected a timeout (dropped packets), got: {e}"
        ),
    }
}

fn top_answers(kc: &KubeBed, args: &[&str]) -> String {
    let until = Instant::now() + Duration::from_secs(180);
    loop {
        let (ok, out, err) = kc.run(args, None);
        if ok && out.lines().count() > 1 {
            return out;
        }
        assert!(Instant::now() < until, "kubectl {args:?} never answered: {out}{err}");
        std::thread::sleep(Duration::from_secs(5));
    }
}

#[test]
fn https_enforcement_and_metrics_from_bare_hosts_in_one_apply() {
    const TEST: &str = "https_enforcement_and_metrics_from_bare_hosts_in_one_apply";
    let Some(k) = k8s_bed(TEST) else { return };
    let Some(cli) = clis_or_skip(TEST).last() else { return };
    eprintln!("==== {TEST}: {} ({})", cli.label(), cli.path.display());
    for h in &k.hosts[..3] {
        k.bed.sh(h, FRESH_HOST);
    }
    let mut wd = Workdir::new(cli, "addons");
    wd.set_step_timeout(Duration::from_secs(35 * 60));
    let cp = k.hosts[0].addr.clone();
    let acme = start_acme(&wd.path, &cp);
    wd.write("main.tf", &config(&k, &acme, true, true));
    wd.init();

    let started = Instant::now();
    apply(&wd);
    eprintln!(
        "one apply, bare hosts to the platform with its add-ons: {:.0?}",
        started.elapsed()
    );
    let kc = cluster_kubectl(&k, &wd);
    expect_empty_plan(&wd, "after the first apply");

    // ---- HTTPS from outside the cluster, certificate from ACME.
    let root = acme.issuing_root(&wd.path);
    let answer = https(&cp, &root, "/hello");
    assert!(answer.contains("GET /hello"), "{answer}");
    assert!(
        answer.contains("issuer: CN=Pebble Intermediate CA"),
        "issued by pebble:\n{answer}"
    );
    assert!(
        answer.contains(&format!("subject: CN={HOST_NAME}")) || answer.contains(&format!("\"{HOST_NAME}\" matched")),
        "the certificate names the host:\n{answer}"
    );
    let redirect = curl_until(
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "--max-time",
            "10",
            "--resolve",
            &format!("{HOST_NAME}:80:{cp}"),
            &format!("http://{HOST_NAME}/x"),
        ],
        Duration::from_secs(30),
        |_| true,
    );
    let (code, location) = redirect.split_once(' ').unwrap_or_default();
    assert!(
        matches!(code, "301" | "302" | "307" | "308"),
        "HTTP redirects: {redirect}"
    );
    assert_eq!(location.trim(), format!("https://{HOST_NAME}/x"), "{redirect}");
    assert_eq!(acme.issued(), 1, "one certificate ordered");
    // A restarted traefik keeps its certificate: no second order.
    kc.ok(&[
        "-n",
        "selfhost-ingress",
        "delete",
        "pod",
        "-l",
        "app.kubernetes.io/name=traefik",
        "--wait=true",
    ]);
    kc.ok(&[
        "-n",
        "selfhost-ingress",
        "rollout",
        "status",
        "deployment/traefik",
        "--timeout=120s",
    ]);
    https(&cp, &root, "/again");
    assert_eq!(acme.issued(), 1, "the restarted traefik re-ordered a certificate");
    let stored = k
        .bed
        .sh(&k.hosts[0], "stat -c '%a %u' /var/lib/selfhost/ingress-acme/acme.json");
    assert_eq!(stored.trim(), "600 0", "the ACME storage on the ingress node");
    let dir = k.bed.sh(&k.hosts[0], "stat -c '%a %u' /var/lib/selfhost/ingress-acme");
    assert_eq!(dir.trim(), "700 0", "the ACME directory is root's only");

    // ---- NetworkPolicy enforced by packets, same node and across VXLAN.
    let (a, b) = (pod_ip(&kc, "api-a"), pod_ip(&kc, "api-b"));
    passes(&kc, "front", &format!("http://{a}:8080/same-node"));
    passes(&kc, "front", &format!("http://{b}:8080/cross-node"));
    passes(
        &kc,
        "front",
        &format!("http://api-b.{NS}.svc.cluster.local:8080/by-dns"),
    );
    blocked(&kc, "front", &format!("http://{a}:9090/"));
    blocked(&kc, "intruder", &format!("http://{a}:8080/"));
    blocked(&kc, "intruder", &format!("http://{b}:8080/"));
    blocked(&kc, "front", &format!("http://{}:8080/", pod_ip(&kc, "shop")));
    if let Some(eval) = evaluator(TEST) {
        use Peer::Agent;
        assert_truth_table(
            &eval,
            &kc,
            NS,
            &[
                (Flow::new(Agent("front"), Agent("api-a"), 8080, "TCP"), true),
                (Flow::new(Agent("front"), Agent("api-b"), 8080, "TCP"), true),
                (Flow::new(Agent("front"), Agent("api-a"), 9090, "TCP"), false),
                (Flow::new(Agent("intruder"), Agent("api-a"), 8080, "TCP"), false),
                (Flow::new(Agent("intruder"), Agent("api-b"), 8080, "TCP"), false),
                (Flow::new(Agent("front"), Agent("shop"), 8080, "TCP"), false),
            ],
            &wd.path,
        );
    }

    // ---- Metrics: kubectl top, an HPA with a current utilization.
    top_answers(&kc, &["top", "nodes"]);
    top_answers(&kc, &["top", "pods", "-n", NS]);
    let until = Instant::now() + Duration::from_secs(240);
    loop {
        let cpu = kc.ok(&[
            "-n",
            NS,
            "get",
            "hpa",
            "shop",
            "-o",
            "jsonpath={.status.currentMetrics[0].resource.current.averageUtilization}",
        ]);
        if !cpu.trim().is_empty() {
            eprintln!("HPA shop: current CPU utilization {}%", cpu.trim());
            break;
        }
        assert!(Instant::now() < until, "the HPA never reported a CPU utilization");
        std::thread::sleep(Duration::from_secs(5));
    }
    expect_empty_plan(&wd, "once the HPA acts");

    // ---- Drift: an add-on deleted by hand shows in the plan, apply restores it.
    kc.ok(&[
        "-n",
        "kube-system",
        "delete",
        "daemonset",
        "kube-network-policies",
        "--wait=true",
    ]);
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(2), "the deleted add-on must show as drift\n{o}");
    assert!(o.stdout.contains("network_policy_enforcement"), "{o}");
    apply(&wd);
    kc.ok(&[
        "-n",
        "kube-system",
        "rollout",
        "status",
        "daemonset/kube-network-policies",
        "--timeout=60s",
    ]);
    blocked(&kc, "intruder", &format!("http://{a}:8080/"));
    expect_empty_plan(&wd, "after the repair");

    // ---- Policies removed: the flows open again.
    wd.write("main.tf", &config(&k, &acme, false, true));
    apply(&wd);
    passes(&kc, "intruder", &format!("http://{a}:8080/reopened"));
    passes(&kc, "front", &format!("http://{a}:9090/reopened"));

    // ---- metrics_server turned off: nothing of it is left.
    wd.write("main.tf", &config(&k, &acme, false, false));
    apply(&wd);
    let left = kc.ok(&[
        "get",
        "deployments,services,serviceaccounts,rolebindings,clusterroles,clusterrolebindings,apiservices",
        "-A",
        "-l",
        "selfhost.dev/addon=metrics_server",
        "-o",
        "name",
    ]);
    assert_eq!(left.trim(), "", "metrics-server leftovers");
    let (ok, _, _) = kc.run(&["get", "apiservice", "v1beta1.metrics.k8s.io"], None);
    assert!(!ok, "the metrics APIService is gone");
    expect_empty_plan(&wd, "after turning metrics_server off");

    // ---- An image neither pullable (offline nodes) nor on the nodes: the
    // apply fails within its grace with the pod and the kubelet's reason.
    for h in &k.hosts[..3] {
        k.bed.sh(
            h,
            &format!("ctr -n k8s.io images rm {METRICS_IMAGE} >/dev/null 2>&1; true"),
        );
    }
    wd.write("main.tf", &config(&k, &acme, false, true));
    let started = Instant::now();
    let o = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(1), "the add-on cannot start: {o}");
    let text = o.output().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("Add-on metrics_server: Kubernetes pods cannot start"),
        "{o}"
    );
    assert!(text.contains("pod kube-system/metrics-server-"), "names the pod: {o}");
    assert!(
        text.contains("ImagePullBackOff") || text.contains("ErrImagePull"),
        "says the kubelet's reason: {o}"
    );
    eprintln!(
        "an unpullable add-on image failed the apply after {:.0?}",
        started.elapsed()
    );
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(2), "the add-on that did not start is still planned\n{o}");

    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    for h in &k.hosts[..3] {
        assert_clean(&k, h);
        let left = k.bed.sh(h, "ls -d /var/lib/selfhost/ingress-acme 2>/dev/null; nft list tables 2>/dev/null | grep kube-network-policies; true");
        assert_eq!(left.trim(), "", "{}: add-on leftovers after destroy", h.addr);
    }
}

#[test]
fn bad_addon_settings_are_refused_at_their_attribute() {
    const TEST: &str = "bad_addon_settings_are_refused_at_their_attribute";
    let bad = r#"terraform {
  required_providers {
    selfhost = { source = "selfhost/selfhost" }
  }
}

resource "selfhost_k8s_cluster" "bad" {
  version       = "v1.36.3"
  control_plane = { host = "10.0.0.1", port = 22, user = "root", host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0kLyG2m4hKyDRq7gqsGfSp3y0nRWXQ3u2KxCMvV4K1" }
  ingress {
    node = "10.0.0.9"
    acme {
      email          = "not an email"
      server         = "http://acme.example/dir"
      ca_certificate = "not PEM"
    }
  }
}
"#;
    support::expect_invalid_at(
        TEST,
        "addons-validate",
        bad,
        &[
            ("node = \"10.0.0.9\"", "is not the host of one of this cluster's nodes"),
            ("email          =", "Invalid email"),
            ("server         =", "is not an https:// URL"),
            ("ca_certificate =", "holds no PEM certificate"),
        ],
    );
}
