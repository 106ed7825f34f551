//! Deploy credentials for one namespace (`namespace { deployer {} }`): a
//! ServiceAccount, a Role limited to the workload kinds of that namespace,
//! the RoleBinding between them, optionally a long-lived token Secret; the
//! summary of those objects that drift detection compares; the kubeconfig a
//! pipeline uses; when a short-lived token is due for renewal. Pure: no I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::objects::ownership_labels;

/// The name of the ServiceAccount, the Role and the RoleBinding.
pub const NAME: &str = "selfhost-deployer";
/// The `kubernetes.io/service-account-token` Secret of `long_lived_token`.
pub const TOKEN_SECRET: &str = "selfhost-deployer-token";
/// The key the token controller fills in that Secret.
pub const TOKEN_KEY: &str = "token";
/// The shortest `token_duration`: the API server refuses TokenRequests
/// under 10 minutes.
pub const MIN_DURATION: Duration = Duration::from_secs(10 * 60);
/// The longest `token_duration` (a year): beyond that, a long-lived token
/// says what is meant.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
const RESOURCE: &str = "k8s_cluster";

/// What a pipeline may do with each kind it deploys.
pub const VERBS: [&str; 7] = ["get", "list", "watch", "create", "update", "patch", "delete"];

/// The kinds a pipeline deploys, by API group: workloads and what they
/// need in their namespace, nothing cluster-wide, no RBAC (it cannot grant
/// itself more), no pods/exec.
const KINDS: [(&str, &[&str]); 6] = [
    ("apps", &["deployments"]),
    ("", &["services", "configmaps", "secrets"]),
    ("networking.k8s.io", &["ingresses", "networkpolicies"]),
    ("autoscaling", &["horizontalpodautoscalers"]),
    ("policy", &["poddisruptionbudgets"]),
    ("batch", &["cronjobs", "jobs"]),
];

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(ownership_labels(RESOURCE)),
        ..ObjectMeta::default()
    }
}

/// The ServiceAccount the pipeline authenticates as.
pub fn service_account(namespace: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(namespace, NAME),
        // Its token is for pipelines outside the cluster, not for pods.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// The Role's rules: [`VERBS`] on each of the workload kinds.
pub fn rules() -> Vec<PolicyRule> {
    KINDS
        .iter()
        .map(|(group, resources)| PolicyRule {
            api_groups: Some(vec![(*group).to_owned()]),
            resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
            verbs: VERBS.iter().map(|v| (*v).to_owned()).collect(),
            ..PolicyRule::default()
        })
        .collect()
}

/// The Role, in `namespace` only.
pub fn role(namespace: &str) -> Role {
    Role {
        metadata: meta(namespace, NAME),
        rules: Some(rules()),
    }
}

/// The RoleBinding of the Role to the ServiceAccount.
pub fn role_binding(namespace: &str) -> RoleBinding {
    RoleBinding {
        metadata: meta(namespace, NAME),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: NAME.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: NAME.to_owned(),
            namespace: Some(namespace.to_owned()),
            ..Subject::default()
        }]),
    }
}

/// The Secret the token controller fills with a token that never expires
/// (until the Secret or the ServiceAccount is deleted).
pub fn token_secret(namespace: &str) -> Secret {
    let mut metadata = meta(namespace, TOKEN_SECRET);
    metadata.annotations = Some(BTreeMap::from([(
        "kubernetes.io/service-account.name".to_owned(),
        NAME.to_owned(),
    )]));
    Secret {
        metadata,
        type_: Some("kubernetes.io/service-account-token".to_owned()),
        ..Secret::default()
    }
}

