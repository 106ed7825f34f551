//! What an agent is, as validated configuration: the data the renderers
//! ([`super::agent`], [`super::agent_parts`]) turn into objects. Kept apart
//! so both renderers depend on it and not on each other.

use std::collections::BTreeMap;

/// The user and group the pod runs as unless told otherwise (non-root).
pub const DEFAULT_UID: i64 = 65532;

/// One named port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// The port's name, used by the Service and by probes that refer to it.
    pub name: String,
    /// The container port number.
    pub port: i32,
    /// "TCP" or "UDP".
    pub protocol: String,
}

/// Requests and limits as Kubernetes quantities ("250m", "512Mi").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU the scheduler reserves for the container.
    pub cpu_request: Option<String>,
    /// CPU the container is throttled at.
    pub cpu_limit: Option<String>,
    /// Memory the scheduler reserves for the container.
    pub memory_request: Option<String>,
    /// Memory above which the container is killed.
    pub memory_limit: Option<String>,
}

/// The isolation settings; [`Security::default`] is the secure default,
/// each overridable explicitly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Security {
    /// Refuse to start the container as root.
    pub run_as_non_root: bool,
    /// The user and group the container runs as; the image's own when `None`.
    pub run_as_user: Option<i64>,
    /// Mount the container's root filesystem read-only.
    pub read_only_root_filesystem: bool,
    /// Drop every Linux capability.
    pub drop_all_capabilities: bool,
    /// Let processes gain more privileges than their parent (setuid binaries).
    pub allow_privilege_escalation: bool,
    /// Confine syscalls with the runtime's default seccomp profile.
    pub seccomp_runtime_default: bool,
    /// Mount the service account's API token into the pod.
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
    /// The namespace the agent's objects live in.
    pub namespace: String,
    /// The agent's name, shared by its Deployment, Service and other objects.
    pub name: String,
    /// The container image to run.
    pub image: String,
    /// Overrides the image's entrypoint; the image's own when empty.
    pub command: Vec<String>,
    /// Arguments to the entrypoint; the image's own when empty.
    pub args: Vec<String>,
    /// `None`: left to whoever else manages it (an autoscaler). Never
    /// applied with `autoscaling`, whose autoscaler owns the count.
    pub replicas: Option<i32>,
    /// Plain environment variables, visible in the Deployment.
    pub env: BTreeMap<String, String>,
    /// Names only here; values go to the Secret, never to the Deployment.
    pub secret_env: BTreeMap<String, String>,
    /// Write-only secret env: known at apply only (empty when judging
    /// drift, so only `secret_env` keys are compared).
    pub secret_env_wo: BTreeMap<String, String>,
    /// Set with `secret_env_wo`: its changes roll the pods.
    pub secret_env_wo_version: Option<i64>,
    /// The ports the container listens on, exposed by the agent's Service.
    pub ports: Vec<Port>,
    /// CPU and memory requests and limits.
    pub resources: Resources,
    /// The pod's isolation settings.
    pub security: Security,
    /// File name → content, mounted read-only at `config_path`.
    pub config_files: BTreeMap<String, String>,
    /// The directory the `config_files` are mounted in.
    pub config_path: String,
    /// A persistent volume for the agent's data, if any.
    pub storage: Option<Storage>,
    /// How Kubernetes decides the pod may receive traffic.
    pub readiness_probe: Option<Probe>,
    /// How Kubernetes decides the container must be restarted.
    pub liveness_probe: Option<Probe>,
    /// Node labels the pod must be scheduled on.
    pub node_selector: BTreeMap<String, String>,
    /// Seconds of `preStop` sleep before SIGTERM (endpoints drop the pod
    /// first); the grace period grows by as much.
    pub shutdown_delay_seconds: Option<i32>,
    /// Node taints the pod may be scheduled despite.
    pub tolerations: Vec<TolerationSpec>,
    /// Routing from outside the cluster, if any.
    pub ingress: Option<IngressSpec>,
    /// A HorizontalPodAutoscaler owning the replica count, if any.
    pub autoscaling: Option<AutoscalingSpec>,
    /// A PodDisruptionBudget limiting voluntary evictions (node drains), if any.
    pub disruption_budget: Option<DisruptionBudgetSpec>,
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
    /// Seconds to wait after the container starts before the first check.
    pub initial_delay_seconds: Option<i32>,
    /// Seconds between checks.
    pub period_seconds: Option<i32>,
    /// Failed checks in a row before the probe counts as failed.
    pub failure_threshold: Option<i32>,
}

/// A persistent volume claimed for the agent and mounted at `mount_path`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Storage {
    /// A quantity, e.g. "5Gi".
    pub size: String,
    /// Where the volume is mounted in the container.
    pub mount_path: String,
    /// The cluster's default class when unset.
    pub storage_class: Option<String>,
}

