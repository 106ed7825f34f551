//! The schema of `selfhost_agent`: attribute names follow the canonical
//! example of DESIGN.md; every string Kubernetes would refuse is checked at
//! validate time with its attribute path.

use std::time::Duration;

use crate::framework::schema::{NestedBlock, Nesting};
use crate::framework::timeouts::{self, Operation};
use crate::framework::validator::{Check, IntBetween, OneOf};
use crate::framework::{Attribute, Block, Schema, Type};
use crate::kube::addons::traefik::{INGRESS_CLASS, RESOLVER, WEB, WEBSECURE};
use crate::kube::agent::check_pod_count;
use crate::kube::agent_parts::UNHEALTHY_POD_EVICTION_POLICY;
use crate::kube::names::{
    check_data_key, check_env_name, check_image, check_label, check_label_key, check_label_value, check_mount_path,
    check_quantity,
};
use crate::resources::kube_object::common_attributes;

pub const CREATE_LIMIT: Duration = Duration::from_secs(600);
pub const UPDATE_LIMIT: Duration = Duration::from_secs(600);
pub const DELETE_LIMIT: Duration = Duration::from_secs(300);
pub const DEFAULT_CONFIG_PATH: &str = "/config";
/// 1: `ingress.issuer` removed (traefik's ACME resolver replaces cert-manager).
pub const SCHEMA_VERSION: i64 = 1;
/// The block of the PodDisruptionBudget.
pub const DISRUPTION_BUDGET: &str = "disruption_budget";

const QUANTITY: Check = Check::values(
    "Invalid quantity",
    "must be a Kubernetes quantity such as \"250m\", \"1\", \"512Mi\"",
    check_quantity,
);

fn port_block() -> NestedBlock {
    NestedBlock::new(
        "port",
        Nesting::List,
        Block::new()
            .description("A port the agent listens on; together they make its ClusterIP Service.")
            .attribute(
                Attribute::string("name")
                    .required()
                    .description("Port name (an RFC 1123 label of at most 15 characters), e.g. \"http\".")
                    .validator(Check::values(
                        "Invalid port name",
                        "must be an RFC 1123 label of at most 15 characters",
                        |s| {
                            check_label(s)?;
                            if s.len() > 15 {
                                return Err(format!("{s:?} is longer than 15 characters"));
                            }
                            if !s.chars().any(|c| c.is_ascii_lowercase()) {
                                return Err(format!("{s:?} must contain a letter"));
                            }
                            Ok(())
                        },
                    )),
            )
            .attribute(
                Attribute::number("port")
                    .required()
                    .description("Port number, served by the Service on the same number.")
                    .validator(IntBetween { min: 1, max: 65535 }),
            )
            .attribute(
                Attribute::string("protocol")
                    .optional()
                    .computed()
                    .default_value("TCP")
                    .description("\"TCP\" (default), \"UDP\" or \"SCTP\".")
                    .validator(OneOf(&["TCP", "UDP", "SCTP"])),
            ),
    )
}

fn resources_block() -> NestedBlock {
    let q = |name: &str, what: &str| Attribute::string(name).optional().description(what).validator(QUANTITY);
    NestedBlock::new(
        "resources",
        Nesting::Single,
        Block::new()
            .description("CPU and memory requests and limits of the agent's container.")
            .attribute(q("cpu_request", "CPU reserved, e.g. \"250m\"."))
            .attribute(q("cpu_limit", "CPU cap, e.g. \"1\"."))
            .attribute(q("memory_request", "Memory reserved, e.g. \"256Mi\"."))
            .attribute(q("memory_limit", "Memory cap, e.g. \"512Mi\".")),
    )
}

fn storage_block() -> NestedBlock {
    NestedBlock::new(
        "storage",
        Nesting::Single,
        Block::new()
            .description(
                "A persistent volume (a ReadWriteOnce PersistentVolumeClaim `<name>-data`) mounted in the agent; pods are then replaced, not rolled. Adding, removing or changing it creates a new agent.",
            )
            .attribute(
                Attribute::string("size")
                    .required()
                    .description("Size, e.g. \"5Gi\".")
                    .validator(QUANTITY),
            )
            .attribute(
                Attribute::string("mount_path")
                    .required()
                    .description("Where it is mounted, e.g. \"/data\".")
                    .validator(Check::values("Invalid path", "must be an absolute path", check_mount_path)),
            )
            .attribute(
                Attribute::string("storage_class")
                    .optional()
                    .description("StorageClass; the cluster's default when unset.")
                    .validator(Check::values(
                        "Invalid storage class",
                        "must be an RFC 1123 subdomain",
                        crate::kube::names::check_subdomain,
                    )),
            ),
    )
}

