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

/// Which cluster's files and etcd the checks read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// kubeadm: etcd over TLS on the node address with the API server's
    /// client certificate; the provider's files under /etc/kubernetes/selfhost.
    Kubeadm,
    /// The bed's k3s STAND-IN (testbed/README.md): its etcd answers plain
    /// HTTP on the server's loopback only, read over SSH with bash's
    /// /dev/tcp; k3s's own key file, the provider's settings in config.yaml.
    K3sStandIn,
}

impl Flavor {
    fn audit_log(self) -> &'static str {
        match self {
            Flavor::Kubeadm => "/var/log/kubernetes/audit/audit.log",
            Flavor::K3sStandIn => "/var/lib/rancher/k3s/server/logs/audit.log",
        }
    }

    fn audit_policy(self) -> &'static str {
        match self {
            Flavor::Kubeadm => "/etc/kubernetes/selfhost/audit-policy.json",
            Flavor::K3sStandIn => "/var/lib/rancher/k3s/server/audit-policy.json",
        }
    }

    fn encryption_file(self) -> &'static str {
        match self {
            Flavor::Kubeadm => "/etc/kubernetes/selfhost/encryption-config.json",
            Flavor::K3sStandIn => "/var/lib/rancher/k3s/server/cred/encryption-config.json",
        }
    }

    /// The API server settings that are on, one per line: the kubeadm
    /// manifest's flags, or k3s's configuration keys.
    fn settings_script(self) -> &'static str {
        match self {
            Flavor::Kubeadm => {
                "grep -o -- '--encryption-provider-config=[^ ]*\\|--audit-policy-file=[^ ]*' /etc/kubernetes/manifests/kube-apiserver.yaml || true"
            }
            Flavor::K3sStandIn => {
                "grep -o '^secrets-encryption: true\\|audit-policy-file=' /etc/rancher/k3s/config.yaml || true"
            }
        }
    }

    /// The bytes etcd stores under `key`.
    pub fn etcd_get(self, k: &K8sBed, kc: &KubeBed, key: &str) -> Vec<u8> {
        match self {
            Flavor::Kubeadm => etcd_get(k, kc, key),
            Flavor::K3sStandIn => {
                let script = format!(
                    r#"set -eu
body='{{"key":"{key}"}}'
exec 3<>/dev/tcp/127.0.0.1/2379
printf 'POST /v3/kv/range HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' "${{#body}}" "$body" >&3
tr -d '\r' <&3 | sed -n 's/.*"value":"\([^"]*\)".*/\1/p'
"#,
                    key = B64.encode(key)
                );
                let out = k.bed.sh(&k.hosts[0], &format!("bash -c {}", shell_quote(&script)));
                let value = out.trim();
                assert!(!value.is_empty(), "no {key} in the stand-in's etcd");
                B64.decode(value).expect("base64 value")
            }
        }
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The bytes etcd stores under `key`, read from the control plane's etcd
/// through `kubectl port-forward` to its static pod (hostNetwork: the
/// forward reaches etcd's loopback listener, past the host's firewall),
/// with the API server's etcd client certificate.
pub fn etcd_get(k: &K8sBed, kc: &KubeBed, key: &str) -> Vec<u8> {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    for (remote, local) in [
        ("/etc/kubernetes/pki/etcd/ca.crt", "ca.crt"),
        ("/etc/kubernetes/pki/apiserver-etcd-client.crt", "client.crt"),
        ("/etc/kubernetes/pki/apiserver-etcd-client.key", "client.key"),
    ] {
        std::fs::write(dir.path().join(local), k.bed.sh(&k.hosts[0], &format!("cat {remote}"))).expect("write");
    }
    let node = k.bed.sh(&k.hosts[0], "hostname");
    let mut forward = std::process::Command::new(&kc.kubectl)
        .args([
            "--kubeconfig",
            &kc.kubeconfig,
            "-n",
            "kube-system",
            "port-forward",
            "--address",
            "127.0.0.1",
            &format!("pod/etcd-{}", node.trim()),
            ":2379",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl port-forward");
    // "Forwarding from 127.0.0.1:41234 -> 2379"
    let mut line = String::new();
    // kept open until the forward is stopped: kubectl dies of SIGPIPE
    // writing to a closed stdout
    let mut stdout = std::io::BufReader::new(forward.stdout.take().expect("stdout"));
    stdout.read_line(&mut line).expect("port-forward's first line");
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no local port in {line:?}"))
        .to_owned();
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
            &format!("https://127.0.0.1:{port}/v3/kv/range"),
        ])
        .output()
        .expect("curl");
    let _ = forward.kill();
    let _ = forward.wait();
    drop(stdout);
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

/// The Secret `agents/<name>` as etcd holds it: encrypted with a key
/// whose prefix is `key` (e.g. "secretbox:v1:key1"; the name of the key
/// that encrypted it is returned), or (`None`) stored as it came. `value`
/// is the Secret's one data value, never in the ciphertext.
pub fn assert_stored(k: &K8sBed, kc: &KubeBed, flavor: Flavor, name: &str, value: &str, key: Option<&str>) -> String {
    let stored = flavor.etcd_get(k, kc, &format!("/registry/secrets/agents/{name}"));
    match key {
        Some(key) => {
            let prefix = format!("k8s:enc:{key}");
            assert!(
                stored.starts_with(prefix.as_bytes()),
                "agents/{name} is not encrypted with {key} in etcd: {:?}",
                String::from_utf8_lossy(&stored[..stored.len().min(60)])
            );
            assert!(
                !contains(&stored, value.as_bytes()),
                "agents/{name}'s value is readable in etcd"
            );
            // k8s:enc:secretbox:v1:<key name>:<ciphertext>; k3s's names hold colons
            let names = key_names(k, flavor);
            names
                .split_whitespace()
                .find(|n| stored.starts_with(format!("k8s:enc:secretbox:v1:{n}:").as_bytes()))
                .unwrap_or_else(|| {
                    panic!(
                        "agents/{name}'s key is not among {names:?}: {:?}",
                        String::from_utf8_lossy(&stored[..stored.len().min(60)])
                    )
                })
                .to_owned()
        }
        None => {
            assert!(stored.starts_with(b"k8s\0"), "agents/{name} is still encrypted");
            assert!(contains(&stored, value.as_bytes()), "agents/{name} stored as it came");
            String::new()
        }
    }
}

/// The key names in the encryption file, in order.
fn key_names(k: &K8sBed, flavor: Flavor) -> String {
    k.bed
        .sh(
            &k.hosts[0],
            &format!(
                "grep -o '\"name\":\"[^\"]*\"' {} | cut -d'\"' -f4 | tr '\\n' ' ' || true",
                flavor.encryption_file()
            ),
        )
        .trim()
        .to_owned()
}

fn apply(wd: &Workdir) {
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
}

fn secret_through_api(kc: &KubeBed) -> Vec<u8> {
    let through_api = kc.ok(&[
        "-n",
        "agents",
        "get",
        "secret",
        "sec-probe",
        "-o",
        "jsonpath={.data.token}",
    ]);
    B64.decode(through_api.trim()).expect("base64")
}

/// The cluster's security lifecycle: on by default, a Secret's read
/// audited, key rotation, a hand change repaired, both off and on again.
/// `with(attrs)` is the configuration with `attrs` (attribute lines) in
/// the cluster block; it ends with `with("")`.
pub fn api_server_security(k: &K8sBed, flavor: Flavor, wd: &Workdir, kc: &KubeBed, with: &dyn Fn(&str) -> String) {
    let first_key = match flavor {
        Flavor::Kubeadm => "secretbox:v1:key1:",
        Flavor::K3sStandIn => "secretbox:v1:",
    };
    // 1. On by default: a Secret written through the API is ciphertext in
    //    etcd and plain through the API.
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
    let key1 = assert_stored(k, kc, flavor, "sec-probe", &value, Some(first_key));
    assert_eq!(secret_through_api(kc), value.as_bytes());
    assert_eq!(key_names(k, flavor), key1, "one key, the one in use");
    assert_eq!(
        k.bed
            .sh(&k.hosts[0], &format!("stat -c '%a %U' {}", flavor.encryption_file()))
            .trim(),
        "600 root"
    );
    if flavor == Flavor::Kubeadm {
        assert_eq!(
            k.bed.sh(&k.hosts[0], "stat -c '%a %U' /etc/kubernetes/selfhost").trim(),
            "700 root"
        );
    }

    // 2. The read is in the audit log: name and verb, not the value.
    let log = flavor.audit_log();
    let audit = k.bed.sh(
        &k.hosts[0],
        &format!("grep '\"name\":\"sec-probe\"' {log} | grep '\"verb\":\"get\"' || true"),
    );
    assert!(!audit.trim().is_empty(), "the Secret's read is audited");
    assert!(audit.contains("\"resource\":\"secrets\""), "{audit}");
    let whole = k.bed.sh(&k.hosts[0], &format!("cat {log}*"));
    assert!(
        !whole.contains(&value) && !whole.contains(&B64.encode(&value)),
        "a Secret's value reached the audit log"
    );

    // 3. Rotation: a new key encrypts, the Secret was rewritten with it,
    //    the old key is gone.
    wd.write("main.tf", &with("  secrets_encryption_key_version = 2\n"));
    let o = wd.run(&["plan", "-input=false", "-no-color"]);
    assert!(o.stdout.contains("secrets_encryption_key_version = 1 -> 2"), "{o}");
    apply(wd);
    let key2 = assert_stored(k, kc, flavor, "sec-probe", &value, Some("secretbox:v1:"));
    assert_ne!(key2, key1, "a new key");
    if flavor == Flavor::Kubeadm {
        assert_eq!(key2, "key2");
    }
    assert_eq!(key_names(k, flavor), key2, "the old key is removed");
    assert_eq!(secret_through_api(kc), value.as_bytes());
    expect_empty_plan(wd, "after the key rotation");

    // 4. A hand change shows in the plan; apply restores it.
    k.bed
        .sh(&k.hosts[0], &format!("echo '{{}}' > {}", flavor.audit_policy()));
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(
        o.stdout.contains("audit_log") && o.stdout.contains("false -> true"),
        "{o}"
    );
    apply(wd);
    expect_empty_plan(wd, "after restoring the audit policy");

    // 5. Off: Secrets rewritten unencrypted, the settings and the policy gone.
    wd.write(
        "main.tf",
        &with("  secrets_encryption_key_version = 2\n  secrets_encryption = false\n  audit_log = false\n"),
    );
    apply(wd);
    assert_stored(k, kc, flavor, "sec-probe", &value, None);
    assert_eq!(
        k.bed.sh(&k.hosts[0], flavor.settings_script()).trim(),
        "",
        "no encryption or audit setting left"
    );
    assert_eq!(
        k.bed
            .sh(
                &k.hosts[0],
                &format!("ls {} 2>/dev/null | wc -l", flavor.audit_policy())
            )
            .trim(),
        "0"
    );
    if flavor == Flavor::Kubeadm {
        assert_eq!(
            k.bed.sh(&k.hosts[0], "ls /etc/kubernetes/selfhost/ | wc -l").trim(),
            "0",
            "the key file is removed"
        );
    }
    expect_empty_plan(wd, "after turning both off");

    // 6. On again, as by default: a new key, everything encrypted again.
    wd.write("main.tf", &with(""));
    apply(wd);
    let key3 = assert_stored(k, kc, flavor, "sec-probe", &value, Some(first_key));
    assert_ne!(key3, key2);
    assert_eq!(
        k.bed.sh(&k.hosts[0], flavor.settings_script()).lines().count(),
        2,
        "{}",
        k.bed.sh(&k.hosts[0], flavor.settings_script())
    );
    expect_empty_plan(wd, "after turning both on again");
    kc.ok(&["-n", "agents", "delete", "secret", "sec-probe"]);
}
