//! The ingress: traefik v3.6 as the cluster's default IngressClass, on one
//! node's ports 80 and 443 (host ports), HTTP redirected to HTTPS, with
//! traefik's own ACME certificate resolver (HTTP-01).
//!
//! RBAC is the one traefik's documentation gives for its Kubernetes
//! Ingress provider (read services, secrets, nodes, endpointslices,
//! ingresses and ingress classes; write ingress status). One replica on one node: the
//! open-source traefik keeps its ACME account and certificates in one file
//! per instance, so a second instance would order the same certificates
//! again (Let's Encrypt rate-limits) and could not answer the other's
//! HTTP-01 challenges. That file lives on the node (a host directory this
//! provider creates over SSH, owned by traefik's user), so a restarted or
//! re-created pod keeps its certificates and orders none.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction,
    HostPathVolumeSource, Namespace, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecurityContext, ServiceAccount, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{IngressClass, IngressClassSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};

use super::rbac::{role_ref, rule, service_account, strings as own};
use super::{Addon, control_plane_toleration, labels, labels_with};
use crate::kube::KubeError;
use crate::kube::manifest::Item;

/// The attribute that turns it on (a block).
pub const ADDON: &str = "ingress";
/// The pinned release.
pub const VERSION: &str = "v3.6.12";
/// Its image at [`VERSION`].
pub const IMAGE: &str = "docker.io/library/traefik:v3.6.12";
/// The namespace it runs in (its own: its pod needs host ports).
pub const NAMESPACE: &str = "selfhost-ingress";
/// The IngressClass it serves, made the cluster's default.
pub const INGRESS_CLASS: &str = "traefik";
/// The controller name traefik watches IngressClasses for.
pub const CONTROLLER: &str = "traefik.io/ingress-controller";
/// The HTTP entry point (host port 80; redirects to HTTPS).
pub const WEB: &str = "web";
/// The HTTPS entry point (host port 443).
pub const WEBSECURE: &str = "websecure";
/// The ACME certificate resolver routers name.
pub const RESOLVER: &str = "acme";
/// Let's Encrypt's production directory (the default `server`).
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (`staging = true`).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// The directory on the ingress node holding `acme.json`.
pub const ACME_DIR: &str = "/var/lib/selfhost/ingress-acme";
const NAME: &str = "traefik";
const APP: (&str, &str) = ("app.kubernetes.io/name", "traefik");
const CA_CONFIG_MAP: &str = "traefik-acme-ca";
const CA_FILE: &str = "ca.pem";
/// The node's ports it listens on.
const WEB_PORT: i32 = 80;
const WEBSECURE_PORT: i32 = 443;
/// Its health endpoint (`/ping`), also on the node's network.
pub const PING_PORT: i32 = 8082;

/// What the `ingress {}` block sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressSettings {
    /// The Kubernetes node name it runs on (its address is where DNS points).
    pub node: String,
    /// The ACME account's contact email.
    pub email: String,
    /// The ACME directory URL.
    pub server: String,
    /// PEM bundle of the CA(s) that sign the ACME server's HTTPS
    /// certificate, for a private ACME server.
    pub ca_certificate: Option<String>,
}

fn meta(name: &str, namespaced: bool) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespaced.then(|| NAMESPACE.to_owned()),
        labels: Some(labels_with(ADDON, &[APP])),
        ..ObjectMeta::default()
    }
}

/// traefik's static configuration, as command-line arguments.
pub fn args(s: &IngressSettings) -> Vec<String> {
    let mut a = vec![
        "--global.checknewversion=false".to_owned(),
        "--global.sendanonymoususage=false".to_owned(),
        format!("--entrypoints.{WEB}.address=:{WEB_PORT}"),
        format!("--entrypoints.{WEB}.http.redirections.entrypoint.to={WEBSECURE}"),
        format!("--entrypoints.{WEB}.http.redirections.entrypoint.scheme=https"),
        format!("--entrypoints.{WEBSECURE}.address=:{WEBSECURE_PORT}"),
        format!("--entrypoints.traefik.address=:{PING_PORT}"),
        "--ping=true".to_owned(),
        "--ping.entrypoint=traefik".to_owned(),
        "--providers.kubernetesingress=true".to_owned(),
        format!("--certificatesresolvers.{RESOLVER}.acme.email={}", s.email),
        format!("--certificatesresolvers.{RESOLVER}.acme.storage=/data/acme.json"),
        format!("--certificatesresolvers.{RESOLVER}.acme.caserver={}", s.server),
        format!("--certificatesresolvers.{RESOLVER}.acme.httpchallenge.entrypoint={WEB}"),
    ];
    if s.ca_certificate.is_some() {
        a.push(format!(
            "--certificatesresolvers.{RESOLVER}.acme.cacertificates=/etc/traefik/acme-ca/{CA_FILE}"
        ));
    }
    a
}

