//! The cluster as its API server tells it: nodes and their readiness, the
//! version, the identity, and the namespaces the resource provides.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, Namespace, Node, ResourceQuota};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::cluster::Version;
use crate::cluster::upgrade::release_of;
use crate::framework::{AttributePath, Diagnostic};
use crate::kube::namespace::{LIMITS_NAME, NamespaceSpec, QUOTA_NAME, observe};
use crate::kube::{Deadline, Kube, KubeError};

use super::model::NamespaceModel;
use super::node::error;

/// A Kubernetes failure as a diagnostic (on `path` when given).
pub fn kube_diagnostic(e: &KubeError, path: Option<AttributePath>) -> Diagnostic {
    error(e.summary(), e.detail(), path)
}

/// What the API server says of one node.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    pub ready: bool,
    pub version: String,
    /// Cordoned, and by an upgrade ([`crate::cluster::upgrade::CORDON_ANNOTATION`]).
    pub cordoned_by_upgrade: bool,
}

/// Every registered node by name.
pub async fn nodes(kube: &Kube, dl: &Deadline) -> Result<BTreeMap<String, NodeInfo>, KubeError> {
    let list = kube.list_cluster::<Node>(dl).await?;
    Ok(list
        .into_iter()
        .filter_map(|n| {
            let name = n.metadata.name.clone()?;
            let cordoned_by_upgrade = n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false)
                && n.metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(crate::cluster::upgrade::CORDON_ANNOTATION));
            let status = n.status.unwrap_or_default();
            let ready = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let version = status.node_info.map(|i| i.kubelet_version).unwrap_or_default();
            Some((
                name,
                NodeInfo {
                    ready,
                    version,
                    cordoned_by_upgrade,
                },
            ))
        })
        .collect())
}