/// The objects as lines a plan shows (`deployer_rbac`): one per object,
/// one per Role rule, in a stable order. What is missing has no line, so a
/// deleted or edited object is a visible difference from [`expected`].
pub fn summary(sa: Option<&ServiceAccount>, role: Option<&Role>, binding: Option<&RoleBinding>) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(sa) = sa {
        lines.push(format!(
            "ServiceAccount {}",
            sa.metadata.name.as_deref().unwrap_or_default()
        ));
    }
    if let Some(role) = role {
        let name = role.metadata.name.as_deref().unwrap_or_default();
        let mut rules: Vec<String> = role
            .rules
            .iter()
            .flatten()
            .map(|r| {
                let list = |v: &Option<Vec<String>>| {
                    v.as_ref().map_or("-".to_owned(), |v| {
                        v.iter()
                            .map(|s| if s.is_empty() { "core" } else { s.as_str() })
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                };
                let mut line = format!(
                    "Role {name}: {} {} {}",
                    list(&r.api_groups),
                    list(&r.resources),
                    r.verbs.join(",")
                );
                if r.resource_names.as_ref().is_some_and(|n| !n.is_empty()) {
                    line.push_str(&format!(" names={}", list(&r.resource_names)));
                }
                line
            })
            .collect();
        rules.sort();
        if rules.is_empty() {
            lines.push(format!("Role {name}: no rules"));
        }
        lines.extend(rules);
    }
    if let Some(b) = binding {
        let subjects: Vec<String> = b
            .subjects
            .iter()
            .flatten()
            .map(|s| format!("{} {}/{}", s.kind, s.namespace.as_deref().unwrap_or_default(), s.name))
            .collect();
        lines.push(format!(
            "RoleBinding {}: {} {} to {}",
            b.metadata.name.as_deref().unwrap_or_default(),
            b.role_ref.kind,
            b.role_ref.name,
            subjects.join(", ")
        ));
    }
    lines
}

/// The summary of the objects as the provider applies them in `namespace`.
pub fn expected(namespace: &str) -> Vec<String> {
    summary(
        Some(&service_account(namespace)),
        Some(&role(namespace)),
        Some(&role_binding(namespace)),
    )
}

/// A kubeconfig for the deployer of `namespace`: the API server at
/// `server` verified with the cluster CA `ca_pem`, authenticating with
/// `token`, its context's namespace `namespace`. Every value is written as
/// a double-quoted (JSON) scalar, which YAML reads as such.
pub fn kubeconfig(server: &str, ca_pem: &str, namespace: &str, token: &str) -> String {
    use base64::Engine;
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let context = format!("{NAME}@{namespace}");
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: selfhost
  cluster:
    server: {server}
    certificate-authority-data: {ca}
contexts:
- name: {context}
  context:
    cluster: selfhost
    namespace: {namespace}
    user: {NAME}
current-context: {context}
users:
- name: {NAME}
  user:
    token: {token}
",
        server = q(server),
        ca = q(&ca),
        context = q(&context),
        namespace = q(namespace),
        token = q(token),
    )
}

