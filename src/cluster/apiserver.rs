//! The kubeadm API server's security settings, as files and flags: Secrets
//! encrypted at rest (an `EncryptionConfiguration` with secretbox keys the
//! provider generates) and the audit log (a policy and size-based
//! rotation). Pure: the resource writes the files over SSH and has kubeadm
//! regenerate the API server's static pod with these flags.
//!
//! The encryption key lives only on the control plane, in a 0600 file in a
//! 0700 directory: never in Terraform's state, never in a log line, never
//! in a command's arguments (it is uploaded like the join token). The
//! admin kubeconfig in state already reads every Secret through the API,
//! so a key there would add nothing for whoever holds the state, while
//! taking it off the host keeps etcd's files and snapshots unreadable to
//! whoever only has those. Back up the file with etcd's snapshots.

use std::fmt;

use base64::Engine;
use serde_json::{Value, json};

/// The directory of the files below (0700, root).
pub const SECURITY_DIR: &str = "/etc/kubernetes/selfhost";
/// The `EncryptionConfiguration` (0600: it holds the keys).
pub const ENCRYPTION_CONFIG: &str = "/etc/kubernetes/selfhost/encryption-config.json";
/// The audit policy.
pub const AUDIT_POLICY: &str = "/etc/kubernetes/selfhost/audit-policy.json";
/// Where the API server writes the audit log and its rotated files.
pub const AUDIT_LOG_DIR: &str = "/var/log/kubernetes/audit";
/// The audit log.
pub const AUDIT_LOG: &str = "/var/log/kubernetes/audit/audit.log";
/// Rotate the audit log at this size (MB), keeping this many old files:
/// at most 600 MB of audit log on the control plane.
pub const AUDIT_MAX_SIZE_MB: u32 = 100;
/// See [`AUDIT_MAX_SIZE_MB`].
pub const AUDIT_MAX_BACKUPS: u32 = 5;
/// The static pod manifest kubeadm writes for the API server.
pub const MANIFEST: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";
/// The kubeadm patch that carries [`LAYOUT_ANNOTATION`] into the manifest.
pub const MANIFEST_PATCH: &str = "/etc/kubeadm/patches/kube-apiserver+merge.json";
/// The API server pod's annotation naming the encryption keys in use (names
/// only): a new key changes the manifest, so the kubelet restarts the API
/// server and it reads the new file.
pub const LAYOUT_ANNOTATION: &str = "selfhost.dev/encryption-layout";
/// The largest `secrets_encryption_key_version`.
pub const MAX_KEY_VERSION: i64 = 1_000_000;

/// What the API server is asked to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApiServerSecurity {
    /// Encrypt Secrets with key version N; `None`: store them as they come.
    pub encryption: Option<u32>,
    /// Write the audit log.
    pub audit_log: bool,
}

/// One secretbox key: `key<version>` and 32 random bytes (base64). Its
/// `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey {
    /// The N of `key<N>`.
    pub version: u32,
    secret: String,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key{} (secret redacted)", self.version)
    }
}

impl EncryptionKey {
    /// A new key from the OS's random source.
    pub fn generate(version: u32) -> Result<EncryptionKey, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(EncryptionKey {
            version,
            secret: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
    }

    fn name(&self) -> String {
        format!("key{}", self.version)
    }
}

/// The encryption file's providers, in order: the keys (the first one
/// encrypts) and `identity` (reads what was stored unencrypted; first, it
/// means "store unencrypted").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionLayout {
    /// `identity` comes before the keys: Secrets are written unencrypted.
    pub identity_first: bool,
    /// The secretbox keys, the one that encrypts first.
    pub keys: Vec<EncryptionKey>,
}

