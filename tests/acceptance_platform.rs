//! The end state in ONE apply, on real parts: two bare hosts of the test
//! bed prepared by `selfhost_vps_host`, a REAL kubeadm cluster on them
//! (`selfhost_k8s_cluster`, from the air-gapped bundle), and on it two
//! `selfhost_agent`s, a `selfhost_network_policy` and the gateway token in
//! a Secret, all fed the cluster's `kubeconfig` in the same apply. Checked
//! from outside the provider: the real kubectl with the kubeconfig output,
//! and plain OpenSSH.
//!
//! The pods really run: as non-root, with a read-only root file system (a
//! write to `/` fails inside), with the secret environment inside the pod
//! and nowhere in `TF_LOG=TRACE` output; one agent reaches the other by its
//! `service_dns`. flannel does not enforce NetworkPolicy, so the policy is
//! checked as an object here (tests/acceptance_agent.rs checks what it
//! means with an independent evaluator).
//!
//! `eval "$(testbed/testbed env)"; cargo test --test acceptance_platform -- --nocapture`

mod support;

use std::time::{Duration, Instant};

use support::k8s::{FRESH_HOST, assert_clean, cluster_config, k8s_bed, ready_nodes};
use support::kube::KubeBed;
use support::{Workdir, clis_or_skip, state_values};

/// A value no log may show.
const SECRET: &str = "sk-platform-7f3a9c41d2e8b6a0";

const WORKLOADS: &str = r#"
variable "api_key" {
  type      = string
  sensitive = true
}

resource "selfhost_agent" "echo" {
  kubeconfig = selfhost_k8s_cluster.main.kubeconfig
  namespace  = "agents"
  name       = "echo"
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
  readiness_probe {
    http_path = "/ready"
    port      = "http"
  }
}

resource "selfhost_agent" "authority" {
  kubeconfig = selfhost_k8s_cluster.main.kubeconfig
  namespace  = "agents"
  name       = "authority"
  image      = "selfhost.test/client:1"
  command    = ["sleep", "36000"]
  secret_env = { API_KEY = var.api_key }
  resources {
    cpu_request    = "50m"
    cpu_limit      = "200m"
    memory_request = "32Mi"
    memory_limit   = "64Mi"
  }
}

resource "selfhost_network_policy" "echo" {
  kubeconfig   = selfhost_k8s_cluster.main.kubeconfig
  namespace    = "agents"
  name         = "echo-ingress"
  agents       = ["echo"]
  default_deny = ["ingress"]
  ingress {
    from_agents = ["authority"]
    ports       = ["8080/tcp"]
  }
}

resource "selfhost_gateway_token" "gw" {
  length = 48
  secret {
    kubeconfig = selfhost_k8s_cluster.main.kubeconfig
    namespace  = "agents"
    name       = "gateway-token"
  }
  depends_on = [selfhost_k8s_cluster.main]
}

output "echo_dns" {
  value = selfhost_agent.echo.service_dns
}
"#;

#[test]
fn bare_hosts_to_running_agents_in_one_apply() {
    const TEST: &str = "bare_hosts_to_running_agents_in_one_apply";
    let Some(k) = k8s_bed(TEST) else { return };
    let Some(cli) = clis_or_skip(TEST).last() else { return };
    eprintln!("==== {TEST}: {} ({})", cli.label(), cli.path.display());
    for h in &k.hosts[..2] {
        k.bed.sh(h, FRESH_HOST);
    }
    let mut wd = Workdir::new(cli, "platform");
    wd.set_step_timeout(Duration::from_secs(30 * 60));
    wd.set_env("TF_VAR_api_key", SECRET);
    wd.write("main.tf", &cluster_config(&k, &["w1"], WORKLOADS));
    wd.init();

    let started = Instant::now();
    let o = wd.run_env(
        &["apply", "-auto-approve", "-input=false", "-no-color"],
        &[("TF_LOG", "TRACE")],
    );
    assert_eq!(o.code, Some(0), "{o}");
    eprintln!("one apply, bare hosts to running agents: {:.0?}", started.elapsed());
    assert!(!o.output().contains(SECRET), "the secret env reached the TRACE log");

    let kc_path = wd.path.join("kubeconfig");
    std::fs::write(&kc_path, wd.ok(&["output", "-raw", "kubeconfig"]).stdout).expect("write kubeconfig");
    let kc = KubeBed {
        kubectl: k.kubectl.clone(),
        kubeconfig: kc_path.display().to_string(),
    };
    assert!(ready_nodes(&kc).iter().all(|(_, r)| *r), "{:?}", ready_nodes(&kc));
    let state = wd.show_json(None);
    let dns = state_values(&state, "selfhost_agent.echo")["service_dns"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(dns, "echo.agents.svc.cluster.local");

    // Inside the authority's pod: non-root, read-only /, the secret env.
    let exec = |script: &str| kc.run(&["-n", "agents", "exec", "deploy/authority", "--", "sh", "-c", script], None);
    let (ok, uid, err) = exec("id -u");
    assert!(ok, "{err}");
    assert_ne!(uid.trim(), "0", "the agent runs as non-root");
    let (wrote, _, err) = exec("echo x > /probe");
    assert!(!wrote, "a write to / must fail in the agent's pod");
    assert!(err.contains("Read-only file system"), "{err}");
    let (ok, tmp, err) = exec("echo x > /tmp/probe && cat /tmp/probe");
    assert!(ok && tmp.trim() == "x", "/tmp is writable (emptyDir): {err}");
    let (ok, env, err) = exec("printf %s \"$API_KEY\"");
    assert!(ok, "{err}");
    assert_eq!(env, SECRET, "the secret env is visible inside the pod");

    // One agent reaches the other by its service_dns.
    let mut answer = String::new();
    for _ in 0..30 {
        let (ok, out, err) = exec(&format!("fetch http://{dns}:8080/platform"));
        answer = format!("{}{}", out.trim(), err.trim());
        if ok {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(answer.starts_with("echo from echo-"), "{answer}");
    assert!(answer.ends_with(": GET /platform"), "{answer}");

    // The token is in its Secret; the policy exists as the HCL says.
    let token = state_values(&state, "selfhost_gateway_token.gw")["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(token.len(), 48);
    let stored = kc.ok(&["-n", "agents", "get", "secret", "gateway-token", "-o", "jsonpath={.data.token}"]);
    use base64::Engine;
    let stored = base64::engine::general_purpose::STANDARD
        .decode(stored.trim())
        .expect("base64");
    assert_eq!(String::from_utf8_lossy(&stored), token);
    let policy = kc.ok(&["-n", "agents", "get", "networkpolicy", "echo-ingress", "-o", "json"]);
    assert!(policy.contains("\"Ingress\""), "{policy}");

    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "the second plan must be empty\n{o}");

    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert_clean(&k, &k.hosts[0]);
    assert_clean(&k, &k.hosts[1]);
}
