//! Acceptance tests of `selfhost_backup_schedule` against the test bed's
//! REAL kube-apiserver and kube-controller-manager (`testbed/testbed env`;
//! kwok plays the nodes and makes the Jobs' pods succeed), driven by every
//! real Terraform/OpenTofu CLI. Checks go through the real `kubectl`.
//!
//! Each test works in its own namespace `acc-<label>-<random>` and removes
//! it. Without the bed every test SKIPs loudly; with `CI` set it fails.
//!
//! `cargo test --test acceptance_backup -- --nocapture`

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use support::kube::{KubeBed, kube_bed, namespace_with_kubeconfig};
use support::{Workdir, clis_or_skip, for_each_cli, state_values};

const BS: &str = "selfhost_backup_schedule.b";
const RESTIC_PASSWORD: &str = "restic-pw-Zq8v3LkT";
const S3_SECRET: &str = "s3-secret-Hn2x7PwQ";
const PG_PASSWORD: &str = "pg-pw-Wm5r9JcY";

/// Knobs of the test configuration.
struct Tf<'a> {
    kubeconfig: &'a str,
    namespace: &'a str,
    schedule: &'a str,
    time_zone: &'a str,
    suspend: bool,
    /// `source { agent = ... }` when set, else a `postgres {}` source.
    agent: Option<&'a str>,
}

fn config(t: &Tf) -> String {
    let source = match t.agent {
        Some(agent) => format!("agent = \"{agent}\""),
        None => format!(
            "postgres {{\n      host     = \"postgres.db.svc.cluster.local\"\n      database = \"app\"\n      user     = \"backup\"\n      password = \"{PG_PASSWORD}\"\n    }}"
        ),
    };
    format!(
        r#"terraform {{
  required_providers {{
    selfhost = {{ source = "selfhost/selfhost" }}
  }}
}}

resource "selfhost_backup_schedule" "b" {{
  kubeconfig = file("{kubeconfig}")
  namespace  = "{namespace}"
  name       = "nightly"
  schedule   = "{schedule}"
  time_zone  = "{time_zone}"
  suspend    = {suspend}
  source {{
    {source}
  }}
  destination {{
    s3 {{
      endpoint          = "https://s3.example.com"
      bucket            = "backups"
      prefix            = "acc"
      access_key_id     = "AKIAACCEPTANCE"
      secret_access_key = "{S3_SECRET}"
    }}
  }}
  retention {{
    keep_last  = 3
    keep_daily = 7
  }}
  encryption_password = "{RESTIC_PASSWORD}"
}}
"#,
        kubeconfig = t.kubeconfig,
        namespace = t.namespace,
        schedule = t.schedule,
        time_zone = t.time_zone,
        suspend = t.suspend,
    )
}

fn apply(wd: &Workdir) -> String {
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]).output()
}

fn expect_empty_plan(wd: &Workdir, why: &str) {
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(
        o.code,
        Some(0),
        "{why}: the plan must be empty (exit 0; 2 = changes)\n{o}"
    );
}

fn get(bed: &KubeBed, kind: &str, ns: &str, name: &str) -> Json {
    bed.get_json(kind, ns, name)
        .unwrap_or_else(|| panic!("{kind} {ns}/{name} must exist"))
}

fn managed_by_us(obj: &Json) -> bool {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["manager"] == "terraform-provider-selfhost")
}

