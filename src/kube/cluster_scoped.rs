//! Operations on cluster-scoped objects (Namespaces, Nodes), with the same
//! retries, deadlines and field manager as the namespaced ones in
//! [`super::client`].

use k8s_openapi::ClusterResourceScope;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use super::FIELD_MANAGER;
use super::client::{Deadline, Kube, Object};
use super::error::KubeError;

/// A cluster-scoped object type.
pub trait ClusterScoped: Object<ClusterResourceScope> {}

impl<K: Object<ClusterResourceScope>> ClusterScoped for K {}

/// "Namespace agents": how operations name a cluster-scoped object.
pub fn describe_cluster<K: ClusterScoped>(name: &str) -> String {
    format!("{} {name}", K::kind(&()))
}

impl Kube {
    fn cluster_api<K: ClusterScoped>(&self) -> Api<K> {
        Api::all(self.client.clone())
    }

    /// Server-side apply of a cluster-scoped object (it must carry its
    /// name) under this provider's field manager.
    ///
    /// # Errors
    /// As [`Kube::apply`].
    pub async fn apply_cluster<K: ClusterScoped>(&self, obj: &K, dl: &Deadline) -> Result<K, KubeError> {
        let Some(name) = obj.meta().name.clone() else {
            return Err(KubeError::Unexpected {
                what: format!("apply of a {}", K::kind(&())),
                message: "the object has no name (a bug in the provider)".to_owned(),
            });
        };
        let what = format!("apply of {}", describe_cluster::<K>(&name));
        let mut body = serde_json::to_value(obj).map_err(|e| KubeError::Unexpected {
            what: what.clone(),
            message: e.to_string(),
        })?;
        if let Some(map) = body.as_object_mut() {
            map.insert("apiVersion".into(), K::api_version(&()).into());
            map.insert("kind".into(), K::kind(&()).into());
        }
        tracing::debug!(operation = %what, field_manager = FIELD_MANAGER, "server-side apply");
        let api = self.cluster_api::<K>();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(body);
        self.retrying(&what, dl, || api.patch(&name, &params, &patch)).await
    }

    /// The object, or `None` when it does not exist.
    ///
    /// # Errors
    /// As [`Kube::get`].
    pub async fn get_cluster<K: ClusterScoped>(&self, name: &str, dl: &Deadline) -> Result<Option<K>, KubeError> {
        let what = format!("read of {}", describe_cluster::<K>(name));
        let api = self.cluster_api::<K>();
        self.retrying(&what, dl, || api.get_opt(name)).await
    }

    /// Every object of the type (the first page is all: used for Nodes).
    ///
    /// # Errors
    /// As [`Kube::get`].
    pub async fn list_cluster<K: ClusterScoped>(&self, dl: &Deadline) -> Result<Vec<K>, KubeError> {
        let what = format!("list of {}s", K::kind(&()));
        let api = self.cluster_api::<K>();
        let params = ListParams::default();
        let list = self.retrying(&what, dl, || api.list(&params)).await?;
        Ok(list.items)
    }

    /// Delete the object and wait until it is gone (a Namespace: until
    /// everything in it is gone). An object already gone is success.
    ///
    /// # Errors
    /// As [`Kube::delete_and_wait`].
    pub async fn delete_cluster_and_wait<K: ClusterScoped>(&self, name: &str, dl: &Deadline) -> Result<(), KubeError> {
        let what = format!("delete of {}", describe_cluster::<K>(name));
        self.delete_and_wait_in(self.cluster_api::<K>(), name, what, DeleteParams::background(), dl)
            .await
    }

    /// The API server's version (`gitVersion`, e.g. "v1.36.3").
    ///
    /// # Errors
    /// As [`Kube::get`].
    pub async fn server_version(&self, dl: &Deadline) -> Result<String, KubeError> {
        let info = self
            .retrying("read of the API server version", dl, || self.client.apiserver_version())
            .await?;
        Ok(info.git_version)
    }
}