/// A toleration of node taints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TolerationSpec {
    /// The taint key tolerated; every key when unset (with operator "Exists").
    pub key: Option<String>,
    /// "Equal" or "Exists".
    pub operator: Option<String>,
    /// The taint value to match with operator "Equal".
    pub value: Option<String>,
    /// "NoSchedule", "PreferNoSchedule" or "NoExecute"; all when unset.
    pub effect: Option<String>,
}

/// HTTP(S) routing from outside the cluster to the agent's first port,
/// through the cluster's traefik add-on ([`super::addons::traefik`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressSpec {
    /// The host name the Ingress routes, e.g. `agent.example.com`.
    pub host: String,
    /// The path prefix routed to the agent.
    pub path: String,
    /// Serve HTTPS on traefik's `websecure` entrypoint with a certificate
    /// traefik obtains from its ACME resolver; plain HTTP on `web` when false.
    pub tls: bool,
    /// The IngressClass to use; the cluster's default when unset.
    pub class: Option<String>,
}

/// A HorizontalPodAutoscaler (autoscaling/v2) of the agent's Deployment,
/// on the pods' average CPU and/or memory utilisation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AutoscalingSpec {
    /// Fewest pods (at least 1).
    pub min_replicas: i32,
    /// Most pods (at least `min_replicas`).
    pub max_replicas: i32,
    /// Target average CPU utilisation, percent of the CPU request.
    pub cpu_percent: Option<i32>,
    /// Target average memory utilisation, percent of the memory request.
    pub memory_percent: Option<i32>,
}

/// A number of pods as a disruption budget counts them: a whole number, or
/// a percentage of the agent's replicas (Kubernetes' IntOrString).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodCount {
    /// So many pods, e.g. `"1"`.
    Pods(i32),
    /// This percentage of the replicas (0 to 100), e.g. `"50%"`.
    Percent(i32),
}

impl PodCount {
    /// Parse `"1"` or `"50%"` (no sign, no spaces, at most 100 %).
    ///
    /// # Errors
    /// A message saying what is wrong with `s` and what to write.
    pub fn parse(s: &str) -> Result<PodCount, String> {
        let hint = "write a whole number of pods such as \"1\", or a percentage of the replicas such as \"50%\"";
        let (digits, percent) = match s.strip_suffix('%') {
            Some(d) => (d, true),
            None => (s, false),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} is not a pod count; {hint}"));
        }
        let n: i32 = digits.parse().map_err(|_| format!("{s:?} is too large; {hint}"))?;
        match (percent, n) {
            (true, 0..=100) => Ok(PodCount::Percent(n)),
            (true, _) => Err(format!("{s:?} is more than 100%")),
            (false, _) => Ok(PodCount::Pods(n)),
        }
    }

    /// The number of pods out of `replicas`, rounded up as Kubernetes'
    /// disruption controller rounds both `minAvailable` and `maxUnavailable`.
    pub fn of(self, replicas: i32) -> i32 {
        match self {
            PodCount::Pods(n) => n,
            PodCount::Percent(p) => {
                let scaled = (i64::from(p) * i64::from(replicas.max(0)) + 99) / 100;
                i32::try_from(scaled).unwrap_or(i32::MAX)
            }
        }
    }
}

impl std::fmt::Display for PodCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PodCount::Pods(n) => write!(f, "{n}"),
            PodCount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// The schema check of a pod count attribute ([`PodCount::parse`]).
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn check_pod_count(s: &str) -> Result<(), String> {
    PodCount::parse(s).map(|_| ())
}

/// A PodDisruptionBudget (policy/v1) over the agent's pods: how many must
/// stay available, or how many may be unavailable, while nodes are drained.
/// Exactly one of the two (validation refuses both or neither).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DisruptionBudgetSpec {
    /// Pods that must stay available during voluntary evictions.
    pub min_available: Option<PodCount>,
    /// Pods that may be unavailable at once during voluntary evictions.
    pub max_unavailable: Option<PodCount>,
}

impl DisruptionBudgetSpec {
    /// How many of `replicas` healthy pods may be evicted at once (what the
    /// budget's `status.disruptionsAllowed` would say).
    pub fn evictions_allowed(&self, replicas: i32) -> i32 {
        let desired_healthy = match (self.min_available, self.max_unavailable) {
            (Some(min), _) => min.of(replicas),
            (None, Some(max)) => (replicas - max.of(replicas)).max(0),
            (None, None) => 0,
        };
        (replicas - desired_healthy).max(0)
    }

    /// Whether the budget lets no pod go whatever the number of replicas
    /// (`min_available = "100%"`, `max_unavailable = "0"` or `"0%"`).
    pub fn never_allows_eviction(&self) -> bool {
        matches!(
            (self.min_available, self.max_unavailable),
            (Some(PodCount::Percent(100)), _) | (None, Some(PodCount::Pods(0) | PodCount::Percent(0)))
        )
    }
}