#[test]
fn backup_schedule_lifecycle() {
    let Some(bed) = kube_bed("backup_schedule_lifecycle") else {
        return;
    };
    for_each_cli("backup_schedule_lifecycle", |cli| {
        let wd = Workdir::new(cli, "backup");
        let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "backup", &wd.path);
        let t = Tf {
            kubeconfig: &kubeconfig,
            namespace: &ns.name,
            schedule: "30 2 * * MON-FRI",
            time_zone: "Europe/Paris",
            suspend: false,
            agent: Some("research"),
        };
        wd.write("main.tf", &config(&t));
        wd.init();
        let out = apply(&wd);
        for secret in [RESTIC_PASSWORD, S3_SECRET] {
            assert!(!out.contains(secret), "a secret in the apply output:\n{out}");
        }

        // The CronJob as specified, checked with kubectl.
        let cj = get(&bed, "cronjob", &ns.name, "nightly");
        let s = &cj["spec"];
        assert_eq!(s["schedule"], "30 2 * * MON-FRI");
        assert_eq!(s["timeZone"], "Europe/Paris");
        assert_eq!(s["concurrencyPolicy"], "Forbid");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["successfulJobsHistoryLimit"], 3);
        assert_eq!(s["failedJobsHistoryLimit"], 1);
        assert!(managed_by_us(&cj), "server-side applied by the provider: {cj:#}");
        let pod = &s["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "nightly-backup");
        assert_eq!(pod["automountServiceAccountToken"], false);
        let container = &pod["containers"][0];
        assert_eq!(container["image"], "docker.io/restic/restic:0.18.1");
        let script = container["command"][2].as_str().unwrap_or_default();
        assert!(script.contains("restic forget"), "{script}");
        assert!(!script.contains(RESTIC_PASSWORD) && !script.contains(S3_SECRET));
        let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
        let claim = volumes
            .iter()
            .find(|v| v["persistentVolumeClaim"].is_object())
            .unwrap_or_else(|| panic!("the agent's claim is mounted: {pod:#}"));
        assert_eq!(claim["persistentVolumeClaim"]["claimName"], "research-data");
        assert_eq!(claim["persistentVolumeClaim"]["readOnly"], true);
        assert_eq!(
            pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"],
            "kubernetes.io/hostname"
        );
        let sa = get(&bed, "serviceaccount", &ns.name, "nightly-backup");
        assert_eq!(sa["automountServiceAccountToken"], false);
        assert_eq!(
            bed.secret_value(&ns.name, "nightly-backup", "RESTIC_PASSWORD")
                .as_deref(),
            Some(RESTIC_PASSWORD)
        );
        assert_eq!(
            bed.secret_value(&ns.name, "nightly-backup", "AWS_SECRET_ACCESS_KEY")
                .as_deref(),
            Some(S3_SECRET)
        );

        let show = wd.show_json(None);
        let v = state_values(&show, BS);
        assert_eq!(v["id"], format!("{}/nightly", ns.name));
        let restore = v["restore_command"].as_str().unwrap_or_default();
        assert!(restore.contains("restic restore latest"), "{restore}");
        assert!(!restore.contains(RESTIC_PASSWORD), "{restore}");
        // Its kubectl lines really fetch the secrets from the Secret.
        assert_eq!(
            fetched_secrets(&bed, &kubeconfig, restore),
            format!("{RESTIC_PASSWORD}|AKIAACCEPTANCE|{S3_SECRET}")
        );
        expect_empty_plan(&wd, "after create");

        // Drift on a managed field: the plan shows it and apply repairs it.
        bed.ok(&[
            "patch",
            "cronjob",
            "-n",
            &ns.name,
            "nightly",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"suspend":true,"schedule":"0 0 * * *"}}"#,
        ]);
        // Another writer's label is not ours: it stays and is no drift.
        bed.ok(&["label", "cronjob", "-n", &ns.name, "nightly", "team=platform"]);
        let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
        assert_eq!(o.code, Some(2), "the drift must show\n{o}");
        assert!(
            o.stdout.contains("CronJob spec.suspend") && o.stdout.contains("CronJob spec.schedule"),
            "{o}"
        );
        apply(&wd);
        let cj = get(&bed, "cronjob", &ns.name, "nightly");
        assert_eq!(cj["spec"]["suspend"], false);
        assert_eq!(cj["spec"]["schedule"], "30 2 * * MON-FRI");
        assert_eq!(cj["metadata"]["labels"]["team"], "platform");
        expect_empty_plan(&wd, "after repairing the drift");

        // A deleted Secret is drift too; apply writes it back.
        bed.ok(&["delete", "secret", "-n", &ns.name, "nightly-backup"]);
        let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
        assert_eq!(o.code, Some(2), "{o}");
        assert!(o.stdout.contains("Secret: missing"), "{o}");
        apply(&wd);
        assert_eq!(
            bed.secret_value(&ns.name, "nightly-backup", "RESTIC_PASSWORD")
                .as_deref(),
            Some(RESTIC_PASSWORD)
        );

        // An in-place change.
        let t2 = Tf {
            schedule: "@daily",
            time_zone: "America/New_York",
            ..t
        };
        wd.write("main.tf", &config(&t2));
        apply(&wd);
        let cj = get(&bed, "cronjob", &ns.name, "nightly");
        assert_eq!(cj["spec"]["schedule"], "@daily");
        assert_eq!(cj["spec"]["timeZone"], "America/New_York");
        expect_empty_plan(&wd, "after the update");

        // Import by namespace/name into a fresh state: nothing to change.
        let imp = Workdir::new(cli, "backup-import");
        imp.write("main.tf", &config(&t2));
        imp.init();
        imp.run_env(
            &[
                "import",
                "-input=false",
                "-no-color",
                BS,
                &format!("{}/nightly", ns.name),
            ],
            &[("KUBECONFIG", &kubeconfig)],
        );
        let imported = imp.show_json(None);
        assert_eq!(
            state_values(&imported, BS)["schedule"],
            "@daily",
            "imported: {imported:#}"
        );
        expect_empty_plan(&imp, "after import");

        // Destroy: the CronJob, its Secret and its ServiceAccount are gone.
        wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        for kind in ["cronjob", "secret", "serviceaccount"] {
            let name = if kind == "cronjob" { "nightly" } else { "nightly-backup" };
            assert!(bed.get_json(kind, &ns.name, name).is_none(), "{kind} deleted");
        }
    });
}