impl EncryptionLayout {
    /// The file's contents (JSON, which the API server reads as YAML).
    pub fn render(&self) -> String {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| json!({"name": k.name(), "secret": k.secret}))
            .collect();
        let secretbox = json!({"secretbox": {"keys": keys}});
        let identity = json!({"identity": {}});
        let providers = if self.identity_first {
            vec![identity, secretbox]
        } else {
            vec![secretbox, identity]
        };
        json!({
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "EncryptionConfiguration",
            "resources": [{"resources": ["secrets"], "providers": providers}],
        })
        .to_string()
            + "\n"
    }

    /// Read a file this provider wrote. Anything else is refused with what
    /// is wrong (never with the file's text, which holds the keys).
    pub fn parse(text: &str) -> Result<EncryptionLayout, String> {
        let v: Value = serde_json::from_str(text).map_err(|_| "it is not the JSON this provider writes".to_owned())?;
        let resources = v["resources"].as_array().filter(|r| r.len() == 1);
        let Some(providers) = resources.and_then(|r| r[0]["providers"].as_array()) else {
            return Err("it does not have exactly one `resources` entry with `providers`".into());
        };
        if resources.is_some_and(|r| r[0]["resources"] != json!(["secrets"])) {
            return Err("it encrypts other resources than `secrets`".into());
        }
        let mut layout = EncryptionLayout {
            identity_first: false,
            keys: Vec::new(),
        };
        let mut seen_identity = false;
        for (i, p) in providers.iter().enumerate() {
            if p.get("identity").is_some() {
                seen_identity = true;
                layout.identity_first = i == 0;
            } else if let Some(keys) = p["secretbox"]["keys"].as_array() {
                for k in keys {
                    let version = k["name"]
                        .as_str()
                        .and_then(|n| n.strip_prefix("key"))
                        .and_then(|n| n.parse::<u32>().ok())
                        .ok_or("a key is not named key<N>")?;
                    let secret = k["secret"].as_str().unwrap_or_default();
                    let decoded = base64::engine::general_purpose::STANDARD.decode(secret);
                    if !decoded.is_ok_and(|b| b.len() == 32) {
                        return Err(format!("key{version}'s secret is not 32 bytes of base64"));
                    }
                    layout.keys.push(EncryptionKey {
                        version,
                        secret: secret.to_owned(),
                    });
                }
            } else {
                return Err("it names a provider other than secretbox and identity".into());
            }
        }
        if !seen_identity || layout.keys.is_empty() {
            return Err("it lacks the identity provider or a secretbox key".into());
        }
        Ok(layout)
    }

    /// The names in order, as [`LAYOUT_ANNOTATION`] and the probe show them:
    /// `secretbox:key2,key1;identity` (no secret).
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.keys.iter().map(EncryptionKey::name).collect();
        let secretbox = format!("secretbox:{}", names.join(","));
        if self.identity_first {
            format!("identity;{secretbox}")
        } else {
            format!("{secretbox};identity")
        }
    }

    /// The finished layout for key version `version`: only that key, first.
    pub fn is_final_for(&self, version: u32) -> bool {
        !self.identity_first && self.keys.len() == 1 && self.keys[0].version == version
    }
}

/// One step of bringing the encryption file where the configuration wants
/// it, in the order Kubernetes documents for a single API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncryptionStep {
    /// Write this layout to [`ENCRYPTION_CONFIG`].
    Write(EncryptionLayout),
    /// Have the API server read the file again (restart it), with the
    /// `--encryption-provider-config` flag on or off.
    Reload {
        /// Whether the API server runs with `--encryption-provider-config`.
        flag: bool,
    },
    /// Rewrite every Secret, so it is stored as the first provider says.
    RewriteSecrets,
    /// Delete [`ENCRYPTION_CONFIG`].
    Remove,
}

/// The steps from the file as it is (`current`, `None`: no file) to
/// encryption with key version `want` (`None`: off). `new_key` makes the
/// key a step needs. Turning on: write, reload, rewrite. Rotating: the new
/// key first with the old ones still there to read, reload, rewrite, then
/// the old keys removed and reload. Turning off: identity first, reload,
/// rewrite, flag off, file removed. An interrupted sequence resumes from
/// the file it left.
pub fn encryption_steps<E>(
    current: Option<&EncryptionLayout>,
    want: Option<u32>,
    mut new_key: impl FnMut(u32) -> Result<EncryptionKey, E>,
) -> Result<Vec<EncryptionStep>, E> {
    use EncryptionStep::*;
    let mut steps = Vec::new();
    match (current, want) {
        (None, None) => {}
        (Some(cur), None) => {
            if !cur.identity_first {
                steps.push(Write(EncryptionLayout {
                    identity_first: true,
                    keys: cur.keys.clone(),
                }));
            }
            steps.extend([Reload { flag: true }, RewriteSecrets, Reload { flag: false }, Remove]);
        }
        (None, Some(v)) => {
            steps.push(Write(EncryptionLayout {
                identity_first: false,
                keys: vec![new_key(v)?],
            }));
            steps.extend([Reload { flag: true }, RewriteSecrets]);
        }
        (Some(cur), Some(v)) if cur.is_final_for(v) => {}
        (Some(cur), Some(v)) => {
            let key = match cur.keys.iter().find(|k| k.version == v) {
                Some(k) => k.clone(),
                None => new_key(v)?,
            };
            let mut keys = vec![key.clone()];
            keys.extend(cur.keys.iter().filter(|k| k.version != v).cloned());
            let first = EncryptionLayout {
                identity_first: false,
                keys,
            };
            if first != *cur {
                steps.push(Write(first));
            }
            steps.extend([
                Reload { flag: true },
                RewriteSecrets,
                Write(EncryptionLayout {
                    identity_first: false,
                    keys: vec![key],
                }),
                Reload { flag: true },
            ]);
        }
    }
    Ok(steps)
}

