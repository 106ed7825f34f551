//! NetworkPolicy enforcement: kube-network-policies, the Kubernetes
//! network SIG's own enforcer (nftables + nfqueue), as its `install.yaml`
//! at v0.8.0 has it: a privileged hostNetwork DaemonSet in kube-system
//! with list/watch on pods, namespaces and NetworkPolicies.

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, HostPathVolumeSource, ObjectFieldSelector, PodSpec, PodTemplateSpec,
    ResourceRequirements, SecurityContext, ServiceAccount, Toleration, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

use super::rbac::{role_ref, rule, service_account};
use super::{Addon, labels, labels_with};
use crate::kube::KubeError;
use crate::kube::manifest::Item;

/// The attribute that turns it on.
pub const ADDON: &str = "network_policy_enforcement";
/// The pinned release.
pub const VERSION: &str = "v0.8.0";
/// Its image at [`VERSION`].
pub const IMAGE: &str = "registry.k8s.io/networking/kube-network-policies:v0.8.0";
const NAME: &str = "kube-network-policies";
const NAMESPACE: &str = "kube-system";
/// The netfilter queue it reads packets from (upstream's value).
const NFQUEUE_ID: &str = "98";

fn meta(namespaced: bool, extra: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(NAME.to_owned()),
        namespace: namespaced.then(|| NAMESPACE.to_owned()),
        labels: Some(if extra.is_empty() {
            labels(ADDON)
        } else {
            labels_with(ADDON, extra)
        }),
        ..ObjectMeta::default()
    }
}

fn host_path(name: &str, path: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        host_path: Some(HostPathVolumeSource {
            path: path.to_owned(),
            type_: None,
        }),
        ..Volume::default()
    }
}

/// The add-on's objects.
///
/// # Errors
/// Only on a rendering bug.
pub fn render() -> Result<Addon, KubeError> {
    let pod_labels = [
        ("app", "kube-network-policies"),
        ("k8s-app", "kube-network-policies"),
        ("tier", "node"),
    ];
    let role = ClusterRole {
        metadata: meta(false, &[]),
        rules: Some(vec![
            rule(&[""], &["pods", "namespaces"], &["list", "watch"]),
            rule(&["networking.k8s.io"], &["networkpolicies"], &["list", "watch"]),
        ]),
        ..ClusterRole::default()
    };
    let binding = ClusterRoleBinding {
        metadata: meta(false, &[]),
        role_ref: role_ref("ClusterRole", NAME),
        subjects: service_account(NAMESPACE, NAME),
    };
    let account = ServiceAccount {
        metadata: meta(true, &[]),
        ..ServiceAccount::default()
    };
    let container = Container {
        name: NAME.to_owned(),
        image: Some(IMAGE.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(
            [
                "/bin/netpol",
                "--hostname-override=$(MY_NODE_NAME)",
                "--v=2",
                &format!("--nfqueue-id={NFQUEUE_ID}"),
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        ),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "nri-plugin".to_owned(),
                mount_path: "/var/run/nri".to_owned(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "netns".to_owned(),
                mount_path: "/var/run/netns".to_owned(),
                mount_propagation: Some("HostToContainer".to_owned()),
                ..VolumeMount::default()
            },
        ]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("100m".to_owned())),
                ("memory".to_owned(), Quantity("50Mi".to_owned())),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            privileged: Some(true),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_ADMIN".to_owned()]),
                drop: None,
            }),
            ..SecurityContext::default()
        }),
        env: Some(vec![EnvVar {
            name: "MY_NODE_NAME".to_owned(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "spec.nodeName".to_owned(),
                    api_version: None,
                }),
                ..EnvVarSource::default()
            }),
            value: None,
        }]),
        ..Container::default()
    };
    let selector: BTreeMap<String, String> = BTreeMap::from([("app".to_owned(), NAME.to_owned())]);
    let daemon_set = DaemonSet {
        metadata: meta(true, &pod_labels),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels_with(ADDON, &pod_labels)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    host_network: Some(true),
                    dns_policy: Some("ClusterFirst".to_owned()),
                    node_selector: Some(BTreeMap::from([("kubernetes.io/os".to_owned(), "linux".to_owned())])),
                    tolerations: Some(vec![Toleration {
                        operator: Some("Exists".to_owned()),
                        effect: Some("NoSchedule".to_owned()),
                        ..Toleration::default()
                    }]),
                    service_account_name: Some(NAME.to_owned()),
                    containers: vec![container],
                    volumes: Some(vec![
                        host_path("nri-plugin", "/var/run/nri"),
                        host_path("netns", "/var/run/netns"),
                    ]),
                    ..PodSpec::default()
                }),
            },
            ..DaemonSetSpec::default()
        }),
        ..DaemonSet::default()
    };
    Ok(Addon {
        name: ADDON,
        objects: vec![
            Item::of(&role)?,
            Item::of(&binding)?,
            Item::of(&account)?,
            Item::of(&daemon_set)?,
        ],
        workload: 3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_upstreams_install_manifest_at_the_pinned_image() {
        let a = render().expect("renders");
        let names: Vec<String> = a.objects.iter().map(Item::describe).collect();
        assert_eq!(
            names,
            [
                "ClusterRole kube-network-policies",
                "ClusterRoleBinding kube-network-policies",
                "ServiceAccount kube-system/kube-network-policies",
                "DaemonSet kube-system/kube-network-policies"
            ]
        );
        let ds = a.workload().expect("workload").json();
        let pod = &ds["spec"]["template"]["spec"];
        assert_eq!(pod["hostNetwork"], true);
        assert_eq!(pod["containers"][0]["image"], IMAGE);
        assert_eq!(pod["containers"][0]["securityContext"]["privileged"], true);
        assert_eq!(pod["containers"][0]["args"][3], "--nfqueue-id=98");
        // least privilege as upstream: list/watch only, no write verbs
        let role = a.objects[0].json();
        for r in role["rules"].as_array().expect("rules") {
            assert_eq!(r["verbs"], serde_json::json!(["list", "watch"]));
        }
        assert_eq!(ds["metadata"]["labels"][super::super::ADDON_LABEL], ADDON);
    }
}
