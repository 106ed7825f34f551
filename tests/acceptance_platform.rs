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
//! Then backups on the same real cluster: an agent with a volume (a
//! hostPath PersistentVolume the test provides, since the bed's cluster has
//! no storage provisioner) and a `selfhost_backup_schedule` for it; a Job
//! made from its CronJob runs restic (the bundle's `selfhost.test/restic:1`,
//! Debian's restic 0.14.0) in a pod on the volume's node against versitygw,
//! an S3 server on the bed's host side; the snapshot is then listed and
//! restored with this machine's restic and compared byte for byte.
//!
//! `eval "$(testbed/testbed env)"; eval "$(scripts/test-tools)"; cargo test --test acceptance_platform -- --nocapture`

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::host_side;
use support::k8s::{FRESH_HOST, assert_clean, cluster_config, cluster_kubectl, k8s_bed, ready_nodes};
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

    let kc = cluster_kubectl(&k, &wd);
    assert!(ready_nodes(&kc).iter().all(|(_, r)| *r), "{:?}", ready_nodes(&kc));
    let state = wd.show_json(None);
    let dns = state_values(&state, "selfhost_agent.echo")["service_dns"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(dns, "echo.agents.svc.cluster.local");

    // Inside the authority's pod: non-root, read-only /, the secret env.
    let exec = |script: &str| {
        kc.run(
            &["-n", "agents", "exec", "deploy/authority", "--", "sh", "-c", script],
            None,
        )
    };
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
    let stored = kc.ok(&[
        "-n",
        "agents",
        "get",
        "secret",
        "gateway-token",
        "-o",
        "jsonpath={.data.token}",
    ]);
    use base64::Engine;
    let stored = base64::engine::general_purpose::STANDARD
        .decode(stored.trim())
        .expect("base64");
    assert_eq!(String::from_utf8_lossy(&stored), token);
    let policy = kc.ok(&["-n", "agents", "get", "networkpolicy", "echo-ingress", "-o", "json"]);
    assert!(policy.contains("\"Ingress\""), "{policy}");

    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "the second plan must be empty\n{o}");

    backup_on_the_real_cluster(&mut wd, &k, &kc);

    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert_clean(&k, &k.hosts[0]);
    assert_clean(&k, &k.hosts[1]);
}

const S3_ACCESS: &str = "platformaccess";
const S3_SECRET: &str = "platform-s3-secret-5b1e0c";
const RESTIC_PASSWORD: &str = "platform-restic-pw-93d2";

fn backup_workloads(endpoint: &str, worker: &str) -> String {
    format!(
        r#"
resource "selfhost_agent" "notes" {{
  kubeconfig = selfhost_k8s_cluster.main.kubeconfig
  namespace  = "agents"
  name       = "notes"
  image      = "selfhost.test/echo:1"
  storage {{
    size       = "64Mi"
    mount_path = "/data"
  }}
  node_selector = {{ "kubernetes.io/hostname" = "{worker}" }}
}}

resource "selfhost_backup_schedule" "notes" {{
  kubeconfig = selfhost_k8s_cluster.main.kubeconfig
  namespace  = "agents"
  name       = "notes-backup"
  schedule   = "@daily"
  time_zone  = "Europe/Berlin"
  image      = "selfhost.test/restic:1"
  source {{
    agent = selfhost_agent.notes.name
  }}
  destination {{
    s3 {{
      endpoint          = "{endpoint}"
      bucket            = "backups"
      prefix            = "notes"
      region            = "eu-test-1"
      access_key_id     = "{S3_ACCESS}"
      secret_access_key = "{S3_SECRET}"
    }}
  }}
  retention {{
    keep_last = 3
  }}
  encryption_password = "{RESTIC_PASSWORD}"
}}
"#
    )
}

fn restic_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("RESTIC_REPOSITORY", format!("s3:{endpoint}/backups/notes")),
        ("RESTIC_PASSWORD", RESTIC_PASSWORD.to_owned()),
        ("AWS_ACCESS_KEY_ID", S3_ACCESS.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET.to_owned()),
        ("AWS_DEFAULT_REGION", "eu-test-1".to_owned()),
    ]
}