/// Wait until every node in `names` is registered and Ready.
pub async fn wait_ready(kube: &Kube, names: &[String], dl: &Deadline) -> Result<(), KubeError> {
    let mut pause = Duration::from_secs(1);
    let mut last_waiting: Vec<String> = Vec::new();
    loop {
        let found = nodes(kube, dl).await?;
        let waiting: Vec<String> = names
            .iter()
            .filter(|n| !found.get(*n).is_some_and(|i| i.ready))
            .cloned()
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        if waiting != last_waiting {
            tracing::info!("waiting for nodes to be Ready: {}", waiting.join(", "));
            last_waiting = waiting.clone();
        }
        dl.sleep(pause, &format!("nodes {} to become Ready", waiting.join(", ")))
            .await?;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// The version the API server reports.
pub async fn server_version(kube: &Kube, dl: &Deadline) -> Result<String, KubeError> {
    kube.server_version(dl).await
}

/// Whether the control plane's own components run `target`: the API
/// server, and kube-proxy where the cluster runs it as kubeadm's DaemonSet
/// (`kubeadm upgrade apply` rolls it last, so a stopped apply shows here).
pub async fn control_plane_at(kube: &Kube, target: &Version, dl: &Deadline) -> Result<bool, KubeError> {
    let server = kube.server_version(dl).await?;
    if release_of(&server).as_ref() != Some(target) {
        return Ok(false);
    }
    let proxy = kube.get::<DaemonSet>("kube-system", "kube-proxy", dl).await?;
    let tag = format!(":{target}");
    Ok(proxy.is_none_or(|ds| {
        ds.spec.and_then(|s| s.template.spec).is_some_and(|p| {
            p.containers
                .iter()
                .all(|c| c.image.as_deref().is_some_and(|i| i.ends_with(&tag)))
        })
    }))
}

/// Wait until node `name` is Ready with its kubelet at `target`. The API
/// server may be restarting meanwhile: failed reads are retried until the
/// deadline.
pub async fn wait_node_at(kube: &Kube, name: &str, target: &Version, dl: &Deadline) -> Result<(), KubeError> {
    let mut pause = Duration::from_secs(1);
    loop {
        match nodes(kube, dl).await {
            Ok(found) => {
                if found
                    .get(name)
                    .is_some_and(|i| i.ready && release_of(&i.version).as_ref() == Some(target))
                {
                    return Ok(());
                }
            }
            Err(e) => tracing::debug!("node {name}: reading it failed, retrying: {}", e.detail()),
        }
        dl.sleep(pause, &format!("node {name} to be Ready at {target}")).await?;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// The cluster's identity: kube-system's UID.
pub async fn cluster_id(kube: &Kube, dl: &Deadline) -> Result<String, KubeError> {
    let ns = kube.get_cluster::<Namespace>("kube-system", dl).await?;
    Ok(ns.and_then(|n| n.metadata.uid).unwrap_or_default())
}

fn spec_of(m: &NamespaceModel) -> NamespaceSpec {
    NamespaceSpec {
        name: m.name.clone(),
        labels: m.labels.clone().unwrap_or_default(),
        quota: m.quota.clone().unwrap_or_default(),
        default_request: m.default_request.clone().unwrap_or_default(),
        default_limit: m.default_limit.clone().unwrap_or_default(),
        pod_security: BTreeMap::new(),
    }
}

/// Back from the spec to the model, null where the model had null and
/// the spec is empty (so an unset map stays unset).
fn model_of(s: NamespaceSpec, like: &NamespaceModel) -> NamespaceModel {
    let keep = |m: BTreeMap<String, String>, was: &Option<BTreeMap<String, String>>| {
        if m.is_empty() && was.is_none() { None } else { Some(m) }
    };
    NamespaceModel {
        name: s.name,
        labels: keep(s.labels, &like.labels),
        quota: keep(s.quota, &like.quota),
        default_request: keep(s.default_request, &like.default_request),
        default_limit: keep(s.default_limit, &like.default_limit),
        ..like.clone()
    }
}

/// Create or repair one namespace block's objects, the namespace with the
/// Pod Security labels `pod_security`; remove the quota or limits it no
/// longer asks for.
pub async fn apply_namespace(
    kube: &Kube,
    m: &NamespaceModel,
    pod_security: BTreeMap<String, String>,
    dl: &Deadline,
) -> Result<(), KubeError> {
    let s = NamespaceSpec {
        pod_security,
        ..spec_of(m)
    };
    tracing::info!("namespace {}: applying", s.name);
    kube.apply_cluster(&s.namespace(), dl).await?;
    match s.quota() {
        Some(q) => drop(kube.apply(&q, dl).await?),
        None => kube.delete_and_wait::<ResourceQuota>(&s.name, QUOTA_NAME, dl).await?,
    }
    match s.limit_range() {
        Some(l) => drop(kube.apply(&l, dl).await?),
        None => kube.delete_and_wait::<LimitRange>(&s.name, LIMITS_NAME, dl).await?,
    }
    Ok(())
}

/// Delete a namespace (and everything in it) and wait until it is gone.
pub async fn delete_namespace(kube: &Kube, name: &str, dl: &Deadline) -> Result<(), KubeError> {
    tracing::info!("namespace {name}: deleting");
    kube.delete_cluster_and_wait::<Namespace>(name, dl).await
}

/// The namespace blocks as the cluster has them; a namespace that is gone
/// is left out (the plan then creates it again).
pub async fn observe_namespaces(
    kube: &Kube,
    like: &[NamespaceModel],
    dl: &Deadline,
) -> Result<Vec<NamespaceModel>, KubeError> {
    let mut out = Vec::new();
    for m in like {
        let Some(ns) = kube.get_cluster::<Namespace>(&m.name, dl).await? else {
            continue;
        };
        if ns.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let quota = kube.get::<ResourceQuota>(&m.name, QUOTA_NAME, dl).await?;
        let limits = kube.get::<LimitRange>(&m.name, LIMITS_NAME, dl).await?;
        out.push(model_of(observe(&spec_of(m), &ns, quota.as_ref(), limits.as_ref()), m));
    }
    Ok(out)
}

/// The ConfigMap in kube-system where the resource records the settings it
/// applied (no secret among them), so `terraform import` can bring back a
/// configuration that plans empty.
pub const RECORD_NAME: &str = "selfhost-k8s-cluster";
const RECORD_NAMESPACE: &str = "kube-system";
const RECORD_KEY: &str = "settings.json";

/// Write the record (server-side apply: a changed record is repaired).
pub async fn write_record(kube: &Kube, json: &str, dl: &Deadline) -> Result<(), KubeError> {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(RECORD_NAME.to_owned()),
            namespace: Some(RECORD_NAMESPACE.to_owned()),
            labels: Some(crate::kube::objects::ownership_labels("selfhost_k8s_cluster")),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(RECORD_KEY.to_owned(), json.to_owned())])),
        ..Default::default()
    };
    kube.apply(&cm, dl).await.map(drop)
}

/// The record, if the cluster has one.
pub async fn read_record(kube: &Kube, dl: &Deadline) -> Result<Option<String>, KubeError> {
    Ok(kube
        .get::<ConfigMap>(RECORD_NAMESPACE, RECORD_NAME, dl)
        .await?
        .and_then(|cm| cm.data)
        .and_then(|mut d| d.remove(RECORD_KEY)))
}
