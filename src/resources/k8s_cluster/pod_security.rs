//! `pod_security` (the cluster's, and a `namespace {}` block's override):
//! the Pod Security Admission labels each declared namespace gets, the
//! checks at validate time, the planned `pod_security_labels`, and what the
//! cluster has of them. The label rendering itself is
//! [`crate::kube::pod_security`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;

use super::model::NamespaceModel;
use super::node::error;
use crate::framework::typed::{from_value, to_value_as};
use crate::framework::{AttributePath, Diagnostic, Type, Value};
use crate::kube::pod_security::{self, Level};
use crate::kube::{Deadline, Kube, KubeError};

/// The computed attribute holding the labels as found.
pub const ATTR: &str = "pod_security_labels";

/// Namespaces the cluster and its add-ons own: a `namespace {}` block must
/// not relabel (or, when removed, delete) them.
const SYSTEM_NAMESPACES: [&str; 5] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "kube-flannel",
    crate::kube::addons::traefik::NAMESPACE,
];

/// What every namespace label map of the `pod_security_labels` type is.
fn attr_type() -> Type {
    Type::map(Type::map(Type::String))
}

/// The level of namespace `m`: its own `pod_security`, else the cluster's,
/// else "restricted". A value the validators refused reads as the default.
pub fn level_of(cluster: Option<&str>, m: &NamespaceModel) -> Level {
    m.pod_security
        .as_deref()
        .or(cluster)
        .and_then(Level::parse)
        .unwrap_or(Level::Restricted)
}

/// The admission labels of namespace `m` in a cluster of `version` whose
/// `pod_security` is `cluster`.
pub fn labels_for(version: &str, cluster: Option<&str>, m: &NamespaceModel) -> BTreeMap<String, String> {
    pod_security::labels(level_of(cluster, m), pod_security::policy_version(version).as_deref())
}

/// Validate-time checks on the configuration value (its other parts may
/// still be unknown): no admission label among a block's `labels`, no
/// namespace of the cluster's own.
pub fn check(config: &Value) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let (Value::List(blocks) | Value::Tuple(blocks)) = config.attr("namespace") else {
        return out;
    };
    for (i, b) in blocks.iter().enumerate() {
        let at = AttributePath::root("namespace").index(i as i64);
        if let Value::Map(labels) | Value::Object(labels) = b.attr("labels") {
            let reserved: Vec<&String> = labels.keys().filter(|k| pod_security::is_reserved(k)).collect();
            if !reserved.is_empty() {
                out.push(error(
                    "Reserved namespace labels",
                    format!(
                        "labels may not set {}: the Pod Security labels come from `pod_security` (on the cluster, or on this namespace block).",
                        reserved.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ")
                    ),
                    Some(at.clone().attr("labels")),
                ));
            }
        }
        if let Some(name) = b.attr("name").as_str()
            && SYSTEM_NAMESPACES.contains(&name)
        {
            out.push(error(
                "Namespace owned by the cluster",
                format!(
                    "{name:?} belongs to Kubernetes or to this resource's add-ons: a namespace block would relabel it (and delete it when removed). Declare only namespaces for workloads."
                ),
                Some(at.attr("name")),
            ));
        }
    }
    out
}

/// Plan `pod_security_labels`: what the planned namespaces ask for, or
/// unknown while a namespace or `version` is.
pub fn plan(planned: &mut Value) {
    let namespaces = from_value::<Option<Vec<NamespaceModel>>>(planned.attr("namespace"));
    let version = planned.attr("version").as_str().map(str::to_owned);
    let cluster = planned.attr("pod_security").as_str().map(str::to_owned);
    let value = match (namespaces, version) {
        (Ok(namespaces), Some(version)) if planned.attr("pod_security").is_wholly_known() => {
            let map: BTreeMap<_, _> = namespaces
                .unwrap_or_default()
                .iter()
                .map(|m| (m.name.clone(), labels_for(&version, cluster.as_deref(), m)))
                .collect();
            if map.is_empty() {
                Value::Null
            } else {
                to_value_as(&map, &attr_type()).unwrap_or_else(|_| Value::unknown())
            }
        }
        _ => Value::unknown(),
    };
    if let Some(slot) = planned.attr_mut(ATTR) {
        *slot = value;
    }
}

