//! Secrets encryption at rest and the audit log of a REAL kubeadm cluster,
//! checked from outside the provider: etcd's own API (its JSON gateway,
//! with the API server's etcd client certificate, read from the control
//! plane over plain OpenSSH — what `etcdctl get` shows, without an
//! etcdctl: the bed's etcd image has none), the API through the real
//! kubectl, and the control plane's files.

#![allow(dead_code)] // each test binary uses part of the support code

use base64::Engine;

use super::Workdir;
use super::cluster_lifecycle::expect_empty_plan;
use super::k8s::K8sBed;
use super::kube::KubeBed;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The bytes etcd stores under `key`, read from the control plane's etcd
/// on its node address (kubeadm's etcd listens there and on loopback).
pub fn etcd_get(k: &K8sBed, key: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (remote, local) in [
        ("/etc/kubernetes/pki/etcd/ca.crt", "ca.crt"),
        ("/etc/kubernetes/pki/apiserver-etcd-client.crt", "client.crt"),
        ("/etc/kubernetes/pki/apiserver-etcd-client.key", "client.key"),
    ] {
        std::fs::write(dir.path().join(local), k.bed.sh(&k.hosts[0], &format!("cat {remote}"))).expect("write");
    }
    let body = format!("{{\"key\":\"{}\"}}", B64.encode(key));
    let out = std::process::Command::new("curl")
        .current_dir(dir.path())
        .args([
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            "ca.crt",
            "--cert",
            "client.crt",
            "--key",
            "client.key",
            "-d",
            &body,
            &format!("https://{}:2379/v3/kv/range", k.hosts[0].addr),
        ])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "etcd range {key}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("etcd JSON");
    let value = v["kvs"][0]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in etcd: {v}"));
    B64.decode(value).expect("base64 value")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The Secret `agents/<name>` as etcd holds it: encrypted with `key` (e.g.
/// "secretbox:v1:key1"), or (`None`) stored as it came. `value` is the
/// Secret's one data value, never in the ciphertext.
pub fn assert_stored(k: &K8sBed, name: &str, value: &str, key: Option<&str>) {
    let stored = etcd_get(k, &format!("/registry/secrets/agents/{name}"));
    match key {
        Some(key) => {
            let prefix = format!("k8s:enc:{key}:");
            assert!(
                stored.starts_with(prefix.as_bytes()),
                "agents/{name} is not encrypted with {key} in etcd: {:?}",
                String::from_utf8_lossy(&stored[..stored.len().min(40)])
            );
            assert!(
                !contains(&stored, value.as_bytes()),
                "agents/{name}'s value is readable in etcd"
            );
        }
        None => {
            assert!(stored.starts_with(b"k8s\0"), "agents/{name} is still encrypted");
            assert!(contains(&stored, value.as_bytes()), "agents/{name} stored as it came");
        }
    }
}

/// The key names in the control plane's encryption file, in order.
fn key_names(k: &K8sBed) -> String {
    k.bed
        .sh(
            &k.hosts[0],
            "grep -o '\"name\":\"key[0-9]*\"' /etc/kubernetes/selfhost/encryption-config.json | tr -d '\"' | tr '\\n' ' ' || true",
        )
        .trim()
        .to_owned()
}

fn manifest_flags(k: &K8sBed) -> String {
    k.bed.sh(
        &k.hosts[0],
        "grep -o -- '--encryption-provider-config=[^ ]*\\|--audit-policy-file=[^ ]*' /etc/kubernetes/manifests/kube-apiserver.yaml || true",
    )
}

fn apply(wd: &Workdir) {
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
}

/// The kubeadm cluster's security lifecycle. `with(attrs)` is the
/// configuration with `attrs` (attribute lines) in the cluster block.
pub fn kubeadm_api_server_security(k: &K8sBed, wd: &Workdir, kc: &KubeBed, with: &dyn Fn(&str) -> String) {
    // 1. On by default: a Secret written through the API is ciphertext in
    //    etcd (key1) and plain through the API.
    let value = format!("s3cr3t-{}", std::process::id());
    kc.ok(&[
        "-n",
        "agents",
        "create",
        "secret",
        "generic",
        "sec-probe",
        &format!("--from-literal=token={value}"),
    ]);
    assert_stored(k, "sec-probe", &value, Some("secretbox:v1:key1"));
    let through_api = kc.ok(&[
        "-n",
        "agents",
        "get",
        "secret",
        "sec-probe",
        "-o",
        "jsonpath={.data.token}",
    ]);
    assert_eq!(B64.decode(through_api.trim()).expect("base64"), value.as_bytes());
    assert_eq!(key_names(k), "name:key1");
    assert_eq!(
        k.bed
            .sh(
                &k.hosts[0],
                "stat -c '%a %U' /etc/kubernetes/selfhost/encryption-config.json /etc/kubernetes/selfhost"
            )
            .trim(),
        "600 root\n700 root"
    );

    // 2. The read is in the audit log: name and verb, not the value.
    let audit = k.bed.sh(
        &k.hosts[0],
        "grep '\"name\":\"sec-probe\"' /var/log/kubernetes/audit/audit.log | grep '\"verb\":\"get\"' || true",
    );
    assert!(!audit.trim().is_empty(), "the Secret's read is audited");
    assert!(audit.contains("\"resource\":\"secrets\""), "{audit}");
    let whole = k.bed.sh(&k.hosts[0], "cat /var/log/kubernetes/audit/audit.log*");
    assert!(
        !whole.contains(&value) && !whole.contains(&B64.encode(&value)),
        "a Secret's value reached the audit log"
    );

    // 3. Rotation: key2 encrypts, the Secret was rewritten with it, key1 is gone.
    wd.write("main.tf", &with("  secrets_encryption_key_version = 2\n"));
    let o = wd.run(&["plan", "-input=false", "-no-color"]);
    assert!(o.stdout.contains("secrets_encryption_key_version = 1 -> 2"), "{o}");
    apply(wd);
    assert_stored(k, "sec-probe", &value, Some("secretbox:v1:key2"));
    assert_eq!(key_names(k), "name:key2", "the old key is removed");
    let through_api = kc.ok(&[
        "-n",
        "agents",
        "get",
        "secret",
        "sec-probe",
        "-o",
        "jsonpath={.data.token}",
    ]);
    assert_eq!(B64.decode(through_api.trim()).expect("base64"), value.as_bytes());
    expect_empty_plan(wd, "after the key rotation");

    // 4. A hand change shows in the plan; apply restores it.
    k.bed
        .sh(&k.hosts[0], "echo '{}' > /etc/kubernetes/selfhost/audit-policy.json");
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(
        o.stdout.contains("audit_log") && o.stdout.contains("false -> true"),
        "{o}"
    );
    apply(wd);
    expect_empty_plan(wd, "after restoring the audit policy");

    // 5. Off: Secrets rewritten unencrypted, the flags and files gone.
    wd.write(
        "main.tf",
        &with("  secrets_encryption_key_version = 2\n  secrets_encryption = false\n  audit_log = false\n"),
    );
    apply(wd);
    assert_stored(k, "sec-probe", &value, None);
    assert_eq!(manifest_flags(k).trim(), "", "no encryption or audit flag left");
    assert_eq!(
        k.bed
            .sh(&k.hosts[0], "ls /etc/kubernetes/selfhost/ 2>/dev/null | wc -l")
            .trim(),
        "0"
    );
    expect_empty_plan(wd, "after turning both off");

    // 6. On again, as by default: a new key1, everything encrypted again.
    wd.write("main.tf", &with(""));
    apply(wd);
    assert_stored(k, "sec-probe", &value, Some("secretbox:v1:key1"));
    assert_eq!(manifest_flags(k).lines().count(), 2, "{}", manifest_flags(k));
    expect_empty_plan(wd, "after turning both on again");
    kc.ok(&["-n", "agents", "delete", "secret", "sec-probe"]);
}
