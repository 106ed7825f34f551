//! What the Kubernetes-object resources (`selfhost_agent`,
//! `selfhost_network_policy`) share: the `kubeconfig`, `namespace`, `name`
//! and `drift` attributes, import ids, the last-applied annotation that
//! lets an import round-trip, drift lines, and diagnostics of API errors.

use serde::Serialize;

use crate::framework::codec::json;
use crate::framework::plan::null_write_only;
use crate::framework::plan_modifier::RequiresReplace;
use crate::framework::validator::Check;
use crate::framework::{Attribute, AttributePath, Block, Diagnostics, Schema, Type, Value};
use crate::kube::KubeError;
use crate::kube::drift::drift_paths;
use crate::kube::names::check_label;

/// The computed attribute listing out-of-band changes of managed fields.
pub const DRIFT: &str = "drift";

/// `kubeconfig`, `namespace`, `name`, `id` and `drift`.
pub fn common_attributes(block: Block, kind: &str) -> Block {
    block
        .attribute(
            Attribute::string("id")
                .computed()
                .description("\"namespace/name\"; also the import id."),
        )
        .attribute(
            Attribute::string("kubeconfig")
                .required()
                .sensitive()
                .description(
                    "The text of a kubeconfig (e.g. `selfhost_k8s_cluster.main.kubeconfig` or `file(\"~/.kube/config\")`); its current context is used. May be unknown until apply (a cluster created in the same apply). Sensitive.",
                ),
        )
        .attribute(
            Attribute::string("namespace")
                .required()
                .description("Namespace (must exist). Changing it creates a new object.")
                .validator(Check::values("Invalid namespace", "must be an RFC 1123 label", check_label))
                .plan_modifier(RequiresReplace),
        )
        .attribute(
            Attribute::string("name")
                .required()
                .description(&format!(
                    "Name of the {kind} (an RFC 1123 label). Changing it creates a new object."
                ))
                .validator(Check::values("Invalid name", "must be an RFC 1123 label", check_label))
                .plan_modifier(RequiresReplace),
        )
        .attribute(
            Attribute::of_type(DRIFT, Type::list(Type::String))
                .computed()
                .description(
                    "Fields this provider manages that were changed outside Terraform, as last read (\"Kind/name: field path\", or \"Kind/name: missing\"). Always planned empty: apply puts them back. Fields other writers own (status, defaults, their labels and annotations, replicas when `replicas` is unset) never count.",
                ),
        )
}

/// Parse an import id `namespace/name`.
///
/// # Errors
/// A diagnostic saying what the id must look like.
pub fn parse_import_id(id: &str) -> Result<(String, String), Diagnostics> {
    let mut d = Diagnostics::new();
    match id.split_once('/') {
        Some((ns, name)) if check_label(ns).is_ok() && check_label(name).is_ok() => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => {
            d.error(
                "Invalid import id",
                format!("The import id must be \"namespace/name\" (two RFC 1123 labels); got {id:?}."),
            );
            Err(d)
        }
    }
}

/// The kubeconfig file an import reads, as kubectl finds it: the first
/// non-empty entry of `KUBECONFIG` (a list, `:`-separated), else
/// `~/.kube/config`. `None` when neither is set.
fn kubeconfig_path(kubeconfig_env: Option<&str>, home: Option<&str>) -> Option<String> {
    kubeconfig_env
        .and_then(|v| v.split(':').map(str::trim).find(|p| !p.is_empty()))
        .map(str::to_owned)
        .or_else(|| home.filter(|h| !h.is_empty()).map(|h| format!("{h}/.kube/config")))
}

/// An import has no configuration to take `kubeconfig` from: every
/// importable Kubernetes resource reads it the way kubectl does
/// ([`kubeconfig_path`]).
pub fn import_kubeconfig() -> Result<String, Diagnostics> {
    let mut d = Diagnostics::new();
    let env = std::env::var("KUBECONFIG").ok();
    let home = std::env::var("HOME").ok();
    let Some(path) = kubeconfig_path(env.as_deref(), home.as_deref()) else {
        d.error(
            "No kubeconfig for the import",
            "An import reads the kubeconfig as kubectl does, and neither KUBECONFIG nor HOME is set: set KUBECONFIG to the kubeconfig file the resource's `kubeconfig` attribute reads (e.g. KUBECONFIG=./cluster.kubeconfig terraform import ...).",
        );
        return Err(d);
    };
    std::fs::read_to_string(&path).map_err(|e| {
        d.error(
            "No kubeconfig for the import",
            format!(
                "Could not read the kubeconfig file {path:?} ({}): {e}. Set KUBECONFIG to the file the resource's `kubeconfig` attribute reads.",
                if env.is_some() { "named by KUBECONFIG" } else { "~/.kube/config, as KUBECONFIG is not set" }
            ),
        );
        d
    })
}

