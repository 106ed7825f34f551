//! The objects of one agent (`selfhost_agent`): a Deployment with a
//! secure-by-default pod, a ClusterIP Service for its ports, a Secret for
//! its secret environment, a ConfigMap for its config files, a
//! PersistentVolumeClaim for its storage, an Ingress, a
//! HorizontalPodAutoscaler and a PodDisruptionBudget. Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource,
    EnvVar, Lifecycle, LifecycleHandler, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, PodSecurityContext,
    PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, Secret, SecretEnvSource, SecurityContext, Service,
    ServicePort, ServiceSpec, SleepAction, Toleration, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use sha2::{Digest, Sha256};

pub use super::agent_spec::{
    AgentSpec, AutoscalingSpec, DEFAULT_UID, DisruptionBudgetSpec, IngressSpec, PodCount, Port, Probe, Resources,
    Security, Storage, TolerationSpec, check_pod_count,
};
use super::objects::ownership_labels;

/// The label that selects an agent's pods.
pub const AGENT_LABEL: &str = "selfhost.dev/agent";
/// The Deployment annotation holding the last applied configuration (no
/// secrets), as kubectl's last-applied annotation: import reads it back.
pub use super::LAST_APPLIED;
/// Pod template annotation: a digest of the secret env and config files, so
/// a change of either rolls the pods (env and files are read at start).
pub const INPUTS_DIGEST: &str = "selfhost.dev/inputs-digest";
/// The grace period a pod gets on top of its `shutdown_delay_seconds`
/// (Kubernetes' default grace period, left whole for the SIGTERM part).
const SHUTDOWN_GRACE_SECS: i64 = 30;

/// The objects to apply for an agent.
pub struct AgentObjects {
    /// The Deployment running the agent's pods.
    pub deployment: Deployment,
    /// The Service in front of the agent's ports; `None` when it has none.
    pub service: Option<Service>,
    /// The Secret holding the secret env values; `None` when there are none.
    pub secret: Option<Secret>,
    /// The ConfigMap holding the config files; `None` when there are none.
    pub config_map: Option<ConfigMap>,
    /// The PersistentVolumeClaim of the agent's storage; `None` without storage.
    pub claim: Option<PersistentVolumeClaim>,
    /// The Ingress routing outside traffic to the agent; `None` without ingress.
    pub ingress: Option<Ingress>,
    /// The HorizontalPodAutoscaler owning the replica count; `None` without autoscaling.
    pub autoscaler: Option<HorizontalPodAutoscaler>,
    /// The PodDisruptionBudget over the agent's pods; `None` without `disruption_budget`.
    pub disruption_budget: Option<PodDisruptionBudget>,
}

impl AgentSpec {
    /// Name of the Secret holding `secret_env`.
    pub fn secret_name(&self) -> String {
        format!("{}-env", self.name)
    }

    /// Name of the ConfigMap holding `config_files`.
    pub fn config_map_name(&self) -> String {
        format!("{}-config", self.name)
    }

    /// Name of the PersistentVolumeClaim of `storage`.
    pub fn claim_name(&self) -> String {
        format!("{}-data", self.name)
    }