fn restic(endpoint: &str, args: &[&str], cwd: &Path) -> String {
    let out = Command::new("restic")
        .args(args)
        .envs(restic_env(endpoint))
        .current_dir(cwd)
        .output()
        .expect("run restic (scripts/test-tools installs it)");
    assert!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An agent's volume backed up by a Job of its CronJob, in a real pod, to
/// an S3 server outside the cluster; restored here and compared.
fn backup_on_the_real_cluster(wd: &mut Workdir, k: &support::k8s::K8sBed, kc: &KubeBed) {
    let gw_bin = std::env::var("SELFHOST_TEST_VERSITYGW").expect("SELFHOST_TEST_VERSITYGW (scripts/test-tools)");
    let s3_root = wd.path.join("s3");
    std::fs::create_dir_all(s3_root.join("backups")).expect("bucket dir");
    let addr = host_side::address();
    let port = host_side::free_port(&addr);
    let endpoint = format!("http://{addr}:{port}");
    let _gw = host_side::Daemon(
        Command::new(&gw_bin)
            .args(["--access", S3_ACCESS, "--secret", S3_SECRET, "--region", "eu-test-1"])
            .args(["--port", &format!("{addr}:{port}")])
            .arg("posix")
            .arg(&s3_root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start versitygw"),
    );
    host_side::wait_listening(&addr, port, "versitygw");

    // The volume: a hostPath PersistentVolume on the worker, pre-bound to
    // the agent's claim, with data written from the host side.
    let worker = k.bed.sh(&k.hosts[1], "hostname").trim().to_owned();
    k.bed.sh(
        &k.hosts[1],
        "rm -rf /srv/notes && mkdir -p /srv/notes/sub && printf 'first note\\n' > /srv/notes/a.txt \
         && head -c 200000 /dev/urandom > /srv/notes/sub/blob.bin && chmod 0640 /srv/notes/a.txt \
         && chown -R 65532:65532 /srv/notes",
    );
    kc.apply(&format!(
        r#"apiVersion: v1
kind: PersistentVolume
metadata:
  name: notes-data
spec:
  capacity: {{storage: 64Mi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {{namespace: agents, name: notes-data}}
  hostPath: {{path: /srv/notes, type: Directory}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {{key: kubernetes.io/hostname, operator: In, values: ["{worker}"]}}
"#
    ));

    let mut hcl = std::fs::read_to_string(wd.path.join("main.tf")).expect("main.tf");
    hcl.push_str(&backup_workloads(&endpoint, &worker));
    wd.write("main.tf", &hcl);
    let o = wd.run_env(
        &["apply", "-auto-approve", "-input=false", "-no-color"],
        &[("TF_LOG", "TRACE")],
    );
    assert_eq!(o.code, Some(0), "{o}");
    for secret in [S3_SECRET, RESTIC_PASSWORD] {
        assert!(!o.output().contains(secret), "a backup secret reached the TRACE log");
    }

    // A Job from the CronJob, as its schedule would make one.
    kc.ok(&[
        "-n",
        "agents",
        "create",
        "job",
        "notes-backup-now",
        "--from=cronjob/notes-backup",
    ]);
    let (done, out, err) = kc.run(
        &[
            "-n",
            "agents",
            "wait",
            "--for=condition=complete",
            "job/notes-backup-now",
            "--timeout=300s",
        ],
        None,
    );
    if !done {
        let (_, logs, _) = kc.run(
            &["-n", "agents", "logs", "job/notes-backup-now", "--all-containers"],
            None,
        );
        let (_, pods, _) = kc.run(&["-n", "agents", "get", "pods", "-o", "wide"], None);
        panic!("the backup Job did not complete: {out}{err}\n{pods}\n{logs}");
    }
    let node = kc.ok(&[
        "-n",
        "agents",
        "get",
        "pods",
        "-l",
        "job-name=notes-backup-now",
        "-o",
        "jsonpath={.items[0].spec.nodeName}",
    ]);
    assert_eq!(node.trim(), worker, "the Job ran on the volume's node");

    // The snapshot is in the bucket: list and restore it here.
    let tmp = tempfile::tempdir().expect("tmp");
    let snaps: serde_json::Value =
        serde_json::from_str(&restic(&endpoint, &["snapshots", "--json"], tmp.path())).expect("snapshots JSON");
    assert_eq!(snaps.as_array().map(Vec::len), Some(1), "{snaps}");
    restic(&endpoint, &["restore", "latest", "--target", "restored"], tmp.path());
    let restored = |rel: &str| {
        walk_find(&tmp.path().join("restored"), rel).unwrap_or_else(|| panic!("{rel} not in the restored tree"))
    };
    let host_sums = k.bed.sh(
        &k.hosts[1],
        "cd /srv/notes && sha256sum a.txt sub/blob.bin | cut -d' ' -f1",
    );
    let local = Command::new("sha256sum")
        .arg(restored("a.txt"))
        .arg(restored("sub/blob.bin"))
        .output()
        .expect("sha256sum");
    let local: Vec<String> = String::from_utf8_lossy(&local.stdout)
        .lines()
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect();
    assert_eq!(
        host_sums.split_whitespace().collect::<Vec<_>>(),
        local,
        "restored bytes differ"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(restored("a.txt")).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "restored mode");

    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "the plan after the backup must be empty\n{o}");
    kc.ok(&["-n", "agents", "delete", "job", "notes-backup-now", "--wait=true"]);
}

/// The path of `rel` under `root`, wherever restic put the tree (it keeps
/// the absolute path the Job backed up).
fn walk_find(root: &Path, rel: &str) -> Option<std::path::PathBuf> {
    let direct = root.join(rel);
    if direct.exists() {
        return Some(direct);
    }
    std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .find_map(|e| walk_find(&e.path(), rel))
}
