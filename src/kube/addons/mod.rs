//! The cluster's add-ons: the objects of each, rendered by this provider as
//! typed Kubernetes objects equivalent to the project's own install
//! manifest at the pinned version (its RBAC as upstream has it), applied
//! server-side as one unit, judged ready, drift-checked and removed.
//!
//! Rendering ([`traefik`], [`network_policies`], [`metrics_server`]) and
//! judging ([`readiness`]) are pure; [`lifecycle`] talks to the API server.

pub mod lifecycle;
pub mod metrics_server;
pub mod network_policies;
pub mod rbac;
pub mod readiness;
pub mod traefik;

use std::collections::BTreeMap;

use super::manifest::Item;
use super::objects::ownership_labels;

/// The label naming the add-on an object belongs to.
pub const ADDON_LABEL: &str = "selfhost.dev/addon";

/// One add-on: its objects in apply order, and which of them is the
/// workload whose readiness says the add-on works.
#[derive(Clone, Debug)]
pub struct Addon {
    /// The attribute that turns it on, e.g. "metrics_server".
    pub name: &'static str,
    /// Its objects, in the order they are applied (namespace and RBAC
    /// first, the workload last); removed in reverse order.
    pub objects: Vec<Item>,
    /// Index in `objects` of the Deployment or DaemonSet.
    pub workload: usize,
}

impl Addon {
    /// The Deployment or DaemonSet that runs the add-on.
    pub fn workload(&self) -> Option<&Item> {
        self.objects.get(self.workload)
    }
}

/// The labels of every object of add-on `addon`.
pub fn labels(addon: &str) -> BTreeMap<String, String> {
    let mut l = ownership_labels("k8s_cluster");
    l.insert(ADDON_LABEL.to_owned(), addon.to_owned());
    l
}

/// `labels` plus `extra` (the pod selector labels upstream uses).
pub fn labels_with(addon: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l = labels(addon);
    for (k, v) in extra {
        l.insert((*k).to_owned(), (*v).to_owned());
    }
    l
}

/// The toleration that lets a pod run on a kubeadm control plane.
pub fn control_plane_toleration() -> k8s_openapi::api::core::v1::Toleration {
    k8s_openapi::api::core::v1::Toleration {
        key: Some("node-role.kubernetes.io/control-plane".to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some("NoSchedule".to_owned()),
        ..Default::default()
    }
}