/// A port of the node's network (declared so the scheduler never places
/// two pods wanting it on one node).
fn port(name: &str, number: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: number,
        host_port: Some(number),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn deployment(s: &IngressSettings) -> Deployment {
    let mut mounts = vec![mount("acme", "/data", false), mount("tmp", "/tmp", false)];
    let mut volumes = vec![
        Volume {
            name: "acme".to_owned(),
            host_path: Some(HostPathVolumeSource {
                path: ACME_DIR.to_owned(),
                // made by the provider (0700), never by the kubelet
                type_: Some("Directory".to_owned()),
            }),
            ..Volume::default()
        },
        Volume {
            name: "tmp".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    ];
    let mut annotations = BTreeMap::new();
    if let Some(ca) = &s.ca_certificate {
        mounts.push(mount("acme-ca", "/etc/traefik/acme-ca", true));
        volumes.push(Volume {
            name: "acme-ca".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: CA_CONFIG_MAP.to_owned(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
        // a new CA bundle restarts traefik (a mounted file alone would not be re-read)
        annotations.insert(
            "selfhost.dev/acme-ca-sha256".to_owned(),
            hex::encode(Sha256::digest(ca.as_bytes())),
        );
    }
    let container = Container {
        name: NAME.to_owned(),
        image: Some(IMAGE.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(args(s)),
        ports: Some(vec![
            port(WEB, WEB_PORT),
            port(WEBSECURE, WEBSECURE_PORT),
            port("traefik", PING_PORT),
        ]),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/ping".to_owned()),
                port: IntOrString::Int(PING_PORT),
                scheme: Some("HTTP".to_owned()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(5),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("100m".to_owned())),
                ("memory".to_owned(), Quantity("64Mi".to_owned())),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(own(&["ALL"])),
                add: Some(own(&["NET_BIND_SERVICE"])),
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    Deployment {
        metadata: meta(NAME, true),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            // never two instances: they would share host ports and the ACME file
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                rolling_update: None,
            }),
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([(APP.0.to_owned(), APP.1.to_owned())])),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels_with(ADDON, &[APP])),
                    annotations: (!annotations.is_empty()).then_some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(NAME.to_owned()),
                    host_network: Some(true),
                    // Services and the ACME server by their cluster DNS names
                    dns_policy: Some("ClusterFirstWithHostNet".to_owned()),
                    node_selector: Some(BTreeMap::from([("kubernetes.io/hostname".to_owned(), s.node.clone())])),
                    tolerations: Some(vec![control_plane_toleration()]),
                    security_context: Some(PodSecurityContext {
                        run_as_user: Some(0),
                        run_as_group: Some(0),
                        run_as_non_root: Some(false),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    volumes: Some(volumes),
                    termination_grace_period_seconds: Some(30),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The add-on's objects for `s`.
///
/// # Errors
/// Only on a rendering bug.
pub fn render(s: &IngressSettings) -> Result<Addon, KubeError> {
    let mut ns_labels = labels(ADDON);
    // host networking and a hostPath volume are outside the baseline Pod
    // Security level: say "privileged" explicitly, in every mode, so a
    // cluster-wide default never refuses (nor warns about) traefik's pod
    ns_labels.extend(crate::kube::pod_security::labels(
        crate::kube::pod_security::Level::Privileged,
        None,
    ));
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.to_owned()),
            labels: Some(ns_labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let role = ClusterRole {
        metadata: meta("selfhost-traefik", false),
        rules: Some(vec![
            rule(&[""], &["services", "secrets"], &["get", "list", "watch"]),
            // since v3.1, for NodePort load-balancing (docs/content/migrate/v3.md);
            // without it the provider's caches never sync and nothing is routed
            rule(&[""], &["nodes"], &["get", "list", "watch"]),
            rule(&["discovery.k8s.io"], &["endpointslices"], &["get", "list", "watch"]),
            rule(
                &["extensions", "networking.k8s.io"],
                &["ingresses", "ingressclasses"],
                &["get", "list", "watch"],
            ),
            rule(&["extensions", "networking.k8s.io"], &["ingresses/status"], &["update"]),
        ]),
        ..ClusterRole::default()
    };
    let binding = ClusterRoleBinding {
        metadata: meta("selfhost-traefik", false),
        role_ref: role_ref("ClusterRole", "selfhost-traefik"),
        subjects: service_account(NAMESPACE, NAME),
    };
    let mut class_meta = meta(INGRESS_CLASS, false);
    class_meta.annotations = Some(BTreeMap::from([(
        "ingressclass.kubernetes.io/is-default-class".to_owned(),
        "true".to_owned(),
    )]));
    let class = IngressClass {
        metadata: class_meta,
        spec: Some(IngressClassSpec {
            controller: Some(CONTROLLER.to_owned()),
            parameters: None,
        }),
    };
    let mut objects = vec![
        Item::of(&namespace)?,
        Item::of(&ServiceAccount {
            metadata: meta(NAME, true),
            ..ServiceAccount::default()
        })?,
        Item::of(&role)?,
        Item::of(&binding)?,
        Item::of(&class)?,
    ];
    if let Some(ca) = &s.ca_certificate {
        objects.push(Item::of(&ConfigMap {
            metadata: meta(CA_CONFIG_MAP, true),
            data: Some(BTreeMap::from([(CA_FILE.to_owned(), ca.clone())])),
            ..ConfigMap::default()
        })?);
    }
    objects.push(Item::of(&deployment(s))?);
    Ok(Addon {
        name: ADDON,
        workload: objects.len() - 1,
        objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ca: Option<&str>) -> IngressSettings {
        IngressSettings {
            node: "vps-1".to_owned(),
            email: "ops@example.com".to_owned(),
            server: LETS_ENCRYPT.to_owned(),
            ca_certificate: ca.map(str::to_owned),
        }
    }

    #[test]
    fn one_pinned_traefik_on_the_chosen_node_with_host_ports_and_kept_acme_storage() {
        let a = render(&settings(None)).expect("renders");
        let d = a.workload().expect("workload").json();
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["nodeSelector"]["kubernetes.io/hostname"], "vps-1");
        assert_eq!(pod["hostNetwork"], true);
        let c = &pod["containers"][0];
        assert_eq!(c["image"], IMAGE);
        assert_eq!(c["ports"][0]["hostPort"], 80);
        assert_eq!(c["ports"][1]["hostPort"], 443);
        assert_eq!(
            c["securityContext"]["capabilities"]["add"],
            serde_json::json!(["NET_BIND_SERVICE"])
        );
        assert_eq!(c["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(pod["volumes"][0]["hostPath"]["path"], ACME_DIR);
        let args: Vec<String> = serde_json::from_value(c["args"].clone()).expect("args");
        for want in [
            "--entrypoints.web.http.redirections.entrypoint.to=websecure",
            "--entrypoints.websecure.address=:443",
            "--certificatesresolvers.acme.acme.storage=/data/acme.json",
            "--certificatesresolvers.acme.acme.caserver=https://acme-v02.api.letsencrypt.org/directory",
            "--certificatesresolvers.acme.acme.httpchallenge.entrypoint=web",
            "--certificatesresolvers.acme.acme.email=ops@example.com",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} missing from {args:?}");
        }
        assert!(!args.iter().any(|a| a.contains("cacertificates")));
        let class = a
            .objects
            .iter()
            .find(|i| i.resource.kind == "IngressClass")
            .expect("class");
        assert_eq!(
            class.json()["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"],
            "true"
        );
    }

    #[test]
    fn a_private_acme_servers_ca_is_mounted_and_restarts_traefik_when_it_changes() {
        let one = render(&settings(Some("-----BEGIN CERTIFICATE-----\nA\n"))).expect("renders");
        let two = render(&settings(Some("-----BEGIN CERTIFICATE-----\nB\n"))).expect("renders");
        let cm = one
            .objects
            .iter()
            .find(|i| i.resource.kind == "ConfigMap")
            .expect("CA config map");
        assert!(cm.json()["data"][CA_FILE].as_str().is_some_and(|s| s.contains("\nA\n")));
        let hash = |a: &Addon| {
            a.workload().expect("workload").json()["spec"]["template"]["metadata"]["annotations"]
                ["selfhost.dev/acme-ca-sha256"]
                .clone()
        };
        assert_ne!(hash(&one), hash(&two));
        let args =
            one.workload().expect("workload").json()["spec"]["template"]["spec"]["containers"][0]["args"].clone();
        assert!(
            args.to_string()
                .contains("acme.cacertificates=/etc/traefik/acme-ca/ca.pem")
        );
    }

    #[test]
    fn rbac_as_traefiks_documentation_has_it() {
        let a = render(&settings(None)).expect("renders");
        let role = a
            .objects
            .iter()
            .find(|i| i.resource.kind == "ClusterRole")
            .expect("role")
            .json();
        let writes: Vec<&serde_json::Value> = role["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .filter(|r| r["verbs"] != serde_json::json!(["get", "list", "watch"]))
            .collect();
        assert_eq!(writes.len(), 1, "only ingress status is written: {writes:?}");
        assert_eq!(writes[0]["resources"], serde_json::json!(["ingresses/status"]));
    }
}
