//! What an agent is, as validated configuration: the data the renderers
//! ([`super::agent`], [`super::agent_parts`]) turn into objects. Kept apart
//! so both renderers depend on it and not on each other.

use std::collections::BTreeMap;

/// The user and group the pod runs as unless told otherwise (non-root).
pub const DEFAULT_UID: i64 = 65532;

/// One named port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub port: i32,
    /// "TCP" or "UDP".
    pub protocol: String,
}

/// Requests and limits as Kubernetes quantities ("250m", "512Mi").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
}

/// The isolation settings; [`Security::default`] is the secure default,
/// each overridable explicitly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Security {
    pub run_as_non_root: bool,
    pub run_as_user: Option<i64>,
    pub read_only_root_filesystem: bool,
    pub drop_all_capabilities: bool,
    pub allow_privilege_escalation: bool,
    pub seccomp_runtime_default: bool,
    pub automount_service_account_token: bool,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            run_as_non_root: true,
            run_as_user: Some(DEFAULT_UID),
            read_only_root_filesystem: true,
            drop_all_capabilities: true,
            allow_privilege_escalation: false,
            seccomp_runtime_default: true,
            automount_service_account_token: false,
        }
    }
}

/// What an agent is, as validated configuration.
#[derive(Clone, Debug, Default)]
pub struct AgentSpec {
    pub namespace: String,
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// `None`: left to whoever else manages it (an autoscaler).
    pub replicas: Option<i32>,
    pub env: BTreeMap<String, String>,
    /// Names only here; values go to the Secret, never to the Deployment.
    pub secret_env: BTreeMap<String, String>,
    /// Write-only secret env: known at apply only (empty when judging
    /// drift, so only `secret_env` keys are compared).
    pub secret_env_wo: BTreeMap<String, String>,
    /// Set with `secret_env_wo`: its changes roll the pods.
    pub secret_env_wo_version: Option<i64>,
    pub ports: Vec<Port>,
    pub resources: Resources,
    pub security: Security,
    /// File name → content, mounted read-only at `config_path`.
    pub config_files: BTreeMap<String, String>,
    pub config_path: String,
    pub storage: Option<Storage>,
    pub readiness_probe: Option<Probe>,
    pub liveness_probe: Option<Probe>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<TolerationSpec>,
    pub ingress: Option<IngressSpec>,
    /// The value of the [`LAST_APPLIED`] annotation.
    pub last_applied: Option<String>,
}

/// A readiness or liveness check: a command, an HTTP GET, or a TCP connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    /// Run this command (exit 0 = healthy).
    pub command: Vec<String>,
    /// GET this path on `port`.
    pub http_path: Option<String>,
    /// A port name or number; the agent's first port when unset.
    pub port: Option<String>,
    pub initial_delay_seconds: Option<i32>,
    pub period_seconds: Option<i32>,
    pub failure_threshold: Option<i32>,
}

/// A persistent volume claimed for the agent and mounted at `mount_path`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Storage {
    /// A quantity, e.g. "5Gi".
    pub size: String,
    pub mount_path: String,
    /// The cluster's default class when unset.
    pub storage_class: Option<String>,
}

/// A toleration of node taints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TolerationSpec {
    pub key: Option<String>,
    /// "Equal" or "Exists".
    pub operator: Option<String>,
    pub value: Option<String>,
    /// "NoSchedule", "PreferNoSchedule" or "NoExecute"; all when unset.
    pub effect: Option<String>,
}

/// HTTP(S) routing from outside the cluster to the agent's first port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressSpec {
    pub host: String,
    pub path: String,
    /// Serve TLS with a certificate in the Secret `<name>-tls` (obtained by
    /// cert-manager when `issuer` is set).
    pub tls: bool,
    pub class: Option<String>,
    /// A cert-manager ClusterIssuer.
    pub issuer: Option<String>,
}
