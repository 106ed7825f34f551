//! The Kubernetes layer: a client per kubeconfig, server-side apply under
//! the provider's field manager, reads, deletes that wait until the object
//! is gone, and typed errors that tell a refusal from a transient failure.
//!
//! Split by how much I/O a part does: [`names`], [`objects`], [`agent`] and
//! [`drift`] build and compare objects without I/O (unit-tested); [`client`]
//! talks to the API server, retrying transient failures within a
//! [`Deadline`].

pub mod addons;
pub mod agent;
pub mod agent_parts;
pub mod agent_spec;
pub mod client;
pub mod cluster_scoped;
pub mod deployer;
pub mod drift;
pub mod error;
pub mod manifest;
pub mod names;
pub mod namespace;
pub mod network_policy;
pub mod objects;
pub mod pod_security;
pub mod rollout;
pub mod token_request;

pub use client::{Clients, Deadline, Kube};
pub use error::KubeError;

/// The field manager of every server-side apply this provider makes, and
/// the value of the `app.kubernetes.io/managed-by` label on what it creates.
pub const FIELD_MANAGER: &str = "terraform-provider-selfhost";

/// The annotation holding what the provider applied, without secrets or
/// computed values (JSON), on the main object of every resource it
/// manages in Kubernetes: `terraform import namespace/name` rebuilds the
/// configuration from it.
pub const LAST_APPLIED: &str = "selfhost.dev/last-applied";