/// The admission labels each of `namespaces` has; a namespace that is gone
/// has no entry (the plan then shows its labels as missing).
///
/// # Errors
/// As [`Kube::get_cluster`].
pub async fn observe(
    kube: &Kube,
    namespaces: &[NamespaceModel],
    dl: &Deadline,
) -> Result<Option<BTreeMap<String, BTreeMap<String, String>>>, KubeError> {
    let mut map = BTreeMap::new();
    for m in namespaces {
        if let Some(ns) = kube.get_cluster::<Namespace>(&m.name, dl).await? {
            map.insert(
                m.name.clone(),
                pod_security::labels_in(&ns.metadata.labels.unwrap_or_default()),
            );
        }
    }
    Ok((!map.is_empty()).then_some(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str, level: Option<&str>) -> NamespaceModel {
        NamespaceModel {
            name: name.into(),
            pod_security: level.map(str::to_owned),
            ..NamespaceModel::default()
        }
    }

    #[test]
    fn a_namespace_level_overrides_the_cluster_level() {
        assert_eq!(level_of(None, &ns("a", None)), Level::Restricted);
        assert_eq!(level_of(Some("baseline"), &ns("a", None)), Level::Baseline);
        assert_eq!(
            level_of(Some("baseline"), &ns("a", Some("privileged"))),
            Level::Privileged
        );
        let l = labels_for("v1.36.3", Some("baseline"), &ns("a", None));
        assert_eq!(l["pod-security.kubernetes.io/enforce"], "baseline");
        assert_eq!(l["pod-security.kubernetes.io/warn-version"], "v1.36");
    }

    /// A value of the resource's type from JSON (missing attributes null).
    fn typed(json: serde_json::Value) -> Value {
        let v = crate::framework::typed::to_value(&json).expect("value");
        crate::framework::typed::conform(v, &super::super::schema::schema().value_type()).expect("conforms")
    }

    #[test]
    fn reserved_labels_and_system_namespaces_are_refused_at_their_attribute() {
        let v = typed(serde_json::json!({"namespace": [
            {"name": "apps", "labels": {"team": "a"}},
            {"name": "web", "labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
            {"name": "kube-system"},
        ]}));
        let d = check(&v);
        let paths: Vec<String> = d
            .iter()
            .filter_map(|e| e.attribute.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(paths, ["namespace[1].labels", "namespace[2].name"], "{d:?}");
    }

    #[test]
    fn the_plan_has_every_namespace_labels_or_unknown() {
        let mut planned = typed(serde_json::json!({
            "version": "v1.36.3",
            "pod_security": "restricted",
            "namespace": [{"name": "apps", "pod_security": "baseline"}, {"name": "jobs"}],
        }));
        plan(&mut planned);
        let got: BTreeMap<String, BTreeMap<String, String>> = from_value(planned.attr(ATTR)).expect("known");
        assert_eq!(got["apps"]["pod-security.kubernetes.io/enforce"], "baseline");
        assert_eq!(got["jobs"]["pod-security.kubernetes.io/audit"], "restricted");
        if let Some(slot) = planned.attr_mut("version") {
            *slot = Value::unknown();
        }
        plan(&mut planned);
        assert!(!planned.attr(ATTR).is_wholly_known());
        if let Some(slot) = planned.attr_mut("version") {
            *slot = Value::String("v1.36.3".into());
        }
        if let Some(slot) = planned.attr_mut("namespace") {
            *slot = Value::Null;
        }
        plan(&mut planned);
        assert!(planned.attr(ATTR).is_null());
    }
}
