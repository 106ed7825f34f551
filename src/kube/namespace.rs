//! A namespace the cluster resource provides: the Namespace, its
//! ResourceQuota and its LimitRange, rendered and read back. Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::drift::quantity;
use super::objects::ownership_labels;

/// The ResourceQuota the provider writes in each namespace.
pub const QUOTA_NAME: &str = "selfhost-quota";
/// The LimitRange the provider writes in each namespace.
pub const LIMITS_NAME: &str = "selfhost-limits";
const RESOURCE: &str = "k8s_cluster";

/// What a `namespace {}` block asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceSpec {
    /// The namespace's name.
    pub name: String,
    /// Labels put on the namespace, besides the provider's ownership labels.
    pub labels: BTreeMap<String, String>,
    /// ResourceQuota hard limits (e.g. `requests.cpu` → "4"); no quota when empty.
    pub quota: BTreeMap<String, String>,
    /// LimitRange default requests for containers that set none (e.g. `memory` → "128Mi").
    pub default_request: BTreeMap<String, String>,
    /// LimitRange default limits for containers that set none.
    pub default_limit: BTreeMap<String, String>,
    /// The Pod Security Admission labels ([`super::pod_security::labels`]).
    pub pod_security: BTreeMap<String, String>,
}

fn quantities(m: &BTreeMap<String, String>) -> BTreeMap<String, Quantity> {
    m.iter().map(|(k, v)| (k.clone(), Quantity(v.clone()))).collect()
}

fn meta(name: &str, namespace: Option<&str>, extra: &BTreeMap<String, String>) -> ObjectMeta {
    let mut labels = ownership_labels(RESOURCE);
    labels.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

impl NamespaceSpec {
    /// The Namespace object, with the provider's ownership labels.
    pub fn namespace(&self) -> Namespace {
        let mut labels = self.labels.clone();
        labels.extend(self.pod_security.iter().map(|(k, v)| (k.clone(), v.clone())));
        Namespace {
            metadata: meta(&self.name, None, &labels),
            ..Namespace::default()
        }
    }

    /// The ResourceQuota, `None` when no quota is asked for.
    pub fn quota(&self) -> Option<ResourceQuota> {
        (!self.quota.is_empty()).then(|| ResourceQuota {
            metadata: meta(QUOTA_NAME, Some(&self.name), &BTreeMap::new()),
            spec: Some(ResourceQuotaSpec {
                hard: Some(quantities(&self.quota)),
                ..ResourceQuotaSpec::default()
            }),
            ..ResourceQuota::default()
        })
    }

    /// The LimitRange, `None` when no container default is asked for.
    pub fn limit_range(&self) -> Option<LimitRange> {
        if self.default_request.is_empty() && self.default_limit.is_empty() {
            return None;
        }
        let opt = |m: &BTreeMap<String, String>| (!m.is_empty()).then(|| quantities(m));
        Some(LimitRange {
            metadata: meta(LIMITS_NAME, Some(&self.name), &BTreeMap::new()),
            spec: Some(LimitRangeSpec {
                limits: vec![LimitRangeItem {
                    type_: "Container".to_owned(),
                    default: opt(&self.default_limit),
                    default_request: opt(&self.default_request),
                    ..LimitRangeItem::default()
                }],
            }),
        })
    }
}

/// The namespace as found, in the terms of `like` (the state it is
/// compared with): only the label keys `like` has are read (others belong
/// to someone else), and a quantity equal in value to the one in `like`
/// keeps `like`'s spelling (the API server stores "1000m" as "1").
pub fn observe(
    like: &NamespaceSpec,
    ns: &Namespace,
    quota: Option<&ResourceQuota>,
    limits: Option<&LimitRange>,
) -> NamespaceSpec {
    let labels = ns.metadata.labels.clone().unwrap_or_default();
    let same_spelling = |found: BTreeMap<String, Quantity>, like: &BTreeMap<String, String>| {
        found
            .into_iter()
            .map(|(k, Quantity(v))| {
                let kept = like
                    .get(&k)
                    .filter(|l| quantity(l).is_some() && quantity(l) == quantity(&v))
                    .cloned();
                (k, kept.unwrap_or(v))
            })
            .collect::<BTreeMap<_, _>>()
    };
    let item = limits
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.limits.iter().find(|i| i.type_ == "Container"));
    NamespaceSpec {
        name: like.name.clone(),
        labels: like
            .labels
            .keys()
            .filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
            .collect(),
        quota: same_spelling(
            quota
                .and_then(|q| q.spec.as_ref())
                .and_then(|s| s.hard.clone())
                .unwrap_or_default(),
            &like.quota,
        ),
        default_request: same_spelling(
            item.and_then(|i| i.default_request.clone()).unwrap_or_default(),
            &like.default_request,
        ),
        default_limit: same_spelling(
            item.and_then(|i| i.default.clone()).unwrap_or_default(),
            &like.default_limit,
        ),
        pod_security: super::pod_security::labels_in(&labels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NamespaceSpec {
        NamespaceSpec {
            name: "agents".into(),
            labels: [("team".to_string(), "a".to_string())].into(),
            quota: [
                ("cpu".to_string(), "1000m".to_string()),
                ("pods".to_string(), "10".to_string()),
            ]
            .into(),
            default_request: [("cpu".to_string(), "100m".to_string())].into(),
            default_limit: BTreeMap::new(),
            pod_security: super::super::pod_security::labels(
                super::super::pod_security::Level::Restricted,
                Some("v1.36"),
            ),
        }
    }

    #[test]
    fn objects_carry_ownership_and_only_what_is_asked() {
        let s = spec();
        let ns = s.namespace();
        let labels = ns.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(
            labels.get("pod-security.kubernetes.io/enforce").map(String::as_str),
            Some("restricted")
        );
        assert!(labels.contains_key(super::super::objects::MANAGED_BY));
        assert!(s.quota().is_some());
        let lr = s.limit_range().expect("limits");
        let item = &lr.spec.expect("spec").limits[0];
        assert!(item.default.is_none());
        assert_eq!(item.default_request.as_ref().map(|m| m.len()), Some(1));
        assert!(NamespaceSpec::default().quota().is_none());
        assert!(NamespaceSpec::default().limit_range().is_none());
    }

    #[test]
    fn reading_back_ignores_others_labels_and_quantity_spelling() {
        let s = spec();
        let mut ns = s.namespace();
        if let Some(l) = ns.metadata.labels.as_mut() {
            l.insert("kubernetes.io/metadata.name".into(), "agents".into());
        }
        let mut quota = s.quota().expect("quota");
        if let Some(hard) = quota.spec.as_mut().and_then(|sp| sp.hard.as_mut()) {
            hard.insert("cpu".into(), Quantity("1".into())); // canonical form of 1000m
        }
        let lr = s.limit_range();
        assert_eq!(observe(&s, &ns, Some(&quota), lr.as_ref()), s);
        // A changed quota is drift.
        if let Some(hard) = quota.spec.as_mut().and_then(|sp| sp.hard.as_mut()) {
            hard.insert("pods".into(), Quantity("99".into()));
        }
        let seen = observe(&s, &ns, Some(&quota), None);
        assert_eq!(seen.quota.get("pods").map(String::as_str), Some("99"));
        assert!(seen.default_request.is_empty());
    }
}