/// The audit policy: nothing for health checks, events and leases; the
/// metadata (who, what, which object — never the body) of every access to
/// Secrets, tokens and certificate requests; the request body of workload
/// writes; the metadata of every other write; nothing for other reads.
pub fn audit_policy() -> String {
    const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];
    json!({
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*", "/version", "/metrics", "/openapi*"]},
            {"level": "None", "resources": [
                {"group": "", "resources": ["events"]},
                {"group": "events.k8s.io", "resources": ["events"]},
                {"group": "coordination.k8s.io", "resources": ["leases"]},
            ]},
            {"level": "Metadata", "resources": [
                {"group": "", "resources": ["secrets", "serviceaccounts/token"]},
                {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
                {"group": "certificates.k8s.io", "resources": ["certificatesigningrequests"]},
            ]},
            {"level": "Request", "verbs": WRITES, "resources": [
                {"group": "", "resources": ["pods", "services", "configmaps", "namespaces", "serviceaccounts",
                                            "persistentvolumeclaims", "resourcequotas", "limitranges"]},
                {"group": "apps"}, {"group": "batch"}, {"group": "autoscaling"}, {"group": "policy"},
                {"group": "networking.k8s.io"}, {"group": "rbac.authorization.k8s.io"},
            ]},
            {"level": "Metadata", "verbs": WRITES},
            {"level": "None"},
        ],
    })
    .to_string()
        + "\n"
}

/// The sha256 (hex) of [`audit_policy`], as `sha256sum` prints it.
pub fn audit_policy_sha256() -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(audit_policy().as_bytes()))
}

/// The API server flags for `sec` (kubeadm `apiServer.extraArgs`).
pub fn extra_args(sec: &ApiServerSecurity) -> Vec<(&'static str, String)> {
    let mut args = Vec::new();
    if sec.encryption.is_some() {
        args.push(("encryption-provider-config", ENCRYPTION_CONFIG.to_owned()));
    }
    if sec.audit_log {
        args.extend([
            ("audit-policy-file", AUDIT_POLICY.to_owned()),
            ("audit-log-path", AUDIT_LOG.to_owned()),
            ("audit-log-maxsize", AUDIT_MAX_SIZE_MB.to_string()),
            ("audit-log-maxbackup", AUDIT_MAX_BACKUPS.to_string()),
        ]);
    }
    args
}

/// The host directories the API server's pod mounts for `sec` (kubeadm
/// `apiServer.extraVolumes`).
pub fn extra_volumes(sec: &ApiServerSecurity) -> Vec<Value> {
    let mut volumes = Vec::new();
    if sec.encryption.is_some() || sec.audit_log {
        volumes.push(json!({
            "name": "selfhost-config", "hostPath": SECURITY_DIR, "mountPath": SECURITY_DIR,
            "readOnly": true, "pathType": "DirectoryOrCreate",
        }));
    }
    if sec.audit_log {
        volumes.push(json!({
            "name": "audit-log", "hostPath": AUDIT_LOG_DIR, "mountPath": AUDIT_LOG_DIR,
            "readOnly": false, "pathType": "DirectoryOrCreate",
        }));
    }
    volumes
}

/// The kubeadm patch putting `layout` (names only) on the API server pod.
pub fn manifest_patch(layout: Option<&EncryptionLayout>) -> String {
    let described = layout.map_or_else(|| "none".to_owned(), EncryptionLayout::describe);
    json!({"metadata": {"annotations": {LAYOUT_ANNOTATION: described}}}).to_string() + "\n"
}

/// What the probe saw of the API server's security on a control plane.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedSecurity {
    /// The manifest has `--encryption-provider-config`.
    pub encryption_flag: bool,
    /// The encryption file's providers ([`EncryptionLayout::describe`]'s
    /// form, read with grep: names only), empty without a file.
    pub encryption_layout: String,
    /// The manifest has `--audit-policy-file`.
    pub audit_flag: bool,
    /// The sha256 of the audit policy file, empty without one.
    pub audit_policy_sha256: String,
}