fn probe_block(name: &str, what: &str) -> NestedBlock {
    let seconds = |n: &str, d: &str| {
        Attribute::number(n)
            .optional()
            .description(d)
            .validator(IntBetween { min: 0, max: 3600 })
    };
    NestedBlock::new(
        name,
        Nesting::Single,
        Block::new()
            .description(what)
            .attribute(
                Attribute::of_type("command", Type::list(Type::String))
                    .optional()
                    .description("Run this command in the container; exit status 0 passes."),
            )
            .attribute(
                Attribute::string("http_path")
                    .optional()
                    .description("GET this path (e.g. \"/healthz\"); a 2xx or 3xx answer passes."),
            )
            .attribute(Attribute::string("port").optional().description(
                "Port name or number to check (HTTP, or a TCP connect when neither `command` nor `http_path` is set); the first `port` block when unset.",
            ))
            .attribute(seconds("initial_delay_seconds", "Seconds before the first check."))
            .attribute(seconds("period_seconds", "Seconds between checks."))
            .attribute(
                Attribute::number("failure_threshold")
                    .optional()
                    .description("Failed checks in a row that count as failure.")
                    .validator(IntBetween { min: 1, max: 100 }),
            ),
    )
}

fn toleration_block() -> NestedBlock {
    NestedBlock::new(
        "toleration",
        Nesting::List,
        Block::new()
            .description("A node taint the agent's pods tolerate.")
            .attribute(
                Attribute::string("key")
                    .optional()
                    .description("Taint key; every key when unset (with operator \"Exists\").")
                    .validator(Check::values(
                        "Invalid label key",
                        "must be a label key",
                        check_label_key,
                    )),
            )
            .attribute(
                Attribute::string("operator")
                    .optional()
                    .description("\"Equal\" (default) or \"Exists\".")
                    .validator(OneOf(&["Equal", "Exists"])),
            )
            .attribute(
                Attribute::string("value")
                    .optional()
                    .description("Taint value (with \"Equal\")."),
            )
            .attribute(
                Attribute::string("effect")
                    .optional()
                    .description("\"NoSchedule\", \"PreferNoSchedule\" or \"NoExecute\"; every effect when unset.")
                    .validator(OneOf(&["NoSchedule", "PreferNoSchedule", "NoExecute"])),
            ),
    )
}

fn security_block() -> NestedBlock {
    let flag = |n: &str, d: &str| Attribute::bool(n).optional().description(d);
    NestedBlock::new(
        "security",
        Nesting::Single,
        Block::new()
            .description(
                "Overrides of the isolation defaults. Without this block (or with an attribute unset) the agent runs as a non-root user (65532), with a read-only root filesystem (and a writable emptyDir at /tmp), every capability dropped, no privilege escalation, the RuntimeDefault seccomp profile and no service account token: it passes the \"restricted\" Pod Security level, which `selfhost_k8s_cluster` namespaces enforce by default. Turning off `run_as_non_root`, `drop_all_capabilities` or `seccomp_runtime_default`, or setting `allow_privilege_escalation = true` or `run_as_user = 0`, breaks \"restricted\": such an agent needs a namespace with `pod_security = \"baseline\"` (or \"privileged\"), else its pods are refused.",
            )
            .attribute(flag("run_as_non_root", "Refuse to start as root (default true)."))
            .attribute(
                Attribute::number("run_as_user")
                    .optional()
                    .description("User and group id of the processes (default 65532).")
                    .validator(IntBetween {
                        min: 0,
                        max: 2_147_483_647,
                    }),
            )
            .attribute(flag(
                "read_only_root_filesystem",
                "Read-only root filesystem with a writable /tmp (default true).",
            ))
            .attribute(flag("drop_all_capabilities", "Drop every Linux capability (default true)."))
            .attribute(flag(
                "allow_privilege_escalation",
                "Allow setuid binaries to gain privileges (default false).",
            ))
            .attribute(flag(
                "seccomp_runtime_default",
                "Use the container runtime's default seccomp profile (default true).",
            ))
            .attribute(flag(
                "automount_service_account_token",
                "Mount a Kubernetes API token in the pod (default false).",
            )),
    )
}

