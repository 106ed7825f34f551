//! Objects this provider writes and what it reads back from them: rendering
//! (labels, the token Secret) and drift comparison. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use super::FIELD_MANAGER;

/// The standard label naming the tool that manages an object.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Which Terraform resource type wrote the object.
pub const COMPONENT: &str = "selfhost.dev/resource";

/// Labels every object of this provider carries: who manages it and which
/// resource type wrote it (`resource`, e.g. "gateway_token").
pub fn ownership_labels(resource: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_owned(), FIELD_MANAGER.to_owned()),
        (COMPONENT.to_owned(), resource.to_owned()),
    ])
}

/// The Secret holding a gateway token at `key`, as this provider applies it
/// (only the fields it manages: other keys of the Secret are left alone).
pub fn token_secret(namespace: &str, name: &str, key: &str, token: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(ownership_labels("gateway_token")),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            key.to_owned(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// SHA-256 (hex) of the value a Secret holds at `key`; `None` when the key
/// is absent. Comparing fingerprints finds drift without handling the value.
pub fn data_fingerprint(secret: &Secret, key: &str) -> Option<String> {
    let value = secret.data.as_ref()?.get(key)?;
    Some(hex::encode(Sha256::digest(&value.0)))
}

/// Keys of the Secret's `data` that field managers other than this
/// provider own (read from `metadata.managedFields`). Destroy deletes a
/// Secret only when nobody else keeps data in it.
pub fn data_keys_owned_by_others(secret: &Secret) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for entry in secret.metadata.managed_fields.iter().flatten() {
        if entry.manager.as_deref() == Some(FIELD_MANAGER) {
            continue;
        }
        let Some(fields) = entry.fields_v1.as_ref() else {
            continue;
        };
        if let Some(data) = fields.0.get("f:data").and_then(|d| d.as_object()) {
            keys.extend(data.keys().filter_map(|k| k.strip_prefix("f:")).map(str::to_owned));
        }
    }
    keys
}

/// An apply body with nothing but the object's identity: applied under our
/// field manager, it gives up every field we owned (and the server removes
/// those nobody else owns), leaving others' fields in place.
pub fn release_body(api_version: &str, kind: &str, namespace: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": { "name": name, "namespace": namespace },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    #[test]
    fn token_secret_holds_only_managed_fields() {
        let s = token_secret("gw", "gateway-token", "token", "abc");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["data"]["token"], "YWJj", "base64 of the token");
        assert_eq!(json["metadata"]["labels"][MANAGED_BY], FIELD_MANAGER);
        assert_eq!(json["metadata"]["namespace"], "gw");
        assert!(json.get("stringData").is_none());
        assert_eq!(
            data_fingerprint(&s, "token").as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(data_fingerprint(&s, "other"), None);
    }

    fn entry(manager: &str, fields: serde_json::Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.to_owned()),
            fields_v1: Some(FieldsV1(fields)),
            ..ManagedFieldsEntry::default()
        }
    }

    #[test]
    fn keys_of_other_managers() {
        let mut s = token_secret("gw", "t", "token", "abc");
        s.metadata.managed_fields = Some(vec![
            entry(FIELD_MANAGER, serde_json::json!({"f:data": {"f:token": {}}})),
            entry(
                "kubectl-edit",
                serde_json::json!({"f:data": {"f:other": {}, "f:token": {}}}),
            ),
            entry("kube-controller-manager", serde_json::json!({"f:metadata": {}})),
        ]);
        assert_eq!(
            data_keys_owned_by_others(&s),
            BTreeSet::from(["other".to_owned(), "token".to_owned()])
        );
        s.metadata.managed_fields = None;
        assert!(data_keys_owned_by_others(&s).is_empty());
    }
}
