//! A list of objects of any kind applied as one unit (what `kubectl apply
//! -f manifest.yaml` does for an add-on): each object rendered typed, then
//! held as a [`DynamicObject`] with the API resource it belongs to, so one
//! list can mix Deployments, ClusterRoles and kinds `k8s-openapi` has no
//! type for (an `APIService`).

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde::Serialize;

use super::client::{Kube, Redacted};
use super::{Deadline, FIELD_MANAGER, KubeError};

/// One object of a manifest.
#[derive(Clone, Debug)]
pub struct Item {
    /// Its API resource (group, version, kind, plural).
    pub resource: ApiResource,
    /// Whether the kind is namespaced.
    pub namespaced: bool,
    /// The object as applied (apiVersion, kind, metadata, the rest).
    pub object: DynamicObject,
}

impl Item {
    /// A typed object (it must carry its name, and its namespace when the
    /// kind is namespaced).
    ///
    /// # Errors
    /// When the object does not serialise (a bug in the provider).
    pub fn of<K>(obj: &K) -> Result<Item, KubeError>
    where
        K: kube::Resource<DynamicType = ()> + Serialize,
        K::Scope: ScopeKind,
    {
        let resource = ApiResource::erase::<K>(&());
        let mut body = serde_json::to_value(obj).map_err(|e| KubeError::Unexpected {
            what: format!("rendering a {}", resource.kind),
            message: e.to_string(),
        })?;
        if let Some(map) = body.as_object_mut() {
            map.insert("apiVersion".into(), resource.api_version.clone().into());
            map.insert("kind".into(), resource.kind.clone().into());
        }
        Self::raw(resource, K::Scope::NAMESPACED, body)
    }

    /// An object of a kind without a Rust type: `group/version`, `kind`,
    /// its `plural`, and its JSON body (apiVersion and kind are set here).
    ///
    /// # Errors
    /// When the body is not an object with metadata.
    pub fn untyped(
        group_version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
        mut body: serde_json::Value,
    ) -> Result<Item, KubeError> {
        let (group, version) = group_version.split_once('/').unwrap_or(("", group_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
        if let Some(map) = body.as_object_mut() {
            map.insert("apiVersion".into(), resource.api_version.clone().into());
            map.insert("kind".into(), resource.kind.clone().into());
        }
        Self::raw(resource, namespaced, body)
    }

    fn raw(resource: ApiResource, namespaced: bool, body: serde_json::Value) -> Result<Item, KubeError> {
        let object: DynamicObject = serde_json::from_value(body).map_err(|e| KubeError::Unexpected {
            what: format!("rendering a {}", resource.kind),
            message: e.to_string(),
        })?;
        if object.metadata.name.is_none() || (namespaced && object.metadata.namespace.is_none()) {
            return Err(KubeError::Unexpected {
                what: format!("rendering a {}", resource.kind),
                message: "the object has no name or namespace (a bug in the provider)".to_owned(),
            });
        }
        Ok(Item {
            resource,
            namespaced,
            object,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or_default()
    }

    /// Its namespace (`None` for a cluster-scoped kind).
    pub fn namespace(&self) -> Option<&str> {
        if self.namespaced {
            self.object.metadata.namespace.as_deref()
        } else {
            None
        }
    }

    /// "Deployment selfhost-ingress/traefik", "ClusterRole traefik".
    pub fn describe(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{} {ns}/{}", self.resource.kind, self.name()),
            None => format!("{} {}", self.resource.kind, self.name()),
        }
    }

    /// The object as JSON (what drift is judged against).
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(&self.object).unwrap_or_default()
    }
}

/// Whether a `k8s-openapi` scope is namespaced.
pub trait ScopeKind {
    /// True for namespaced kinds.
    const NAMESPACED: bool;
}

impl ScopeKind for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl ScopeKind for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

impl Kube {
    fn item_api(&self, item: &Item) -> Api<DynamicObject> {
        match item.namespace() {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &item.resource),
            None => Api::all_with(self.client.clone(), &item.resource),
        }
    }

    /// Server-side apply of `item` under this provider's field manager
    /// (taking over fields another manager changed).
    ///
    /// # Errors
    /// As [`Kube::apply`].
    pub async fn apply_item(&self, item: &Item, dl: &Deadline) -> Result<DynamicObject, KubeError> {
        let what = format!("apply of {}", item.describe());
        tracing::debug!(operation = %what, field_manager = FIELD_MANAGER, "server-side apply");
        let api = self.item_api(item);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let body = item.json();
        let patch = Patch::Apply(Redacted(&body));
        let name = item.name();
        self.retrying(&what, dl, || api.patch(name, &params, &patch)).await
    }

    /// The object as the API server has it, `None` when it does not exist.
    ///
    /// # Errors
    /// As [`Kube::get`].
    pub async fn get_item(&self, item: &Item, dl: &Deadline) -> Result<Option<DynamicObject>, KubeError> {
        let what = format!("read of {}", item.describe());
        let api = self.item_api(item);
        let name = item.name();
        self.retrying(&what, dl, || api.get_opt(name)).await
    }

    /// Delete `item` and wait until it is gone; gone already is success.
    ///
    /// # Errors
    /// As [`Kube::delete_and_wait`].
    pub async fn delete_item_and_wait(&self, item: &Item, dl: &Deadline) -> Result<(), KubeError> {
        let what = format!("delete of {}", item.describe());
        self.delete_and_wait_in(self.item_api(item), item.name(), what, DeleteParams::background(), dl)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::ClusterRole;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: ns.map(str::to_owned),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn typed_objects_keep_their_kind_and_scope() {
        let sa = Item::of(&ServiceAccount {
            metadata: meta("traefik", Some("ingress")),
            ..ServiceAccount::default()
        })
        .expect("renders");
        assert_eq!(sa.describe(), "ServiceAccount ingress/traefik");
        assert_eq!(sa.json()["apiVersion"], "v1");
        let role = Item::of(&ClusterRole {
            metadata: meta("traefik", None),
            ..ClusterRole::default()
        })
        .expect("renders");
        assert_eq!(role.describe(), "ClusterRole traefik");
        assert_eq!(role.json()["apiVersion"], "rbac.authorization.k8s.io/v1");
        assert_eq!(role.resource.plural, "clusterroles");
    }

    #[test]
    fn untyped_objects_need_a_name_and_their_namespace() {
        let ok = Item::untyped(
            "apiregistration.k8s.io/v1",
            "APIService",
            "apiservices",
            false,
            serde_json::json!({"metadata": {"name": "v1beta1.metrics.k8s.io"}, "spec": {"group": "metrics.k8s.io"}}),
        )
        .expect("renders");
        assert_eq!(ok.json()["kind"], "APIService");
        assert_eq!(ok.json()["spec"]["group"], "metrics.k8s.io");
        assert!(Item::of(&ServiceAccount::default()).is_err(), "no name");
        assert!(
            Item::of(&ServiceAccount {
                metadata: meta("x", None),
                ..ServiceAccount::default()
            })
            .is_err(),
            "namespaced without a namespace"
        );
    }
}
