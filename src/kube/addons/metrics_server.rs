//! metrics-server, so `kubectl top` works and HorizontalPodAutoscalers get
//! numbers: the objects of its release manifest at v0.8.0
//! (`manifests/overlays/release`: RBAC, Service, Deployment, APIService).
//!
//! Two differences. It tolerates the control plane's taint, so a cluster
//! of one node gets metrics too. And, said in the docs: it is run with `--kubelet-insecure-tls`
//! because kubeadm's kubelets serve a self-signed certificate that no CA
//! the cluster has can verify (the alternative, kubelet serving
//! certificates signed by the cluster CA, needs CSR approval this provider
//! does not do yet). The connection is still TLS and metrics-server
//! authenticates to the kubelet with its ServiceAccount.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, Volume,
    VolumeMount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::rbac::{role_ref, rule, service_account, strings as own};
use super::{Addon, control_plane_toleration, labels_with};
use crate::kube::KubeError;
use crate::kube::manifest::Item;

/// The attribute that turns it on.
pub const ADDON: &str = "metrics_server";
/// The pinned release.
pub const VERSION: &str = "v0.8.0";
/// Its image at [`VERSION`].
pub const IMAGE: &str = "registry.k8s.io/metrics-server/metrics-server:v0.8.0";
const NAME: &str = "metrics-server";
const NAMESPACE: &str = "kube-system";
const APP: (&str, &str) = ("k8s-app", "metrics-server");

fn meta(name: &str, namespaced: bool) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespaced.then(|| NAMESPACE.to_owned()),
        labels: Some(labels_with(ADDON, &[APP])),
        ..ObjectMeta::default()
    }
}

fn probe(path: &str, initial_delay: Option<i32>) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("https".to_owned()),
            scheme: Some("HTTPS".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(10),
        failure_threshold: Some(3),
        initial_delay_seconds: initial_delay,
        ..Probe::default()
    }
}