/// Whether a short-lived token expiring at `expires` (Unix seconds; `None`
/// when unknown) must be replaced at `now`: when less than a third of its
/// `duration` is left, so a pipeline run between two applies still has
/// time. A long-lived token is never renewed this way.
pub fn due_for_renewal(expires: Option<i64>, duration: Duration, now: i64) -> bool {
    let Some(expires) = expires else { return true };
    let third = i64::try_from(duration.as_secs() / 3).unwrap_or(i64::MAX);
    expires.saturating_sub(now) < third
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_covers_the_workload_kinds_and_nothing_cluster_wide() {
        let r = role("apps");
        assert_eq!(r.metadata.namespace.as_deref(), Some("apps"));
        let rules = r.rules.unwrap_or_default();
        let kinds: Vec<String> = rules
            .iter()
            .flat_map(|r| r.resources.clone().unwrap_or_default())
            .collect();
        for k in [
            "deployments",
            "services",
            "configmaps",
            "secrets",
            "ingresses",
            "horizontalpodautoscalers",
            "poddisruptionbudgets",
            "networkpolicies",
            "cronjobs",
            "jobs",
        ] {
            assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
        }
        for forbidden in ["roles", "rolebindings", "pods/exec", "nodes", "namespaces", "*"] {
            assert!(!kinds.iter().any(|x| x == forbidden), "{forbidden} granted");
        }
        for rule in &rules {
            assert_eq!(rule.verbs, VERBS.map(str::to_owned).to_vec());
            assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
        }
        let b = role_binding("apps");
        assert_eq!(b.role_ref.kind, "Role");
        let subject = &b.subjects.unwrap_or_default()[0];
        assert_eq!(
            (
                subject.kind.as_str(),
                subject.name.as_str(),
                subject.namespace.as_deref()
            ),
            ("ServiceAccount", NAME, Some("apps"))
        );
        assert_eq!(service_account("apps").automount_service_account_token, Some(false));
        let s = token_secret("apps");
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/service-account-token"));
        assert!(s.data.is_none(), "the token controller fills it");
    }

    #[test]
    fn a_changed_or_missing_object_changes_the_summary() {
        let want = expected("apps");
        assert_eq!(want.len(), 2 + rules().len());
        assert!(want.contains(&"ServiceAccount selfhost-deployer".to_owned()));
        assert!(want.contains(
            &"Role selfhost-deployer: apps deployments get,list,watch,create,update,patch,delete".to_owned()
        ));
        assert!(
            want.contains(
                &"RoleBinding selfhost-deployer: Role selfhost-deployer to ServiceAccount apps/selfhost-deployer"
                    .to_owned()
            )
        );
        let (sa, mut r, b) = (service_account("apps"), role("apps"), role_binding("apps"));
        // reading back in another order is no drift
        if let Some(rules) = r.rules.as_mut() {
            rules.reverse();
        }
        assert_eq!(summary(Some(&sa), Some(&r), Some(&b)), want);
        // a verb added by hand is
        if let Some(rule) = r.rules.as_mut().and_then(|rs| rs.first_mut()) {
            rule.verbs.push("escalate".into());
        }
        assert_ne!(summary(Some(&sa), Some(&r), Some(&b)), want);
        assert_ne!(summary(Some(&sa), None, Some(&b)), want);
        assert!(summary(None, None, None).is_empty());
    }

    #[test]
    fn kubeconfig_points_at_the_cluster_with_the_token() {
        let text = kubeconfig(
            "https://10.0.0.1:6443",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "apps",
            "eyJh.eyJz.c2ln",
        );
        let parsed = kube::config::Kubeconfig::from_yaml(&text).expect("a kubeconfig");
        let cluster = parsed.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("https://10.0.0.1:6443"));
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD
            .decode(cluster.certificate_authority_data.as_deref().unwrap_or_default())
            .expect("base64");
        assert!(String::from_utf8_lossy(&ca).starts_with("-----BEGIN CERTIFICATE-----"));
        let ctx = parsed.contexts[0].context.as_ref().expect("context");
        assert_eq!(ctx.namespace.as_deref(), Some("apps"));
        assert_eq!(parsed.current_context.as_deref(), Some("selfhost-deployer@apps"));
        assert_eq!(parsed.auth_infos[0].name, NAME);
        assert!(
            parsed.auth_infos[0]
                .auth_info
                .as_ref()
                .is_some_and(|u| u.token.is_some())
        );
        assert!(text.contains("    token: \"eyJh.eyJz.c2ln\"\n"), "{text}");
    }

    #[test]
    fn renewal_is_due_in_the_last_third() {
        let day = Duration::from_secs(24 * 3600);
        let now = 1_000_000;
        assert!(!due_for_renewal(Some(now + 17 * 3600), day, now));
        assert!(due_for_renewal(Some(now + 7 * 3600), day, now));
        assert!(due_for_renewal(Some(now - 1), day, now), "expired");
        assert!(due_for_renewal(None, day, now), "unknown expiry");
        assert!(!due_for_renewal(Some(now + 600), Duration::from_secs(900), now));
    }
}
