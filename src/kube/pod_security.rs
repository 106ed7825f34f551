//! Pod Security Admission: the level a namespace enforces, as the labels
//! the API server's built-in `PodSecurity` admission plugin reads, and the
//! rules of the "restricted" level checked on pods the provider renders.
//! Pure: no I/O.
//!
//! <https://kubernetes.io/docs/concepts/security/pod-security-admission/>

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, SecurityContext};

/// Every label the admission plugin reads starts with this.
pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

/// The three modes: refuse, warn the client, record in the audit log.
/// The provider sets all three to the same level, so a refused pod was
/// also warned about and audited.
const MODES: [&str; 3] = ["enforce", "warn", "audit"];

/// A Pod Security Standard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Hardened: non-root, no privilege escalation, every capability
    /// dropped, RuntimeDefault seccomp, only ephemeral or claimed volumes.
    Restricted,
    /// Known privilege escalations refused (host namespaces, hostPath,
    /// privileged containers), anything else allowed.
    Baseline,
    /// No restriction: for system components that need the host.
    Privileged,
}

/// The spellings of [`Level`], for the schema's validator.
pub const LEVELS: &[&str] = &[
    Level::Restricted.as_str(),
    Level::Baseline.as_str(),
    Level::Privileged.as_str(),
];

impl Level {
    /// The label value (and the attribute's spelling).
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Restricted => "restricted",
            Level::Baseline => "baseline",
            Level::Privileged => "privileged",
        }
    }

    /// The level spelled `s`, if any.
    pub fn parse(s: &str) -> Option<Level> {
        [Level::Restricted, Level::Baseline, Level::Privileged]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

/// Whether a label key is one the admission plugin reads (users may not
/// set those through `labels`: the level is `pod_security`).
pub fn is_reserved(key: &str) -> bool {
    key.starts_with(LABEL_PREFIX)
}

/// `v1.36` from `v1.36.3`: the policy version pinned in the labels, so a
/// cluster upgrade does not silently tighten the rules on running pods.
/// `None` for anything that is not `vMAJOR.MINOR[.…]`.
pub fn policy_version(release: &str) -> Option<String> {
    let rest = release.strip_prefix('v')?;
    let mut parts = rest.split('.');
    let (major, minor) = (parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(major) && digits(minor)).then(|| format!("v{major}.{minor}"))
}

/// The labels for `level` in every mode, each pinned to `version`
/// (`latest` when `None`).
pub fn labels(level: Level, version: Option<&str>) -> BTreeMap<String, String> {
    let version = version.unwrap_or("latest");
    MODES
        .iter()
        .flat_map(|mode| {
            [
                (format!("{LABEL_PREFIX}{mode}"), level.as_str().to_owned()),
                (format!("{LABEL_PREFIX}{mode}-version"), version.to_owned()),
            ]
        })
        .collect()
}

/// The admission labels among `found` (a namespace's labels as read).
pub fn labels_in(found: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    found
        .iter()
        .filter(|(k, _)| is_reserved(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Volume sources the restricted level allows.
const RESTRICTED_VOLUMES: [&str; 9] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// What makes `pod` fail the "restricted" level (empty: it passes), one
/// line per rule broken, naming the container. Mirrors the admission
/// plugin's checks for the fields the provider renders; used to prove that
/// every pod the provider creates runs in a restricted namespace.
pub fn restricted_violations(pod: &PodSpec) -> Vec<String> {
    let mut out = Vec::new();
    let psc = pod.security_context.clone().unwrap_or_default();
    for (what, on) in [
        ("hostNetwork", pod.host_network),
        ("hostPID", pod.host_pid),
        ("hostIPC", pod.host_ipc),
    ] {
        if on == Some(true) {
            out.push(format!("{what} is true"));
        }
    }
    for v in pod.volumes.iter().flatten() {
        let json = serde_json::to_value(v).unwrap_or_default();
        let kinds: Vec<&String> = json
            .as_object()
            .map(|o| o.keys().filter(|k| *k != "name").collect())
            .unwrap_or_default();
        if kinds.iter().any(|k| !RESTRICTED_VOLUMES.contains(&k.as_str())) {
            out.push(format!("volume {} is of a kind restricted refuses: {kinds:?}", v.name));
        }
    }
    if psc.run_as_user == Some(0) {
        out.push("the pod's runAsUser is 0".to_owned());
    }
    let pod_seccomp = psc.seccomp_profile.as_ref().map(|s| s.type_.as_str());
    if matches!(pod_seccomp, Some("Unconfined")) {
        out.push("the pod's seccomp profile is Unconfined".to_owned());
    }
    let containers = pod.init_containers.iter().flatten().chain(pod.containers.iter());
    for c in containers {
        out.extend(container_violations(c, psc.run_as_non_root, pod_seccomp));
    }
    out
}

fn container_violations(c: &Container, pod_non_root: Option<bool>, pod_seccomp: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let name = &c.name;
    let sc: SecurityContext = c.security_context.clone().unwrap_or_default();
    if sc.privileged == Some(true) {
        out.push(format!("container {name} is privileged"));
    }
    if sc.allow_privilege_escalation != Some(false) {
        out.push(format!("container {name} does not set allowPrivilegeEscalation=false"));
    }
    if sc.run_as_non_root.or(pod_non_root) != Some(true) {
        out.push(format!("container {name} is not runAsNonRoot=true (nor is the pod)"));
    }
    if sc.run_as_user == Some(0) {
        out.push(format!("container {name} has runAsUser 0"));
    }
    match sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()).or(pod_seccomp) {
        Some("RuntimeDefault" | "Localhost") => {}
        other => out.push(format!(
            "container {name} has seccomp profile {other:?}, not RuntimeDefault or Localhost"
        )),
    }
    let caps = sc.capabilities.unwrap_or_default();
    if !caps.drop.iter().flatten().any(|d| d == "ALL") {
        out.push(format!("container {name} does not drop ALL capabilities"));
    }
    for added in caps.add.iter().flatten().filter(|a| *a != "NET_BIND_SERVICE") {
        out.push(format!("container {name} adds capability {added}"));
    }
    for p in c.ports.iter().flatten() {
        if p.host_port.is_some_and(|h| h != 0) {
            out.push(format!("container {name} uses hostPort {:?}", p.host_port));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::backup::cronjob::{DEFAULT_IMAGE, DEFAULT_PG_DUMP_IMAGE, JobSettings, render};
    use crate::backup::spec::{BackupSpec, Destination, Retention, Source};
    use crate::kube::agent_spec::{AgentSpec, Port, Security, Storage};

    #[test]
    fn labels_set_every_mode_pinned_to_the_minor() {
        assert_eq!(policy_version("v1.36.3").as_deref(), Some("v1.36"));
        assert_eq!(policy_version("1.36.3"), None);
        assert_eq!(policy_version("v1"), None);
        let l = labels(Level::Baseline, policy_version("v1.36.3").as_deref());
        assert_eq!(l.len(), 6);
        for mode in MODES {
            assert_eq!(l[&format!("{LABEL_PREFIX}{mode}")], "baseline");
            assert_eq!(l[&format!("{LABEL_PREFIX}{mode}-version")], "v1.36");
        }
        assert!(l.keys().all(|k| is_reserved(k)));
        assert!(!is_reserved("team"));
        assert_eq!(
            labels(Level::Privileged, None)[&format!("{LABEL_PREFIX}audit-version")],
            "latest"
        );
        for s in LEVELS {
            assert_eq!(Level::parse(s).map(Level::as_str), Some(*s));
        }
        assert_eq!(Level::parse("Restricted"), None);
        let mut found = l.clone();
        found.insert("team".into(), "a".into());
        assert_eq!(labels_in(&found), l);
    }

    fn agent(storage: bool) -> AgentSpec {
        AgentSpec {
            namespace: "agents".into(),
            name: "research".into(),
            image: "example/agent:1".into(),
            replicas: Some(1),
            ports: vec![Port {
                name: "http".into(),
                port: 8080,
                protocol: "TCP".into(),
            }],
            config_files: BTreeMap::from([("a.yaml".into(), "x: 1".into())]),
            secret_env: BTreeMap::from([("KEY".into(), "v".into())]),
            storage: storage.then(|| Storage {
                size: "1Gi".into(),
                mount_path: "/data".into(),
                storage_class: None,
            }),
            ..AgentSpec::default()
        }
    }

    fn agent_pod(a: &AgentSpec) -> PodSpec {
        a.render()
            .deployment
            .spec
            .and_then(|s| s.template.spec)
            .unwrap_or_default()
    }

    /// Every pod the provider creates in a namespace the cluster declares
    /// (agents and backup jobs, whatever their options) passes the
    /// "restricted" level, the default `pod_security`.
    #[test]
    fn agent_and_backup_pods_pass_restricted() {
        for storage in [false, true] {
            let pod = agent_pod(&agent(storage));
            assert_eq!(
                restricted_violations(&pod),
                Vec::<String>::new(),
                "agent, storage={storage}"
            );
        }
        // The image's own user (run_as_user unset) is still non-root.
        let mut a = agent(false);
        a.security.run_as_user = None;
        assert_eq!(restricted_violations(&agent_pod(&a)), Vec::<String>::new());

        let job = JobSettings {
            schedule: "0 3 * * *".into(),
            time_zone: None,
            suspend: false,
            successful_jobs_history_limit: 3,
            failed_jobs_history_limit: 1,
            image: DEFAULT_IMAGE.into(),
            pg_dump_image: DEFAULT_PG_DUMP_IMAGE.into(),
            backoff_limit: 1,
        };
        let sources = [
            Source::Volume {
                agent: "research".into(),
                claim: "research-data".into(),
            },
            Source::Postgres {
                host: "db".into(),
                port: 5432,
                database: "app".into(),
                user: "app".into(),
            },
        ];
        let destinations = [
            Destination::S3 {
                endpoint: "https://s3.example.com".into(),
                bucket: "b".into(),
                prefix: String::new(),
                region: String::new(),
            },
            Destination::Volume {
                claim: "repo".into(),
                prefix: String::new(),
            },
        ];
        for source in &sources {
            for destination in &destinations {
                let spec = BackupSpec {
                    namespace: "agents".into(),
                    name: "nightly".into(),
                    source: source.clone(),
                    destination: destination.clone(),
                    retention: Retention::default(),
                };
                let pod = render(&spec, &job, &BTreeMap::new(), "{}")
                    .cronjob
                    .spec
                    .job_template
                    .spec
                    .map(|j| j.template)
                    .and_then(|t| t.spec)
                    .unwrap_or_default();
                assert!(!pod.containers.is_empty());
                assert_eq!(
                    restricted_violations(&pod),
                    Vec::<String>::new(),
                    "backup {source:?} -> {destination:?}"
                );
            }
        }
    }

    /// The checker is not vacuous: each override an agent offers breaks
    /// "restricted" (which is why the agent's docs say such an agent needs
    /// a baseline or privileged namespace).
    #[test]
    fn each_weakened_agent_setting_breaks_restricted() {
        type Weaken = fn(&mut Security);
        let cases: [(&str, Weaken); 4] = [
            ("runAsNonRoot", |s| s.run_as_non_root = false),
            ("allowPrivilegeEscalation", |s| s.allow_privilege_escalation = true),
            ("seccomp", |s| s.seccomp_runtime_default = false),
            ("ALL capabilities", |s| s.drop_all_capabilities = false),
        ];
        for (what, weaken) in cases {
            let mut a = agent(false);
            weaken(&mut a.security);
            let v = restricted_violations(&agent_pod(&a));
            assert!(v.iter().any(|m| m.contains(what)), "{what}: {v:?}");
        }
        let mut a = agent(false);
        a.security.run_as_user = Some(0);
        assert!(!restricted_violations(&agent_pod(&a)).is_empty());
        let privileged = PodSpec {
            host_network: Some(true),
            containers: vec![Container {
                name: "c".into(),
                security_context: Some(SecurityContext {
                    privileged: Some(true),
                    ..SecurityContext::default()
                }),
                ..Container::default()
            }],
            ..PodSpec::default()
        };
        let v = restricted_violations(&privileged);
        assert!(v.iter().any(|m| m.contains("hostNetwork")), "{v:?}");
        assert!(v.iter().any(|m| m.contains("privileged")), "{v:?}");
    }
}