/// The last-applied annotation: the state without secrets, credentials or
/// computed values (`strip` names the attributes to null; sensitive map
/// values become "" so their keys are kept).
pub fn last_applied(schema: &Schema, state: &Value, strip: &[&str], keys_only: &[&str]) -> Result<String, String> {
    let mut v = state.clone();
    null_write_only(&schema.block, &mut v);
    for a in strip {
        if let Some(slot) = v.attr_mut(a) {
            *slot = Value::Null;
        }
    }
    for a in keys_only {
        if let Some(Value::Map(m)) = v.attr_mut(a) {
            for val in m.values_mut() {
                *val = Value::from("");
            }
        }
    }
    let bytes = json::encode(&v, &schema.value_type()).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// The state an import starts from: the last-applied annotation read back.
///
/// # Errors
/// A diagnostic when the annotation is missing or unreadable (an object
/// this provider did not create).
pub fn from_last_applied(schema: &Schema, annotation: Option<&String>, what: &str) -> Result<Value, Diagnostics> {
    let mut d = Diagnostics::new();
    let Some(text) = annotation else {
        d.error(
            "Not created by this provider",
            format!(
                "{what} has no selfhost.dev/last-applied annotation, so it was not created by this provider and its configuration cannot be read back. Import only objects this provider created, or let it create them."
            ),
        );
        return Err(d);
    };
    json::decode_lenient(text.as_bytes(), &schema.value_type()).map_err(|e| {
        d.error(
            "Unreadable last-applied annotation",
            format!("The selfhost.dev/last-applied annotation of {what} is not a configuration of this resource: {e}."),
        );
        d
    })
}

/// Drift of one object: "Kind/name: path" for each managed field that
/// differs, or "Kind/name: missing" when the object is gone.
pub fn drift_lines<K: Serialize>(kind: &str, name: &str, desired: &K, live: Option<&K>) -> Vec<String> {
    let Some(live) = live else {
        return vec![format!("{kind}/{name}: missing")];
    };
    match (serde_json::to_value(desired), serde_json::to_value(live)) {
        (Ok(d), Ok(l)) => drift_paths(&d, &l)
            .into_iter()
            .map(|p| format!("{kind}/{name}: {p}"))
            .collect(),
        _ => vec![format!("{kind}/{name}: unreadable")],
    }
}

/// A diagnostic for a failed API call, at `path` when given.
pub fn diagnose(e: &KubeError, path: Option<AttributePath>, diags: &mut Diagnostics) {
    match path {
        Some(p) => diags.attribute_error(p, e.summary(), e.detail()),
        None => diags.error(e.summary(), e.detail()),
    }
}

/// Set the computed attribute `name` of `v` when it exists.
pub fn set(v: &mut Value, name: &str, to: Value) {
    if let Some(slot) = v.attr_mut(name) {
        *slot = to;
    }
}

/// `drift` as a value.
pub fn drift_value(lines: Vec<String>) -> Value {
    Value::List(lines.into_iter().map(Value::from).collect())
}

#[cfg(test)]
mod tests {

    #[test]
    fn import_finds_the_kubeconfig_as_kubectl_does() {
        assert_eq!(
            kubeconfig_path(Some(":/a/kc:/b/kc"), Some("/root")).as_deref(),
            Some("/a/kc")
        );
        assert_eq!(
            kubeconfig_path(Some(""), Some("/root")).as_deref(),
            Some("/root/.kube/config")
        );
        assert_eq!(
            kubeconfig_path(None, Some("/home/u")).as_deref(),
            Some("/home/u/.kube/config")
        );
        assert_eq!(kubeconfig_path(None, None), None);
    }

    use super::*;

    #[test]
    fn import_ids() {
        assert_eq!(
            parse_import_id("agents/research").ok(),
            Some(("agents".to_owned(), "research".to_owned()))
        );
        for bad in ["research", "a/b/c", "A/b", "/b", "a/"] {
            assert!(parse_import_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn drift_names_object_and_field() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let mk = |v: &str| ConfigMap {
            data: Some([("a".to_owned(), v.to_owned())].into()),
            ..ConfigMap::default()
        };
        assert!(drift_lines("ConfigMap", "c", &mk("1"), Some(&mk("1"))).is_empty());
        assert_eq!(
            drift_lines("ConfigMap", "c", &mk("1"), Some(&mk("2"))),
            vec!["ConfigMap/c: data.a"]
        );
        assert_eq!(
            drift_lines("ConfigMap", "c", &mk("1"), None),
            vec!["ConfigMap/c: missing"]
        );
    }
}