    /// The Service's cluster DNS name, `name.namespace.svc.cluster.local`.
    pub fn service_dns(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.name, self.namespace)
    }

    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        let mut l = ownership_labels("agent");
        l.insert(AGENT_LABEL.to_owned(), self.name.clone());
        l
    }

    /// The labels selecting the agent's pods (the Deployment's selector).
    pub(crate) fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(AGENT_LABEL.to_owned(), self.name.clone())])
    }

    pub(crate) fn meta(&self, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }

    /// Render every object (only the fields this provider manages).
    pub fn render(&self) -> AgentObjects {
        AgentObjects {
            deployment: self.deployment(),
            service: (!self.ports.is_empty()).then(|| self.service()),
            secret: self.has_secret().then(|| self.secret()),
            config_map: (!self.config_files.is_empty()).then(|| self.config_map()),
            claim: self.storage.as_ref().map(|st| st.claim(self)),
            ingress: self.ingress.as_ref().and_then(|i| i.render(self)),
            autoscaler: self.autoscaling.as_ref().map(|a| a.render(self)),
            disruption_budget: self.disruption_budget.as_ref().map(|b| b.render(self)),
        }
    }

    /// Whether the agent has a Secret (also when only write-only values,
    /// unknown outside apply, go in it).
    pub fn has_secret(&self) -> bool {
        !self.secret_env.is_empty() || !self.secret_env_wo.is_empty() || self.secret_env_wo_version.is_some()
    }

    /// SHA-256 over the secret env and the config files: changes when
    /// either does, without revealing them (keys and values are framed by
    /// their lengths, so no two different inputs hash alike by joining).
    fn inputs_digest(&self) -> Option<String> {
        if self.secret_env.is_empty() && self.config_files.is_empty() && self.secret_env_wo_version.is_none() {
            return None;
        }
        let mut h = Sha256::new();
        // Write-only values are unknown when drift is judged: their version
        // stands for them.
        if let Some(v) = self.secret_env_wo_version {
            h.update(b"wo-version");
            h.update(v.to_be_bytes());
        }
        for (tag, map) in [("secret", &self.secret_env), ("config", &self.config_files)] {
            h.update(tag.as_bytes());
            for (k, v) in map {
                h.update((k.len() as u64).to_be_bytes());
                h.update(k.as_bytes());
                h.update((v.len() as u64).to_be_bytes());
                h.update(v.as_bytes());
            }
        }
        Some(hex::encode(h.finalize()))
    }

    fn volume_mounts(&self) -> Option<Vec<VolumeMount>> {
        let mut mounts = Vec::new();
        // A writable /tmp, since the root filesystem is read-only.
        if self.security.read_only_root_filesystem {
            mounts.push(VolumeMount {
                name: "tmp".to_owned(),
                mount_path: "/tmp".to_owned(),
                ..VolumeMount::default()
            });
        }
        if !self.config_files.is_empty() {
            mounts.push(VolumeMount {
                name: "config".to_owned(),
                mount_path: self.config_path.clone(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
        }
        if let Some(st) = &self.storage {
            mounts.push(VolumeMount {
                name: "data".to_owned(),
                mount_path: st.mount_path.clone(),
                ..VolumeMount::default()
            });
        }
        (!mounts.is_empty()).then_some(mounts)
    }

    fn volumes(&self) -> Option<Vec<Volume>> {
        let mut volumes = Vec::new();
        if self.security.read_only_root_filesystem {
            volumes.push(Volume {
                name: "tmp".to_owned(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            });
        }
        if !self.config_files.is_empty() {
            volumes.push(Volume {
                name: "config".to_owned(),
                config_map: Some(ConfigMapVolumeSource {
                    name: self.config_map_name(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
        if self.storage.is_some() {
            volumes.push(Volume {
                name: "data".to_owned(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: self.claim_name(),
                    read_only: None,
                }),
                ..Volume::default()
            });
        }
        (!volumes.is_empty()).then_some(volumes)
    }

    fn config_map(&self) -> ConfigMap {
        ConfigMap {
            metadata: self.meta(self.config_map_name()),
            data: Some(self.config_files.clone()),
            ..ConfigMap::default()
        }
    }

    fn container(&self) -> Container {
        let sec = &self.security;
        let quantities = |pairs: [(&str, &Option<String>); 2]| {
            let m: BTreeMap<String, Quantity> = pairs
                .into_iter()
                .filter_map(|(k, v)| v.clone().map(|q| (k.to_owned(), Quantity(q))))
                .collect();
            (!m.is_empty()).then_some(m)
        };
        let r = &self.resources;
        let resources = ResourceRequirements {
            requests: quantities([("cpu", &r.cpu_request), ("memory", &r.memory_request)]),
            limits: quantities([("cpu", &r.cpu_limit), ("memory", &r.memory_limit)]),
            ..ResourceRequirements::default()
        };
        Container {
            name: self.name.clone(),
            image: Some(self.image.clone()),
            command: (!self.command.is_empty()).then(|| self.command.clone()),
            args: (!self.args.is_empty()).then(|| self.args.clone()),
            env: (!self.env.is_empty()).then(|| {
                self.env
                    .iter()
                    .map(|(k, v)| EnvVar {
                        name: k.clone(),
                        value: Some(v.clone()),
                        ..EnvVar::default()
                    })
                    .collect()
            }),
            env_from: self.has_secret().then(|| {
                vec![EnvFromSource {
                    secret_ref: Some(SecretEnvSource {
                        name: self.secret_name(),
                        optional: Some(false),
                    }),
                    ..EnvFromSource::default()
                }]
            }),
            ports: (!self.ports.is_empty()).then(|| {
                self.ports
                    .iter()
                    .map(|p| ContainerPort {
                        name: Some(p.name.clone()),
                        container_port: p.port,
                        protocol: Some(p.protocol.clone()),
                        ..ContainerPort::default()
                    })
                    .collect()
            }),
            resources: (resources != ResourceRequirements::default()).then_some(resources),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(sec.allow_privilege_escalation),
                read_only_root_filesystem: Some(sec.read_only_root_filesystem),
                capabilities: sec.drop_all_capabilities.then(|| Capabilities {
                    drop: Some(vec!["ALL".to_owned()]),
                    ..Capabilities::default()
                }),
                ..SecurityContext::default()
            }),
            volume_mounts: self.volume_mounts(),
            readiness_probe: self.readiness_probe.as_ref().map(|p| p.render(&self.ports)),
            liveness_probe: self.liveness_probe.as_ref().map(|p| p.render(&self.ports)),
            // Kubernetes' own sleep action: no `sleep` binary needed in the image.
            lifecycle: self.shutdown_delay_seconds.map(|seconds| Lifecycle {
                pre_stop: Some(LifecycleHandler {
                    sleep: Some(SleepAction {
                        seconds: i64::from(seconds),
                    }),
                    ..LifecycleHandler::default()
                }),
                ..Lifecycle::default()
            }),
            ..Container::default()
        }
    }

    fn deployment(&self) -> Deployment {
        let sec = &self.security;
        let mut metadata = self.meta(self.name.clone());
        metadata.annotations = self
            .last_applied
            .as_ref()
            .map(|a| BTreeMap::from([(LAST_APPLIED.to_owned(), a.clone())]));
        Deployment {
            metadata,
            spec: Some(DeploymentSpec {
                // With an autoscaler the count is its own: left out of the
                // apply, so neither manager fights the other (no conflict,
                // no drift).
                replicas: if self.autoscaling.is_some() {
                    None
                } else {
                    self.replicas
                },
                // A ReadWriteOnce claim cannot be mounted by the old and the
                // new pod at once: replace pods instead of rolling.
                strategy: self.storage.as_ref().map(|_| DeploymentStrategy {
                    type_: Some("Recreate".to_owned()),
                    rolling_update: None,
                }),
                selector: LabelSelector {
                    match_labels: Some(self.selector()),
                    ..LabelSelector::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.labels()),
                        annotations: self
                            .inputs_digest()
                            .map(|d| BTreeMap::from([(INPUTS_DIGEST.to_owned(), d)])),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        automount_service_account_token: Some(sec.automount_service_account_token),
                        security_context: Some(PodSecurityContext {
                            run_as_non_root: Some(sec.run_as_non_root),
                            run_as_user: sec.run_as_user,
                            run_as_group: sec.run_as_user,
                            fs_group: sec.run_as_user,
                            seccomp_profile: sec.seccomp_runtime_default.then(|| SeccompProfile {
                                type_: "RuntimeDefault".to_owned(),
                                ..SeccompProfile::default()
                            }),
                            ..PodSecurityContext::default()
                        }),
                        containers: vec![self.container()],
                        volumes: self.volumes(),
                        node_selector: (!self.node_selector.is_empty()).then(|| self.node_selector.clone()),
                        termination_grace_period_seconds: self
                            .shutdown_delay_seconds
                            .map(|s| i64::from(s) + SHUTDOWN_GRACE_SECS),
                        tolerations: (!self.tolerations.is_empty())
                            .then(|| self.tolerations.iter().map(Toleration::from).collect()),
                        ..PodSpec::default()
                    }),
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    fn service(&self) -> Service {
        Service {
            metadata: self.meta(self.name.clone()),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".to_owned()),
                selector: Some(self.selector()),
                ports: Some(
                    self.ports
                        .iter()
                        .map(|p| ServicePort {
                            name: Some(p.name.clone()),
                            port: p.port,
                            target_port: Some(IntOrString::String(p.name.clone())),
                            protocol: Some(p.protocol.clone()),
                            ..ServicePort::default()
                        })
                        .collect(),
                ),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn secret(&self) -> Secret {
        Secret {
            metadata: self.meta(self.secret_name()),
            type_: Some("Opaque".to_owned()),
            data: Some(
                self.secret_env
                    .iter()
                    .chain(&self.secret_env_wo)
                    .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn research() -> AgentSpec {
        AgentSpec {
            namespace: "agents".into(),
            name: "research".into(),
            image: "openclaw-sandbox:bookworm-slim".into(),
            replicas: Some(1),
            env: BTreeMap::from([("LOG_LEVEL".into(), "info".into())]),
            secret_env: BTreeMap::from([("OPENAI_API_KEY".into(), "sk-secret".into())]),
            ports: vec![Port {
                name: "http".into(),
                port: 8080,
                protocol: "TCP".into(),
            }],
            resources: Resources {
                cpu_request: Some("250m".into()),
                cpu_limit: Some("1".into()),
                memory_request: Some("256Mi".into()),
                memory_limit: Some("512Mi".into()),
            },
            ..AgentSpec::default()
        }
    }

    #[test]
    fn secure_by_default() {
        let d = serde_json::to_value(research().render().deployment).unwrap();
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], DEFAULT_UID);
        assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
        let c = &pod["containers"][0];
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/tmp");
        assert_eq!(pod["volumes"][0]["emptyDir"], serde_json::json!({}));
        assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
        assert_eq!(c["resources"]["requests"]["cpu"], "250m");
    }

    #[test]
    fn a_shutdown_delay_is_a_pre_stop_sleep_inside_a_longer_grace_period() {
        let none = serde_json::to_value(research().render().deployment).unwrap();
        assert!(
            none["spec"]["template"]["spec"]["containers"][0]
                .get("lifecycle")
                .is_none()
        );
        assert!(
            none["spec"]["template"]["spec"]
                .get("terminationGracePeriodSeconds")
                .is_none()
        );
        let mut spec = research();
        spec.shutdown_delay_seconds = Some(5);
        let d = serde_json::to_value(spec.render().deployment).unwrap();
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["lifecycle"]["preStop"],
            serde_json::json!({"sleep": {"seconds": 5}})
        );
        assert_eq!(pod["terminationGracePeriodSeconds"], 35);
    }

    #[test]
    fn secret_values_only_in_the_secret() {
        let objs = research().render();
        let d = serde_json::to_string(&objs.deployment).unwrap();
        assert!(!d.contains("sk-secret"), "{d}");
        assert!(d.contains("research-env"), "the Deployment refers to the Secret");
        let s = serde_json::to_value(objs.secret.unwrap()).unwrap();
        assert_eq!(s["data"]["OPENAI_API_KEY"], "c2stc2VjcmV0");
    }

    #[test]
    fn service_for_ports_with_dns() {
        let spec = research();
        let svc = serde_json::to_value(spec.render().service.unwrap()).unwrap();
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["selector"][AGENT_LABEL], "research");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
        assert_eq!(spec.service_dns(), "research.agents.svc.cluster.local");
        let mut none = spec.clone();
        none.ports.clear();
        none.secret_env.clear();
        let objs = none.render();
        assert!(objs.service.is_none() && objs.secret.is_none());
    }

    #[test]
    fn ownership_labels_everywhere_and_replicas_left_alone_when_unset() {
        let mut spec = research();
        spec.replicas = None;
        let objs = spec.render();
        let d = serde_json::to_value(&objs.deployment).unwrap();
        assert!(
            d["spec"].get("replicas").is_none(),
            "unset replicas stay out of the apply"
        );
        for labels in [
            &d["metadata"]["labels"],
            &serde_json::to_value(objs.service.unwrap()).unwrap()["metadata"]["labels"],
            &serde_json::to_value(objs.secret.unwrap()).unwrap()["metadata"]["labels"],
        ] {
            assert_eq!(labels[super::super::objects::MANAGED_BY], super::super::FIELD_MANAGER);
            assert_eq!(labels[AGENT_LABEL], "research");
        }
    }

    #[test]
    fn overrides_are_explicit() {
        let mut spec = research();
        spec.security = Security {
            run_as_non_root: false,
            run_as_user: None,
            read_only_root_filesystem: false,
            drop_all_capabilities: false,
            allow_privilege_escalation: true,
            seccomp_runtime_default: false,
            automount_service_account_token: true,
        };
        let d = serde_json::to_value(spec.render().deployment).unwrap();
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], false);
        assert!(pod.get("volumes").is_none());
        assert!(pod["containers"][0]["securityContext"].get("capabilities").is_none());
    }

    #[test]
    fn an_autoscaler_owns_the_replicas() {
        let mut spec = research();
        spec.autoscaling = Some(AutoscalingSpec {
            min_replicas: 1,
            max_replicas: 4,
            cpu_percent: Some(75),
            memory_percent: None,
        });
        let objs = spec.render();
        let d = serde_json::to_value(&objs.deployment).unwrap();
        assert!(
            d["spec"].get("replicas").is_none(),
            "replicas stay out of the apply even when set: the autoscaler owns them"
        );
        let hpa = serde_json::to_value(objs.autoscaler.unwrap()).unwrap();
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "research");
        assert_eq!(
            hpa["metadata"]["labels"][super::super::objects::MANAGED_BY],
            super::super::FIELD_MANAGER
        );
        assert!(research().render().autoscaler.is_none());
        assert_eq!(
            serde_json::to_value(research().render().deployment).unwrap()["spec"]["replicas"],
            1
        );
    }
}
