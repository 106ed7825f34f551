//! The demo IS the platform test: `scripts/demo` as a newcomer runs it
//! (against the bed CI already has up, kept up), applying
//! `examples/platform/` — the platform module on three bare k8s hosts of
//! the bed: hosts hardened, a REAL kubeadm cluster from the air-gapped
//! bundle with its add-ons (traefik with ACME from pebble, kube-network-
//! policies, metrics-server), the gateway and three agents, default-deny
//! policies with the allowed flows, the gateway token in a Secret, a
//! backup schedule to versitygw (S3) on the bed's host side — in ONE apply.
//! Checked from outside the provider: the real kubectl with the demo's
//! kubeconfig, curl, restic and plain OpenSSH.
//!
//! - the nodes are Ready and every agent's pods Running;
//! - in an agent's pod: non-root, a read-only root file system, its
//!   secret environment there and nowhere in the `TF_LOG=TRACE` log;
//! - an allowed flow passes by the Service's DNS name, a flow no policy
//!   allows is dropped (enforced by packets);
//! - the gateway answers over HTTPS at the URL, with the `curl` line, the
//!   demo prints (pebble's root as the only trust anchor);
//! - the printed backup-and-restore lines run as printed: a Job from the
//!   CronJob backs the volume up (restic, in a pod, to S3), the restore
//!   command restores it here, byte for byte;
//! - a second `scripts/demo` shows the empty plan and changes nothing;
//! - `scripts/demo destroy` leaves the hosts clean.
//!
//! `eval "$(testbed/testbed env)"; eval "$(scripts/test-tools)"; cargo test --test acceptance_platform -- --nocapture`

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::k8s::{FRESH_HOST, assert_clean, k8s_bed, ready_nodes};
use support::kube::KubeBed;
use support::{PROVIDER_BIN, REPO, clis_or_skip};

/// Secret environment of the example's agents (examples/platform/main.tf):
/// inside their pods, never in a log.
const TOOLBOX_SECRET: &str = "demo-api-key-7f3a9c41d2e8";
const AUTHORITY_SECRET: &str = "demo-signing-key-4b1d9e";
const NS: &str = "agents";

/// `scripts/demo` in its own work directory, on the bed that is up.
struct Demo {
    dir: PathBuf,
    cli: PathBuf,
    /// The k8s hosts this test was given (`addr:port ...`): the demo's
    /// own `testbed env` lists every k8s host of the bed, and other suites
    /// may be using the rest at the same time.
    k8s_hosts: String,
}

impl Demo {
    fn run(&self, args: &[&str]) -> (String, String) {
        let mut cmd = Command::new(Path::new(REPO).join("scripts/demo"));
        cmd.args(args).current_dir(REPO).stdin(Stdio::null());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("TF_") || k.starts_with("TOFU_") || k.starts_with("SELFHOST_DEMO_") {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("SELFHOST_DEMO_DIR", &self.dir)
            .env("SELFHOST_DEMO_KEEP_BED", "1")
            .env("SELFHOST_DEMO_BINARY", PROVIDER_BIN)
            .env("SELFHOST_DEMO_CLI", &self.cli)
            .env("SELFHOST_DEMO_TF_LOG", "TRACE")
            .env("SELFHOST_DEMO_K8S_HOSTS", &self.k8s_hosts);
        let started = Instant::now();
        let out: Output = cmd.output().expect("run scripts/demo");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!(
            "$ scripts/demo {} -> {} in {:.0?}",
            args.join(" "),
            out.status,
            started.elapsed()
        );
        if !out.status.success() {
            let tail: Vec<&str> = stderr.lines().rev().take(80).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "scripts/demo {} failed: {}\n--- stdout ---\n{stdout}\n--- stderr (tail) ---\n{}",
                args.join(" "),
                out.status,
                tail.join("\n")
            );
        }
        (stdout, stderr)
    }
}