impl ObservedSecurity {
    /// Secrets are encrypted: the flag is there and a key comes first.
    pub fn encryption_on(&self) -> bool {
        self.encryption_flag && self.encryption_layout.starts_with("secretbox:key")
    }

    /// The key versions in the file, in order.
    pub fn key_versions(&self) -> Vec<u32> {
        let Some(rest) = self
            .encryption_layout
            .split(';')
            .find_map(|p| p.strip_prefix("secretbox:"))
        else {
            return Vec::new();
        };
        rest.split(',')
            .filter_map(|n| n.strip_prefix("key").and_then(|n| n.parse().ok()))
            .collect()
    }

    /// The key version the cluster is at: the only key's; during a rotation
    /// that did not finish, the oldest one's (so the plan shows the
    /// rotation again and apply finishes it).
    pub fn key_version(&self) -> Option<u32> {
        let v = self.key_versions();
        if v.len() == 1 {
            v.first().copied()
        } else {
            v.iter().min().copied()
        }
    }

    /// The audit log is on, with this provider's policy.
    pub fn audit_on(&self) -> bool {
        self.audit_flag && self.audit_policy_sha256 == audit_policy_sha256()
    }

    /// Nothing to do for `want`.
    pub fn matches(&self, want: &ApiServerSecurity) -> bool {
        let encryption = match want.encryption {
            Some(v) => self.encryption_on() && self.key_versions() == [v],
            None => !self.encryption_flag && self.encryption_layout.is_empty(),
        };
        encryption && self.audit_on() == want.audit_log && (want.audit_log || !self.audit_flag)
    }

    /// Take in one of the probe's `key=value` lines.
    pub fn read_line(&mut self, key: &str, value: &str) {
        match key {
            "apiserver_encryption" => self.encryption_flag = value == "yes",
            "apiserver_audit" => self.audit_flag = value == "yes",
            "encryption_layout" => self.encryption_layout = value.to_owned(),
            "audit_policy" => self.audit_policy_sha256 = value.to_owned(),
            _ => {}
        }
    }
}

