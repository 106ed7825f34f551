//! The typed model of `selfhost_agent` (as a plan at apply time or a state
//! holds it) and its translation into the kube layer's [`AgentSpec`].

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::kube::agent::{
    AgentSpec, AutoscalingSpec, DisruptionBudgetSpec, IngressSpec, PodCount, Port, Resources, Security, TolerationSpec,
};
use crate::kube::agent_parts::{Probe, Storage};

use super::schema::DEFAULT_CONFIG_PATH;

/// A known plan or a state. No `Debug`: it holds the kubeconfig and secrets.
#[derive(Deserialize)]
pub struct AgentModel {
    pub kubeconfig: String,
    pub namespace: String,
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub replicas: Option<i64>,
    pub env: Option<BTreeMap<String, String>>,
    pub secret_env: Option<BTreeMap<String, String>>,
    pub secret_env_wo_version: Option<i64>,
    pub config_files: Option<BTreeMap<String, String>>,
    pub config_path: Option<String>,
    pub node_selector: Option<BTreeMap<String, String>>,
    pub wait_for_rollout: Option<bool>,
    pub shutdown_delay_seconds: Option<i64>,
    pub port: Option<Vec<PortModel>>,
    pub resources: Option<ResourcesModel>,
    pub storage: Option<StorageModel>,
    pub readiness_probe: Option<ProbeModel>,
    pub liveness_probe: Option<ProbeModel>,
    pub toleration: Option<Vec<TolerationModel>>,
    pub security: Option<SecurityModel>,
    pub ingress: Option<IngressModel>,
    pub autoscaling: Option<AutoscalingModel>,
    pub disruption_budget: Option<DisruptionBudgetModel>,
}

#[derive(Deserialize)]
pub struct PortModel {
    pub name: String,
    pub port: i64,
    pub protocol: Option<String>,
}

#[derive(Deserialize)]
pub struct ResourcesModel {
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
}

#[derive(Deserialize, PartialEq)]
pub struct StorageModel {
    pub size: String,
    pub mount_path: String,
    pub storage_class: Option<String>,
}

#[derive(Deserialize)]
pub struct ProbeModel {
    pub command: Option<Vec<String>>,
    pub http_path: Option<String>,
    pub port: Option<String>,
    pub initial_delay_seconds: Option<i64>,
    pub period_seconds: Option<i64>,
    pub failure_threshold: Option<i64>,
}

#[derive(Deserialize)]
pub struct TolerationModel {
    pub key: Option<String>,
    pub operator: Option<String>,
    pub value: Option<String>,
    pub effect: Option<String>,
}

#[derive(Deserialize)]
pub struct SecurityModel {
    pub run_as_non_root: Option<bool>,
    pub run_as_user: Option<i64>,
    pub read_only_root_filesystem: Option<bool>,
    pub drop_all_capabilities: Option<bool>,
    pub allow_privilege_escalation: Option<bool>,
    pub seccomp_runtime_default: Option<bool>,
    pub automount_service_account_token: Option<bool>,
}

#[derive(Deserialize)]
pub struct IngressModel {
    pub host: String,
    pub path: Option<String>,
    pub tls: Option<bool>,
    pub class: Option<String>,
}

#[derive(Deserialize)]
pub struct AutoscalingModel {
    pub min_replicas: Option<i64>,
    pub max_replicas: i64,
    pub cpu_percent: Option<i64>,
    pub memory_percent: Option<i64>,
}

#[derive(Deserialize)]
pub struct DisruptionBudgetModel {
    pub min_available: Option<String>,
    pub max_unavailable: Option<String>,
}

impl DisruptionBudgetModel {
    /// Validated at plan time: a count that does not parse cannot reach here.
    fn spec(&self) -> DisruptionBudgetSpec {
        let count = |s: &Option<String>| s.as_deref().and_then(|s| PodCount::parse(s).ok());
        DisruptionBudgetSpec {
            min_available: count(&self.min_available),
            max_unavailable: count(&self.max_unavailable),
        }
    }
}

/// Validated numbers fit in `i32`; clamp rather than panic if one does not.
fn small(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })
}