fn ingress_block() -> NestedBlock {
    NestedBlock::new(
        "ingress",
        Nesting::Single,
        Block::new()
            .description(
                "An Ingress routing HTTP(S) from outside the cluster to the agent's first port, through the cluster's traefik (the ingress add-on of `selfhost_k8s_cluster`). With `tls` (the default) traefik serves HTTPS and obtains the certificate itself from its ACME resolver (HTTP-01: `host` must resolve to the cluster and port 80 be reachable); HTTP is redirected to HTTPS. (`issuer` is gone: see \"Upgrading\".)",
            )
            .attribute(
                Attribute::string("host")
                    .required()
                    .description("Host name, e.g. \"research.example.com\".")
                    .validator(Check::values(
                        "Invalid host",
                        "must be a DNS name",
                        crate::kube::names::check_subdomain,
                    )),
            )
            .attribute(
                Attribute::string("path")
                    .optional()
                    .computed()
                    .default_value("/")
                    .description("Path prefix (default \"/\")."),
            )
            .attribute(
                Attribute::bool("tls")
                    .optional()
                    .computed()
                    .default_value(true)
                    .description(&format!(
                        "Serve HTTPS (traefik's `{WEBSECURE}` entrypoint) with a certificate traefik obtains from its ACME resolver `{RESOLVER}` (default true); false serves plain HTTP on the `{WEB}` entrypoint."
                    )),
            )
            .attribute(
                Attribute::string("class")
                    .optional()
                    .description(&format!("IngressClass; the cluster's default (`{INGRESS_CLASS}`) when unset."))
                    .validator(Check::values(
                        "Invalid ingress class",
                        "must be an RFC 1123 subdomain",
                        crate::kube::names::check_subdomain,
                    )),
            ),
    )
}

fn autoscaling_block() -> NestedBlock {
    let percent = |name: &str, what: &str| {
        Attribute::number(name)
            .optional()
            .description(&format!(
                "Target average {what} utilisation, in percent of the container's {what} request (`resources.{what}_request`, or the limit it defaults to)."
            ))
            .validator(IntBetween { min: 1, max: 100 })
    };
    NestedBlock::new(
        "autoscaling",
        Nesting::Single,
        Block::new()
            .description(
                "A HorizontalPodAutoscaler (autoscaling/v2) `<name>` that keeps the Deployment between `min_replicas` and `max_replicas` pods, aiming at `cpu_percent` and/or `memory_percent` average utilisation (at least one). The Deployment's replica count is then the autoscaler's: `replicas` must be unset. Needs the cluster's resource metrics API (metrics-server).",
            )
            .attribute(
                Attribute::number("min_replicas")
                    .optional()
                    .computed()
                    .default_value(1)
                    .description("Fewest pods (default 1).")
                    .validator(IntBetween { min: 1, max: 1000 }),
            )
            .attribute(
                Attribute::number("max_replicas")
                    .required()
                    .description("Most pods; at least `min_replicas`.")
                    .validator(IntBetween { min: 1, max: 1000 }),
            )
            .attribute(percent("cpu_percent", "cpu"))
            .attribute(percent("memory_percent", "memory")),
    )
}

fn disruption_budget_block() -> NestedBlock {
    let count = |name: &str, what: &str| {
        Attribute::string(name)
            .optional()
            .description(what)
            .validator(Check::values(
                "Invalid pod count",
                "must be a whole number of pods such as \"1\" or a percentage of the replicas such as \"50%\"",
                check_pod_count,
            ))
    };
    NestedBlock::new(
        DISRUPTION_BUDGET,
        Nesting::Single,
        Block::new()
            .description(format!(
                "A PodDisruptionBudget (policy/v1) `<name>` over exactly the agent's pods, so that node drains (`kubectl drain`, and each node drained in turn by an in-place upgrade of `selfhost_k8s_cluster`) evict them only while enough stay serving. Set exactly one of `min_available` and `max_unavailable`. The budget must let at least one pod go at the agent's `replicas` (with `autoscaling`, at `autoscaling.min_replicas`), or a drain could never proceed: `validate` refuses it. Pods that are not Ready may always be evicted (`unhealthyPodEvictionPolicy: {UNHEALTHY_POD_EVICTION_POLICY}`): they serve nothing."
            ).as_str())
            .attribute(count(
                "min_available",
                "Pods that must stay available while nodes drain (a number may be written unquoted; a percentage rounds up). Conflicts with `max_unavailable`.",
            ))
            .attribute(count(
                "max_unavailable",
                "Pods that may be evicted at once while nodes drain (a number may be written unquoted; a percentage rounds up). Conflicts with `min_available`.",
            )),
    )
}