/// The probe's lines for [`ObservedSecurity`] (control plane: no output
/// elsewhere). Prints key names only, never a secret.
pub fn probe_lines() -> String {
    format!(
        r#"if [ -e {MANIFEST} ]; then
  grep -q -- '--encryption-provider-config=' {MANIFEST} && echo apiserver_encryption=yes || echo apiserver_encryption=no
  grep -q -- '--audit-policy-file=' {MANIFEST} && echo apiserver_audit=yes || echo apiserver_audit=no
fi
if [ -e {ENCRYPTION_CONFIG} ]; then
  echo "encryption_layout=$(grep -o '"secretbox"\|"identity"\|"name":"key[0-9]*"' {ENCRYPTION_CONFIG} | tr -d '"' | awk '
    $0 == "identity" {{ out = out sep "identity"; sep = ";"; next }}
    $0 == "secretbox" {{ out = out sep "secretbox:"; sep = ";"; first = 1; next }}
    sub(/^name:/, "") {{ out = out (first ? "" : ",") $0; first = 0 }}
    END {{ print out }}')"
fi
[ -e {AUDIT_POLICY} ] && echo "audit_policy=$(sha256sum {AUDIT_POLICY} | cut -d' ' -f1)"
true
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: u32) -> EncryptionKey {
        EncryptionKey {
            version: v,
            secret: base64::engine::general_purpose::STANDARD.encode([v as u8; 32]),
        }
    }

    fn layout(identity_first: bool, versions: &[u32]) -> EncryptionLayout {
        EncryptionLayout {
            identity_first,
            keys: versions.iter().map(|v| key(*v)).collect(),
        }
    }

    fn steps(current: Option<&EncryptionLayout>, want: Option<u32>) -> Vec<EncryptionStep> {
        encryption_steps(current, want, |v| Ok::<_, ()>(key(v))).expect("steps")
    }

    #[test]
    fn the_file_round_trips_and_foreign_files_are_refused_without_their_text() {
        for l in [layout(false, &[3, 2]), layout(true, &[1])] {
            assert_eq!(EncryptionLayout::parse(&l.render()), Ok(l.clone()));
        }
        assert_eq!(layout(false, &[3, 2]).describe(), "secretbox:key3,key2;identity");
        assert_eq!(layout(true, &[1]).describe(), "identity;secretbox:key1");
        let aescbc = r#"{"resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"k","secret":"c2VjcmV0"}]}}]}]}"#;
        let e = EncryptionLayout::parse(aescbc).expect_err("foreign");
        assert!(!e.contains("c2VjcmV0"), "{e}");
        assert!(EncryptionLayout::parse("not json c2VjcmV0").is_err_and(|e| !e.contains("c2VjcmV0")));
        assert!(!format!("{:?}", key(7)).contains(&key(7).secret));
        let generated = EncryptionKey::generate(4).expect("random");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&generated.secret)
                .map(|b| b.len()),
            Ok(32)
        );
        assert_ne!(generated, EncryptionKey::generate(4).expect("random"));
    }

    #[test]
    fn turning_on_rotating_and_off_follow_the_documented_order() {
        use EncryptionStep::*;
        assert_eq!(steps(None, None), []);
        assert_eq!(
            steps(None, Some(1)),
            [Write(layout(false, &[1])), Reload { flag: true }, RewriteSecrets]
        );
        assert_eq!(steps(Some(&layout(false, &[1])), Some(1)), []);
        assert_eq!(
            steps(Some(&layout(false, &[1])), Some(2)),
            [
                Write(layout(false, &[2, 1])),
                Reload { flag: true },
                RewriteSecrets,
                Write(layout(false, &[2])),
                Reload { flag: true },
            ]
        );
        // interrupted after the rewrite: the old key is still listed
        assert_eq!(
            steps(Some(&layout(false, &[2, 1])), Some(2)),
            [
                Reload { flag: true },
                RewriteSecrets,
                Write(layout(false, &[2])),
                Reload { flag: true },
            ]
        );
        assert_eq!(
            steps(Some(&layout(false, &[2])), None),
            [
                Write(layout(true, &[2])),
                Reload { flag: true },
                RewriteSecrets,
                Reload { flag: false },
                Remove,
            ]
        );
        // turned on again half-way through turning off: the key is kept
        assert_eq!(steps(Some(&layout(true, &[2])), Some(2))[0], Write(layout(false, &[2])));
    }

    #[test]
    fn observed_settings_read_from_the_probe() {
        let mut o = ObservedSecurity::default();
        for (k, v) in [
            ("apiserver_encryption", "yes"),
            ("apiserver_audit", "yes"),
            ("encryption_layout", "secretbox:key3,key2;identity"),
            ("audit_policy", audit_policy_sha256().as_str()),
        ] {
            o.read_line(k, v);
        }
        assert!(o.encryption_on() && o.audit_on());
        assert_eq!((o.key_versions(), o.key_version()), (vec![3, 2], Some(2)));
        let want = ApiServerSecurity {
            encryption: Some(3),
            audit_log: true,
        };
        assert!(!o.matches(&want), "rotation not finished");
        o.encryption_layout = "secretbox:key3;identity".into();
        assert!(o.matches(&want));
        o.audit_policy_sha256 = "0".repeat(64);
        assert!(!o.audit_on() && !o.matches(&want), "policy changed by hand");
        o.encryption_layout = "identity;secretbox:key3".into();
        assert!(!o.encryption_on());
    }

    #[test]
    fn the_probe_prints_the_layout_as_describe_does() {
        let dir = std::env::temp_dir().join(format!("selfhost-apiserver-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        for l in [layout(false, &[3, 2, 1]), layout(false, &[1]), layout(true, &[4, 2])] {
            let file = dir.join("enc.json");
            std::fs::write(&file, l.render()).expect("write");
            let script = probe_lines().replace(ENCRYPTION_CONFIG, &file.to_string_lossy());
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .expect("sh");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.lines()
                    .any(|line| line == format!("encryption_layout={}", l.describe())),
                "{text}"
            );
            assert!(!text.contains(&l.keys[0].secret));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn flags_and_volumes_follow_the_settings() {
        let off = ApiServerSecurity::default();
        assert!(extra_args(&off).is_empty() && extra_volumes(&off).is_empty());
        let on = ApiServerSecurity {
            encryption: Some(1),
            audit_log: true,
        };
        let names: Vec<&str> = extra_args(&on).iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "encryption-provider-config",
                "audit-policy-file",
                "audit-log-path",
                "audit-log-maxsize",
                "audit-log-maxbackup"
            ]
        );
        assert_eq!(extra_volumes(&on).len(), 2);
        let policy: Value = serde_json::from_str(&audit_policy()).expect("json");
        assert_eq!(policy["rules"][2]["level"], "Metadata");
        assert_eq!(policy["rules"][2]["resources"][0]["resources"][0], "secrets");
        assert_eq!(
            manifest_patch(Some(&layout(false, &[2]))),
            "{\"metadata\":{\"annotations\":{\"selfhost.dev/encryption-layout\":\"secretbox:key2;identity\"}}}\n"
        );
    }
}
