//! The test bed as Rust tests see it: through `testbed/testbed env` only
//! (`KUBECONFIG`, `SELFHOST_TEST_HOSTS`, `SELFHOST_TEST_SSH_*`). These use the
//! system `ssh` and the bed's `kubectl` until the provider's own SSH and
//! Kubernetes clients exist; they prove the variables lead to real, verified
//! parts. Without the bed they SKIP loudly, except under `CI`, where they fail.

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[path = "support/required.rs"]
mod required;

fn bed_var(test: &str, name: &str) -> Option<String> {
    required::required_var(test, name, required::BED_HINT)
}

fn ssh(host: &str, key: &str, user: &str, known_hosts: &str, command: &str) -> std::process::Output {
    let (addr, port) = host.rsplit_once(':').unwrap_or((host, "22"));
    Command::new("ssh")
        .args(["-i", key, "-p", port])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=10",
        ])
        .args([
            "-o",
            &format!("UserKnownHostsFile={known_hosts}"),
            "-o",
            "GlobalKnownHostsFile=/dev/null",
        ])
        .arg(format!("{user}@{addr}"))
        .arg(command)
        .output()
        .expect("run ssh")
}

#[test]
fn every_host_runs_systemd_behind_a_verified_host_key() {
    let test = "every_host_runs_systemd_behind_a_verified_host_key";
    let (Some(hosts), Some(key), Some(user), Some(known)) = (
        bed_var(test, "SELFHOST_TEST_HOSTS"),
        bed_var(test, "SELFHOST_TEST_SSH_KEY"),
        bed_var(test, "SELFHOST_TEST_SSH_USER"),
        bed_var(test, "SELFHOST_TEST_KNOWN_HOSTS"),
    ) else {
        return;
    };
    let empty = tempfile::NamedTempFile::new().expect("temp file");
    let empty = empty.path().to_str().expect("utf-8 temp path");
    for host in hosts.split_whitespace() {
        let out = ssh(
            host,
            &key,
            &user,
            &known,
            "systemctl is-system-running || systemctl --failed --no-legend",
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let state = stdout.lines().next().unwrap_or_default().trim();
        assert!(
            state == "running" || state == "degraded",
            "{host}: systemd is {state:?}\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The control: without the bed's known_hosts the same connection
        // must be refused, so the check above really verified the key.
        let refused = ssh(host, &key, &user, empty, "true");
        assert!(!refused.status.success(), "{host}: ssh accepted an unknown host key");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("Host key verification failed"),
            "{host}: {}",
            String::from_utf8_lossy(&refused.stderr)
        );
    }
}

#[test]
fn control_plane_is_a_real_ready_api_server() {
    let test = "control_plane_is_a_real_ready_api_server";
    let (Some(kubeconfig), Some(kubectl)) = (bed_var(test, "KUBECONFIG"), bed_var(test, "SELFHOST_TEST_KUBECTL"))
    else {
        return;
    };
    let run = |args: &[&str]| {
        let out = Command::new(&kubectl)
            .env("KUBECONFIG", &kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(run(&["get", "--raw", "/readyz"]).trim(), "ok");
    let version: serde_json::Value = serde_json::from_str(&run(&["version", "-o", "json"])).expect("version JSON");
    let server = version["serverVersion"]["gitVersion"].as_str().unwrap_or_default();
    assert!(
        server.starts_with("v1.") && !server.contains("v0.0.0"),
        "server version {server:?}"
    );
    let nodes = run(&["get", "nodes", "-o", "name"]);
    assert!(nodes.lines().count() >= 1, "kwok nodes: {nodes:?}");
}