/// Run the `export ...="$(kubectl ...)"` lines of a `restore_command` with
/// the bed's kubectl and `kubeconfig`; the values they set, joined by `|`.
fn fetched_secrets(bed: &KubeBed, kubeconfig: &str, restore: &str) -> String {
    let exports: Vec<&str> = restore
        .lines()
        .filter(|l| l.starts_with("export ") && l.contains("kubectl"))
        .collect();
    assert_eq!(exports.len(), 3, "three secrets for an S3 destination:\n{restore}");
    let script = format!(
        "set -eu\n{}\nprintf '%s|%s|%s' \"$RESTIC_PASSWORD\" \"$AWS_ACCESS_KEY_ID\" \"$AWS_SECRET_ACCESS_KEY\"",
        exports.join("\n")
    );
    let kubectl_dir = std::path::Path::new(&bed.kubectl)
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env(
            "PATH",
            format!("{kubectl_dir}:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "the restore_command's kubectl lines failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Jobs the CronJob `name` created (by owner reference).
fn jobs_of(bed: &KubeBed, ns: &str, name: &str) -> Vec<String> {
    let out = bed.ok(&["get", "jobs", "-n", ns, "-o", "json"]);
    let j: Json = serde_json::from_str(&out).expect("kubectl get jobs -o json");
    j["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|job| {
            job["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["kind"] == "CronJob" && o["name"] == name)
        })
        .filter_map(|job| job["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// The real CronJob controller runs an every-minute schedule; `suspend`
/// stops it. One CLI: the point is the controller, and each step waits
/// for the clock.
#[test]
fn backup_schedule_runs_every_minute_and_suspend_stops_it() {
    let test = "backup_schedule_runs_every_minute_and_suspend_stops_it";
    let Some(bed) = kube_bed(test) else {
        return;
    };
    let Some(cli) = clis_or_skip(test).last() else {
        return;
    };
    let wd = Workdir::new(cli, "backup-runs");
    let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "backupruns", &wd.path);
    let mut t = Tf {
        kubeconfig: &kubeconfig,
        namespace: &ns.name,
        schedule: "* * * * *",
        time_zone: "UTC",
        suspend: false,
        agent: None, // a database: no volume to wait for, so kwok runs the pod
    };
    wd.write("main.tf", &config(&t));
    wd.init();
    apply(&wd);
    let pod = &get(&bed, "cronjob", &ns.name, "nightly")["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["initContainers"][0]["name"], "dump", "{pod:#}");

    let started = Instant::now();
    let until = started + Duration::from_secs(150);
    while jobs_of(&bed, &ns.name, "nightly").is_empty() {
        assert!(Instant::now() < until, "no Job from the CronJob controller within 150s");
        std::thread::sleep(Duration::from_secs(2));
    }
    eprintln!("first Job after {:.0?}", started.elapsed());

    // The refresh picks up the controller's status (kwok makes the pod
    // succeed); it never makes a diff.
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        wd.ok(&["apply", "-refresh-only", "-auto-approve", "-input=false", "-no-color"]);
        let show = wd.show_json(None);
        let v = state_values(&show, BS);
        if v["last_schedule_time"].is_string() && v["last_successful_time"].is_string() {
            break;
        }
        assert!(Instant::now() < until, "the run's status never read back: {v:#}");
        std::thread::sleep(Duration::from_secs(3));
    }
    expect_empty_plan(&wd, "after a refresh that saw a run");

    // Every minute: a second Job comes while not suspended (so the check
    // below would see one if suspend did not work).
    let until = Instant::now() + Duration::from_secs(120);
    while jobs_of(&bed, &ns.name, "nightly").len() < 2 {
        assert!(Instant::now() < until, "no second Job within 120s");
        std::thread::sleep(Duration::from_secs(2));
    }

    // Suspend: the CronJob stops starting Jobs.
    t.suspend = true;
    wd.write("main.tf", &config(&t));
    apply(&wd);
    assert_eq!(get(&bed, "cronjob", &ns.name, "nightly")["spec"]["suspend"], true);
    let before = jobs_of(&bed, &ns.name, "nightly");
    let last = get(&bed, "cronjob", &ns.name, "nightly")["status"]["lastScheduleTime"].clone();
    std::thread::sleep(Duration::from_secs(75));
    let after = jobs_of(&bed, &ns.name, "nightly");
    assert!(
        after.iter().all(|j| before.contains(j)),
        "no new Job while suspended: before {before:?}, after {after:?}"
    );
    assert_eq!(
        get(&bed, "cronjob", &ns.name, "nightly")["status"]["lastScheduleTime"],
        last
    );
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert!(bed.get_json("cronjob", &ns.name, "nightly").is_none());
}

#[test]
fn backup_schedule_plan_time_diagnostics_name_the_attribute() {
    let Some(bed) = kube_bed("backup_schedule_plan_time_diagnostics_name_the_attribute") else {
        return;
    };
    for_each_cli("backup_schedule_plan_time_diagnostics_name_the_attribute", |cli| {
        let wd = Workdir::new(cli, "backup-validate");
        let t = Tf {
            kubeconfig: &bed.kubeconfig,
            namespace: "acc-never-created",
            schedule: "0 25 * * *",
            time_zone: "Europe/Pariss",
            suspend: false,
            agent: Some("research"),
        };
        let tf = config(&t).replace(&format!("      secret_access_key = \"{S3_SECRET}\"\n"), "");
        wd.write("main.tf", &tf);
        wd.init();
        let o = wd.run(&["plan", "-input=false", "-no-color"]);
        assert_ne!(o.code, Some(0), "{o}");
        let text = o.output();
        for needle in [
            "Invalid schedule",
            "the hour field \"25\": 25 is out of range 0-23",
            "Invalid time zone",
            "\"Europe/Pariss\" is not an IANA time zone name",
            "Missing S3 credentials",
            "destination.s3.secret_access_key",
        ] {
            assert!(text.contains(needle), "the diagnostics must say {needle:?}:\n{o}");
        }
        // Each points at its line of the configuration.
        support::assert_validate_errors_at(&wd, &tf, &["schedule   =", "time_zone  ="]);
    });
}

#[test]
fn backup_schedule_trace_logs_never_contain_secrets() {
    let Some(bed) = kube_bed("backup_schedule_trace_logs_never_contain_secrets") else {
        return;
    };
    for_each_cli("backup_schedule_trace_logs_never_contain_secrets", |cli| {
        let mut wd = Workdir::new(cli, "backup-trace");
        let (ns, kubeconfig) = namespace_with_kubeconfig(&bed, "backuptrace", &wd.path);
        let sa_token: String = std::fs::read_to_string(&kubeconfig)
            .expect("read the test kubeconfig")
            .lines()
            .find_map(|l| l.trim().strip_prefix("token:"))
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        assert!(sa_token.len() > 100);
        let t = Tf {
            kubeconfig: &kubeconfig,
            namespace: &ns.name,
            schedule: "0 3 * * *",
            time_zone: "Europe/Paris",
            suspend: false,
            agent: None,
        };
        wd.write("main.tf", &config(&t));
        wd.init();
        let log = wd.path.join("trace.log");
        let log_path = log.display().to_string();
        wd.set_env("TF_LOG", "TRACE");
        wd.set_env("TF_LOG_PATH", &log_path);
        let mut outputs = vec![apply(&wd)];
        bed.ok(&["delete", "secret", "-n", &ns.name, "nightly-backup"]);
        outputs.push(apply(&wd));
        outputs.push(
            wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"])
                .output(),
        );
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("read {log_path}: {e}"));
        assert!(text.contains("applied the backup CronJob"), "provider steps are logged");
        let b64 = |s: &str| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
        };
        for secret in [RESTIC_PASSWORD, S3_SECRET, PG_PASSWORD, sa_token.as_str()] {
            for needle in [secret.to_owned(), b64(secret)] {
                assert!(!text.contains(&needle), "a secret leaked into the TRACE log {log_path}");
                assert!(
                    outputs.iter().all(|o| !o.contains(&needle)),
                    "a secret leaked into CLI output"
                );
            }
        }
    });
}

/// The plan-time checks of `schedule` and `time_zone` agree with the real
/// API server: each case is also sent as a CronJob with a server-side dry
/// run. Where the provider is deliberately stricter (a step larger than the
/// field, `?` outside the day fields, `@every`), the case says so.
#[test]
fn schedule_and_time_zone_checks_agree_with_the_api_server() {
    use terraform_provider_selfhost::backup::{cron, zone};
    let Some(bed) = kube_bed("schedule_and_time_zone_checks_agree_with_the_api_server") else {
        return;
    };
    let ns = bed.namespace("croncheck");
    let server_accepts = |schedule: &str, time_zone: &str| -> bool {
        let body = serde_json::json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "check", "namespace": ns.name},
            "spec": {"schedule": schedule, "timeZone": time_zone, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}},
        });
        let (ok, _, err) = bed.run(&["create", "--dry-run=server", "-f", "-"], Some(&body.to_string()));
        assert!(ok || err.contains("Invalid value"), "an unexpected refusal: {err}");
        ok
    };
    // (schedule, the provider is stricter than the server)
    let schedules: &[(&str, bool)] = &[
        ("0 3 * * *", false),
        ("*/5 * * * *", false),
        ("0 0-23/2 * * *", false),
        ("15,45 8-18 * * MON-FRI", false),
        ("0 3 1 jan,jul *", false),
        ("0 3 ? * sun", false),
        ("5/10 * * * *", false),
        ("0 0 31 12 6", false),
        ("  0   3 * * *  ", false),
        ("@daily", false),
        ("@hourly", false),
        ("@yearly", false),
        ("@annually", false),
        ("@midnight", false),
        ("@Daily", false),
        (" @daily", false),
        ("60 * * * *", false),
        ("0 24 * * *", false),
        ("0 0 0 * *", false),
        ("0 0 32 * *", false),
        ("0 0 * 13 *", false),
        ("0 0 * * 7", false),
        ("0 0 * FOO *", false),
        ("*/0 * * * *", false),
        ("0 10-2 * * *", false),
        ("0 3 * *", false),
        ("0 3 * * * *", false),
        ("@reboot", false),
        ("CRON_TZ=UTC 0 3 * * *", false),
        ("*/61 * * * *", true),
        ("? * * * *", true),
        ("@every 1h", true),
    ];
    for (schedule, stricter) in schedules {
        let ours = cron::check(schedule).is_ok();
        let server = server_accepts(schedule, "UTC");
        if *stricter {
            assert!(
                server && !ours,
                "{schedule:?}: the server takes it and the provider refuses it on purpose"
            );
        } else {
            assert_eq!(ours, server, "{schedule:?}: provider {ours}, API server {server}");
        }
    }
    for tz in [
        "Europe/Paris",
        "UTC",
        "Etc/UTC",
        "America/Argentina/Buenos_Aires",
        "Asia/Kolkata",
        "US/Eastern",
        "Europe/Pari",
        "europe/paris",
        "+02:00",
        "Mars/Olympus",
    ] {
        let ours = zone::check(tz).is_ok();
        assert_eq!(ours, server_accepts("0 3 * * *", tz), "time zone {tz:?}");
    }
}