impl Demo {
    /// The CLI in the demo's configuration directory, as the demo runs it
    /// (its CLI configuration: the provider from the demo's mirror).
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(&self.cli)
            .args(args)
            .current_dir(self.dir.join("config/platform"))
            .env("TF_CLI_CONFIG_FILE", self.dir.join("cli.tfrc"))
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("run the CLI");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Every secret the platform holds: the agents' secret env, the S3 secret
/// and restic password, the gateway token, the admin kubeconfig's client
/// key, the SSH private key, and the Secrets encryption key on the control
/// plane.
fn platform_secrets(
    k: &support::k8s::K8sBed,
    demo: &Demo,
    kc: &KubeBed,
    setting: &dyn Fn(&str) -> String,
) -> Vec<(String, String)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    // "<namespace>/<name>"
    let token_secret = demo.cli(&["output", "-raw", "gateway_token_secret"]);
    let (ns, name) = token_secret.trim().split_once('/').expect("namespace/name");
    let token = kc.ok(&["-n", ns, "get", "secret", name, "-o", "jsonpath={.data.token}"]);
    let token = String::from_utf8(b64.decode(token.trim()).expect("base64")).expect("utf-8");
    let kubeconfig = std::fs::read_to_string(demo.dir.join("kubeconfig")).expect("kubeconfig");
    let client_key = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-key-data:"))
        .map(|v| v.trim().to_owned())
        .expect("client key");
    let ssh_key = std::fs::read_to_string(&k.bed.key).expect("ssh key");
    let ssh_key_line = ssh_key.lines().nth(1).expect("a key body line").to_owned();
    let encryption = k.bed.sh(
        &k.hosts[0],
        "grep -o '\"secret\":\"[^\"]*\"' /etc/kubernetes/selfhost/encryption-config.json | cut -d'\"' -f4",
    );
    let encryption_key = encryption.trim().to_owned();
    assert_eq!(encryption_key.len(), 44, "a 32-byte key in base64");
    let mut all = vec![
        ("toolbox's secret env".to_owned(), TOOLBOX_SECRET.to_owned()),
        ("authority's secret env".to_owned(), AUTHORITY_SECRET.to_owned()),
        ("the S3 secret".to_owned(), setting("s3_secret")),
        ("the restic password".to_owned(), setting("restic_password")),
        ("the gateway token".to_owned(), token),
        ("the admin client key".to_owned(), client_key),
        ("the SSH private key".to_owned(), ssh_key_line),
        ("the encryption key".to_owned(), encryption_key),
    ];
    assert!(
        all.iter().all(|(_, v)| v.len() >= 16),
        "every secret is long enough to search for"
    );
    all.sort();
    all
}

fn assert_no_secret(secrets: &[(String, String)], place: &str, text: &str) {
    for (what, value) in secrets {
        assert!(!text.contains(value.as_str()), "{what} reached {place}");
    }
}

/// The printed lines after `start` (a prefix), up to the first blank line,
/// without their indentation.
fn printed_block(stdout: &str, start: &str) -> String {
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(start))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.strip_prefix("  ").unwrap_or(l).to_owned())
        .collect::<Vec<_>>();
    assert!(!lines.is_empty(), "no {start:?} block in the demo's output:\n{stdout}");
    lines.push(String::new());
    lines.join("\n")
}