fn deployment() -> Deployment {
    let container = Container {
        name: NAME.to_owned(),
        image: Some(IMAGE.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(own(&[
            "--cert-dir=/tmp",
            "--secure-port=10250",
            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
            "--kubelet-use-node-status-port",
            "--metric-resolution=15s",
            "--kubelet-insecure-tls",
        ])),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("100m".to_owned())),
                ("memory".to_owned(), Quantity("200Mi".to_owned())),
            ])),
            ..ResourceRequirements::default()
        }),
        ports: Some(vec![ContainerPort {
            name: Some("https".to_owned()),
            container_port: 10250,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(probe("/readyz", Some(20))),
        liveness_probe: Some(probe("/livez", None)),
        security_context: Some(SecurityContext {
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(1000),
            allow_privilege_escalation: Some(false),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            capabilities: Some(Capabilities {
                drop: Some(own(&["ALL"])),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp-dir".to_owned(),
            mount_path: "/tmp".to_owned(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    Deployment {
        metadata: meta(NAME, true),
        spec: Some(DeploymentSpec {
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([(APP.0.to_owned(), APP.1.to_owned())])),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: None,
                }),
                type_: None,
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels_with(ADDON, &[APP])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(NAME.to_owned()),
                    volumes: Some(vec![Volume {
                        name: "tmp-dir".to_owned(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Volume::default()
                    }]),
                    priority_class_name: Some("system-cluster-critical".to_owned()),
                    // not in upstream's manifest: a cluster of one node (no
                    // worker yet) must get metrics too
                    tolerations: Some(vec![control_plane_toleration()]),
                    containers: vec![container],
                    node_selector: Some(BTreeMap::from([("kubernetes.io/os".to_owned(), "linux".to_owned())])),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The add-on's objects.
///
/// # Errors
/// Only on a rendering bug.
pub fn render() -> Result<Addon, KubeError> {
    let mut reader = ClusterRole {
        metadata: meta("system:aggregated-metrics-reader", false),
        rules: Some(vec![rule(
            &["metrics.k8s.io"],
            &["pods", "nodes"],
            &["get", "list", "watch"],
        )]),
        ..ClusterRole::default()
    };
    if let Some(l) = reader.metadata.labels.as_mut() {
        for verb in ["view", "edit", "admin"] {
            l.insert(
                format!("rbac.authorization.k8s.io/aggregate-to-{verb}"),
                "true".to_owned(),
            );
        }
    }
    let server_role = ClusterRole {
        metadata: meta("system:metrics-server", false),
        rules: Some(vec![
            rule(&[""], &["nodes/metrics"], &["get"]),
            rule(&[""], &["pods", "nodes"], &["get", "list", "watch"]),
        ]),
        ..ClusterRole::default()
    };
    let auth_reader = RoleBinding {
        metadata: meta("metrics-server-auth-reader", true),
        role_ref: role_ref("Role", "extension-apiserver-authentication-reader"),
        subjects: service_account(NAMESPACE, NAME),
    };
    let delegator = ClusterRoleBinding {
        metadata: meta("metrics-server:system:auth-delegator", false),
        role_ref: role_ref("ClusterRole", "system:auth-delegator"),
        subjects: service_account(NAMESPACE, NAME),
    };
    let server_binding = ClusterRoleBinding {
        metadata: meta("system:metrics-server", false),
        role_ref: role_ref("ClusterRole", "system:metrics-server"),
        subjects: service_account(NAMESPACE, NAME),
    };
    let service = Service {
        metadata: meta(NAME, true),
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([(APP.0.to_owned(), APP.1.to_owned())])),
            ports: Some(vec![ServicePort {
                name: Some("https".to_owned()),
                port: 443,
                protocol: Some("TCP".to_owned()),
                target_port: Some(IntOrString::String("https".to_owned())),
                app_protocol: Some("https".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    let api_service = Item::untyped(
        "apiregistration.k8s.io/v1",
        "APIService",
        "apiservices",
        false,
        serde_json::json!({
            "metadata": {"name": "v1beta1.metrics.k8s.io", "labels": labels_with(ADDON, &[APP])},
            "spec": {
                "service": {"name": NAME, "namespace": NAMESPACE},
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "insecureSkipTLSVerify": true,
                "groupPriorityMinimum": 100,
                "versionPriority": 100
            }
        }),
    )?;
    Ok(Addon {
        name: ADDON,
        objects: vec![
            Item::of(&ServiceAccount {
                metadata: meta(NAME, true),
                ..ServiceAccount::default()
            })?,
            Item::of(&reader)?,
            Item::of(&server_role)?,
            Item::of(&auth_reader)?,
            Item::of(&delegator)?,
            Item::of(&server_binding)?,
            Item::of(&service)?,
            Item::of(&deployment())?,
            api_service,
        ],
        workload: 7,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_manifests_objects_at_the_pinned_image() {
        let a = render().expect("renders");
        let names: Vec<String> = a.objects.iter().map(Item::describe).collect();
        assert_eq!(
            names,
            [
                "ServiceAccount kube-system/metrics-server",
                "ClusterRole system:aggregated-metrics-reader",
                "ClusterRole system:metrics-server",
                "RoleBinding kube-system/metrics-server-auth-reader",
                "ClusterRoleBinding metrics-server:system:auth-delegator",
                "ClusterRoleBinding system:metrics-server",
                "Service kube-system/metrics-server",
                "Deployment kube-system/metrics-server",
                "APIService v1beta1.metrics.k8s.io"
            ]
        );
        let d = a.workload().expect("workload").json();
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], IMAGE);
        assert_eq!(c["securityContext"]["runAsNonRoot"], true);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
        let reader = a.objects[1].json();
        assert_eq!(
            reader["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"],
            "true"
        );
        // the metrics API may only read
        for r in reader["rules"].as_array().expect("rules") {
            assert_eq!(r["verbs"], serde_json::json!(["get", "list", "watch"]));
        }
    }
}