/// The schema.
pub fn schema() -> Schema {
    let env_keys = Check::keys(
        "Invalid environment variable name",
        "must be environment variable names (letters, digits, '_')",
        check_env_name,
    );
    let block = common_attributes(
        Block::new().description(
            "One isolated workload: a Deployment with a secure-by-default pod, a ClusterIP Service for its ports, a Secret for its secret environment, a ConfigMap for its config files, an optional persistent volume, Ingress, HorizontalPodAutoscaler and PodDisruptionBudget. Applied server-side under the field manager `terraform-provider-selfhost`; drift is judged on the fields it manages only.",
        ),
        "agent (its Deployment, Service, ...)",
    )
    .attribute(
        Attribute::string("image")
            .required()
            .description("Container image, e.g. \"ghcr.io/org/agent:1.2\".")
            .validator(Check::values("Invalid image reference", "must be an image reference", check_image)),
    )
    .attribute(
        Attribute::of_type("command", Type::list(Type::String))
            .optional()
            .description("Entrypoint override."),
    )
    .attribute(
        Attribute::of_type("args", Type::list(Type::String))
            .optional()
            .description("Arguments."),
    )
    .attribute(
        Attribute::number("replicas")
            .optional()
            .description(
                "Number of pods. When unset, left to whoever else scales it (an autoscaler); never drift. Conflicts with `autoscaling`.",
            )
            .validator(IntBetween { min: 0, max: 1000 }),
    )
    .attribute(
        Attribute::of_type("env", Type::map(Type::String))
            .optional()
            .description("Environment variables.")
            .validator(Check::keys(
                "Invalid environment variable name",
                "must be environment variable names (letters, digits, '_')",
                check_env_name,
            )),
    )
    .attribute(
        Attribute::of_type("secret_env", Type::map(Type::String))
            .optional()
            .sensitive()
            .description("Secret environment variables, kept in the Secret `<name>-env`. Sensitive.")
            .validator(env_keys),
    )
    .attribute(
        Attribute::of_type("secret_env_wo", Type::map(Type::String))
            .optional()
            .write_only()
            .description(
                "Secret environment variables that never reach plan or state (write-only, Terraform 1.11+); written to the Secret `<name>-env` whenever the agent is applied. Change `secret_env_wo_version` to roll new values.",
            )
            .validator(Check::keys(
                "Invalid environment variable name",
                "must be environment variable names (letters, digits, '_')",
                check_env_name,
            )),
    )
    .attribute(
        Attribute::number("secret_env_wo_version")
            .optional()
            .description("Required with `secret_env_wo`: change it to write new values (and restart the pods).")
            .validator(IntBetween {
                min: 0,
                max: i64::MAX,
            }),
    )
    .attribute(
        Attribute::of_type("config_files", Type::map(Type::String))
            .optional()
            .description("Config files (file name → content), kept in the ConfigMap `<name>-config` and mounted read-only at `config_path`; a change restarts the pods.")
            .validator(Check::keys("Invalid file name", "must be valid ConfigMap keys", check_data_key)),
    )
    .attribute(
        Attribute::string("config_path")
            .optional()
            .computed()
            .default_value(DEFAULT_CONFIG_PATH)
            .description("Directory where `config_files` are mounted (default \"/config\").")
            .validator(Check::values("Invalid path", "must be an absolute path", check_mount_path)),
    )
    .attribute(
        Attribute::of_type("node_selector", Type::map(Type::String))
            .optional()
            .description("Node labels the agent's pods must run on.")
            .validator(Check::keys("Invalid label key", "must be label keys", check_label_key))
            .validator(Check::values("Invalid label value", "must be label values", check_label_value)),
    )
    .attribute(
        Attribute::number("shutdown_delay_seconds")
            .optional()
            .description("Seconds a pod keeps serving after Kubernetes decides to stop it (a `preStop` sleep before SIGTERM), so Services and ingresses stop sending it requests first; its grace period becomes this plus 30 s. With `replicas` >= 2 and a `disruption_budget`, node drains (a cluster upgrade) and rollouts then lose no request. 1 to 300; unset: no delay (the container gets SIGTERM at once, as Kubernetes does by default).")
            .validator(IntBetween { min: 1, max: 300 }),
    )
    .attribute(
        Attribute::bool("wait_for_rollout")
            .optional()
            .computed()
            .default_value(true)
            .description(
                "Wait until every replica runs the new pod template and is ready (default true), within the create/update timeout; pods refused by a ResourceQuota fail the apply at once, naming the quota.",
            ),
    )
    .attribute(
        Attribute::string("service_dns")
            .computed()
            .description("The Service's DNS name `name.namespace.svc.cluster.local`; null without ports."),
    )
    .block(port_block())
    .block(resources_block())
    .block(storage_block())
    .block(probe_block("readiness_probe", "When the agent is ready for traffic (and counts as rolled out)."))
    .block(probe_block("liveness_probe", "When the agent is stuck and must be restarted."))
    .block(toleration_block())
    .block(security_block())
    .block(ingress_block())
    .block(autoscaling_block())
    .block(disruption_budget_block())
    .block(timeouts::block(&[
        (Operation::Create, CREATE_LIMIT),
        (Operation::Update, UPDATE_LIMIT),
        (Operation::Delete, DELETE_LIMIT),
    ]));
    Schema::new(SCHEMA_VERSION, block)
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_is_well_formed() {
        let problems = super::schema().check();
        assert!(problems.is_empty(), "{problems:?}");
    }
}