fn bash(script: &str, cwd: &Path, env: &[(&str, String)]) -> (bool, String) {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("bash");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `fetch` from a pod of agent `from` to `url`: Ok(answer) or Err(error).
fn fetch(kc: &KubeBed, from: &str, url: &str) -> Result<String, String> {
    let (ok, out, err) = kc.run(&["-n", NS, "exec", &format!("deploy/{from}"), "--", "fetch", url], None);
    if ok { Ok(out) } else { Err(format!("{out}{err}")) }
}

#[test]
fn the_demo_brings_the_platform_up_idempotently_and_destroy_leaves_nothing() {
    const TEST: &str = "the_demo_brings_the_platform_up_idempotently_and_destroy_leaves_nothing";
    let Some(k) = k8s_bed(TEST) else { return };
    let Some(cli) = clis_or_skip(TEST).last() else { return };
    eprintln!("==== {TEST}: {} ({})", cli.label(), cli.path.display());
    for h in &k.hosts[..3] {
        k.bed.sh(h, FRESH_HOST);
        k.bed.sh(
            h,
            "rm -rf /srv/selfhost-demo-volumes /etc/ssh/sshd_config.d/00-selfhost.conf; nft delete table inet selfhost 2>/dev/null; true",
        );
    }
    std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR")).expect("tmp");
    let tmp = tempfile::Builder::new()
        .prefix("acc-demo-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("demo dir");
    let demo = Demo {
        dir: tmp.path().join("demo"),
        cli: cli.path.clone(),
        k8s_hosts: k.hosts[..3]
            .iter()
            .map(|h| format!("{}:{}", h.addr, h.port))
            .collect::<Vec<_>>()
            .join(" "),
    };

    // ---- The first run: the platform from bare hosts.
    let started = Instant::now();
    let (stdout, stderr) = demo.run(&[]);
    eprintln!("scripts/demo, bare hosts to the platform: {:.0?}", started.elapsed());
    assert!(stdout.contains("The platform is up"), "{stdout}");
    assert!(stderr.contains("demo: ===="), "phase lines: {stderr}");
    assert!(stderr.contains("  provider: "), "the provider's INFO lines: {stderr}");
    let run_dir = demo.dir.join("run");
    let log = std::fs::read_to_string(run_dir.join("apply.log")).expect("apply.log");
    assert!(log.contains("[TRACE]"), "the apply log is a TRACE log");
    let settings = std::fs::read_to_string(run_dir.join("settings.env")).expect("settings.env");
    let setting = |name: &str| {
        settings
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in settings.env"))
            .to_owned()
    };

    let kc = KubeBed {
        kubectl: k.kubectl.clone(),
        kubeconfig: demo.dir.join("kubeconfig").display().to_string(),
    };
    // ---- The secret sweep: no secret in the TRACE log, the demo's output
    // (its plan and apply output), the state shown as a person reads it.
    let secrets = platform_secrets(&k, &demo, &kc, &setting);
    assert_no_secret(&secrets, "the TRACE log", &log);
    assert_no_secret(&secrets, "the demo's output", &format!("{stdout}{stderr}"));
    let shown = demo.cli(&["show", "-no-color"]);
    assert!(shown.contains("selfhost_k8s_cluster"), "{shown}");
    assert_no_secret(&secrets, "`terraform show`", &shown);
    let nodes = ready_nodes(&kc);
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(nodes.iter().all(|(_, r)| *r), "{nodes:?}");
    let phases = kc.ok(&["-n", NS, "get", "pods", "-o", "jsonpath={.items[*].status.phase}"]);
    let phases: Vec<&str> = phases.split_whitespace().collect();
    assert!(
        phases.len() >= 4 && phases.iter().all(|p| *p == "Running"),
        "{phases:?}"
    );
    for agent in ["gateway", "authority", "billing", "toolbox"] {
        kc.ok(&[
            "-n",
            NS,
            "rollout",
            "status",
            &format!("deployment/{agent}"),
            "--timeout=10s",
        ]);
    }

    // ---- Inside an agent's pod: non-root, read-only /, its secret env.
    let exec = |script: &str| kc.run(&["-n", NS, "exec", "deploy/toolbox", "--", "sh", "-c", script], None);
    let (ok, uid, err) = exec("id -u");
    assert!(ok, "{err}");
    assert_ne!(uid.trim(), "0", "the agent runs as non-root");
    let (wrote, _, err) = exec("echo x > /probe");
    assert!(!wrote, "a write to / must fail in the agent's pod");
    assert!(err.contains("Read-only file system"), "{err}");
    let (ok, tmp_out, err) = exec("echo x > /tmp/probe && cat /tmp/probe");
    assert!(ok && tmp_out.trim() == "x", "/tmp is writable (emptyDir): {err}");
    let (ok, env, err) = exec("printf %s \"$DEMO_API_KEY\"");
    assert!(ok, "{err}");
    assert_eq!(env, TOOLBOX_SECRET, "the secret env is visible inside the pod");
    // ... and ciphertext in etcd: the module's cluster encrypts Secrets by default.
    support::api_security::assert_stored(
        &k,
        &kc,
        support::api_security::Flavor::Kubeadm,
        "toolbox-env",
        TOOLBOX_SECRET,
        Some("secretbox:v1:key1:"),
    );

    // ---- Flows: allowed by the Service's DNS name, the others dropped.
    let dns = |agent: &str| format!("http://{agent}.{NS}.svc.cluster.local:8080");
    let mut last = String::new();
    for _ in 0..30 {
        match fetch(&kc, "toolbox", &format!("{}/allowed", dns("authority"))) {
            Ok(a) if a.starts_with("echo from authority-") => {
                last.clear();
                break;
            }
            Ok(a) => last = a,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(
        last.is_empty(),
        "toolbox -> authority (an allowed flow) must pass: {last}"
    );
    // A broken exec stream (kubectl's websocket to the kubelet, on a busy
    // machine) says nothing about the flow: asked again.
    let mut denied = String::new();
    for _ in 0..3 {
        match fetch(&kc, "toolbox", &format!("{}/denied", dns("billing"))) {
            Ok(a) => panic!("toolbox -> billing must be dropped, got: {a}"),
            Err(e) if e.contains("websocket") || e.contains("error stream") => denied = e,
            Err(e) => {
                denied = e;
                break;
            }
        }
    }
    assert!(
        denied.contains("Timeout") || denied.contains("timeout") || denied.contains("deadline"),
        "toolbox -> billing: expected a timeout (dropped packets), got: {denied}"
    );

    // ---- The gateway over HTTPS, with the printed curl line.
    let curl = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("curl --resolve "))
        .unwrap_or_else(|| panic!("no curl line in the demo's output:\n{stdout}"))
        .to_owned();
    let (ok, answer) = bash(&format!("{curl} --max-time 10 -sS"), tmp.path(), &[]);
    assert!(ok, "{curl}: {answer}");
    assert!(answer.starts_with("echo from gateway-"), "{curl}: {answer}");

    // ---- A backup and its restore, as printed.
    let worker = &k.hosts[1];
    k.bed.sh(
        worker,
        "d=/srv/selfhost-demo-volumes/agents-billing-data && test -d $d && mkdir -p $d/sub \
         && printf 'first invoice\\n' > $d/a.txt && head -c 200000 /dev/urandom > $d/sub/blob.bin \
         && chmod 0640 $d/a.txt && chown -R 65532:65532 $d",
    );
    let script = printed_block(&stdout, "# a backup now");
    let restore_dir = tmp.path().join("restore");
    std::fs::create_dir_all(&restore_dir).expect("restore dir");
    let kubectl_dir = Path::new(&k.kubectl).parent().unwrap().display().to_string();
    let (ok, out) = bash(
        &script,
        &restore_dir,
        &[
            ("KUBECONFIG", kc.kubeconfig.clone()),
            (
                "PATH",
                format!("{kubectl_dir}:{}", std::env::var("PATH").unwrap_or_default()),
            ),
        ],
    );
    if !ok {
        let (_, logs, _) = kc.run(&["-n", NS, "logs", "job/billing-backup-now", "--all-containers"], None);
        panic!("the printed backup and restore failed:\n{script}\n{out}\n{logs}");
    }
    let restored =
        |rel: &str| walk_find(&restore_dir, rel).unwrap_or_else(|| panic!("{rel} not in the restored tree: {out}"));
    let host_sums = k.bed.sh(
        worker,
        "cd /srv/selfhost-demo-volumes/agents-billing-data && sha256sum a.txt sub/blob.bin | cut -d' ' -f1",
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
    kc.ok(&["-n", NS, "delete", "job", "billing-backup-now", "--wait=true"]);

    // ---- A second run changes nothing.
    let started = Instant::now();
    let (stdout2, stderr2) = demo.run(&[]);
    eprintln!("scripts/demo, second run: {:.0?}", started.elapsed());
    assert!(
        stderr2.contains("the plan is empty"),
        "the second run's plan must be empty:\n{stderr2}\n{stdout2}"
    );
    assert!(
        !stderr2.contains("terraform apply:"),
        "the second run applied:\n{stderr2}"
    );
    let plan = std::fs::read_to_string(run_dir.join("plan.log")).expect("plan.log");
    assert_no_secret(&secrets, "the second run's plan", &format!("{plan}{stdout2}{stderr2}"));

    // ---- Destroy: nothing left on the hosts, the daemons stopped.
    demo.run(&["destroy"]);
    for h in &k.hosts[..3] {
        assert_clean(&k, h);
        let left = k.bed.sh(
            h,
            "ls -d /srv/selfhost-demo-volumes /etc/ssh/sshd_config.d/00-selfhost.conf 2>/dev/null; nft list table inet selfhost >/dev/null 2>&1 && echo 'table inet selfhost'; true",
        );
        assert_eq!(left.trim(), "", "{}: left after scripts/demo destroy", h.addr);
    }
    assert!(!run_dir.exists(), "the demo's daemons and their files are gone");
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