impl ProbeModel {
    fn spec(&self) -> Probe {
        Probe {
            command: self.command.clone().unwrap_or_default(),
            http_path: self.http_path.clone(),
            port: self.port.clone(),
            initial_delay_seconds: self.initial_delay_seconds.map(small),
            period_seconds: self.period_seconds.map(small),
            failure_threshold: self.failure_threshold.map(small),
        }
    }
}

impl SecurityModel {
    fn spec(&self) -> Security {
        let d = Security::default();
        Security {
            run_as_non_root: self.run_as_non_root.unwrap_or(d.run_as_non_root),
            run_as_user: self.run_as_user.or(d.run_as_user),
            read_only_root_filesystem: self.read_only_root_filesystem.unwrap_or(d.read_only_root_filesystem),
            drop_all_capabilities: self.drop_all_capabilities.unwrap_or(d.drop_all_capabilities),
            allow_privilege_escalation: self.allow_privilege_escalation.unwrap_or(d.allow_privilege_escalation),
            seccomp_runtime_default: self.seccomp_runtime_default.unwrap_or(d.seccomp_runtime_default),
            automount_service_account_token: self
                .automount_service_account_token
                .unwrap_or(d.automount_service_account_token),
        }
    }
}

impl AgentModel {
    /// What to apply. `secret_env_wo` (from the configuration, at apply
    /// only) joins the Secret; `last_applied` is the annotation's value.
    pub fn spec(&self, secret_env_wo: BTreeMap<String, String>, last_applied: Option<String>) -> AgentSpec {
        let r = self.resources.as_ref();
        AgentSpec {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            image: self.image.clone(),
            command: self.command.clone().unwrap_or_default(),
            args: self.args.clone().unwrap_or_default(),
            replicas: self.replicas.map(small),
            env: self.env.clone().unwrap_or_default(),
            secret_env: self.secret_env.clone().unwrap_or_default(),
            secret_env_wo,
            secret_env_wo_version: self.secret_env_wo_version,
            ports: self
                .port
                .iter()
                .flatten()
                .map(|p| Port {
                    name: p.name.clone(),
                    port: small(p.port),
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                })
                .collect(),
            resources: Resources {
                cpu_request: r.and_then(|r| r.cpu_request.clone()),
                cpu_limit: r.and_then(|r| r.cpu_limit.clone()),
                memory_request: r.and_then(|r| r.memory_request.clone()),
                memory_limit: r.and_then(|r| r.memory_limit.clone()),
            },
            security: self.security.as_ref().map(SecurityModel::spec).unwrap_or_default(),
            config_files: self.config_files.clone().unwrap_or_default(),
            config_path: self
                .config_path
                .clone()
                .unwrap_or_else(|| DEFAULT_CONFIG_PATH.to_owned()),
            storage: self.storage.as_ref().map(|s| Storage {
                size: s.size.clone(),
                mount_path: s.mount_path.clone(),
                storage_class: s.storage_class.clone(),
            }),
            readiness_probe: self.readiness_probe.as_ref().map(ProbeModel::spec),
            liveness_probe: self.liveness_probe.as_ref().map(ProbeModel::spec),
            node_selector: self.node_selector.clone().unwrap_or_default(),
            shutdown_delay_seconds: self.shutdown_delay_seconds.map(small),
            tolerations: self
                .toleration
                .iter()
                .flatten()
                .map(|t| TolerationSpec {
                    key: t.key.clone(),
                    operator: t.operator.clone(),
                    value: t.value.clone(),
                    effect: t.effect.clone(),
                })
                .collect(),
            ingress: self.ingress.as_ref().map(|i| IngressSpec {
                host: i.host.clone(),
                path: i.path.clone().unwrap_or_else(|| "/".to_owned()),
                tls: i.tls.unwrap_or(true),
                class: i.class.clone(),
            }),
            autoscaling: self.autoscaling.as_ref().map(|a| AutoscalingSpec {
                min_replicas: small(a.min_replicas.unwrap_or(1)),
                max_replicas: small(a.max_replicas),
                cpu_percent: a.cpu_percent.map(small),
                memory_percent: a.memory_percent.map(small),
            }),
            disruption_budget: self.disruption_budget.as_ref().map(DisruptionBudgetModel::spec),
            last_applied,
        }
    }
}
