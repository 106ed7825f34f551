//! The provider's resources, data sources and ephemeral resources.

mod agent;
pub mod connection;
pub mod gateway_token;
mod host_facts;
mod k8s_cluster;
mod kube_object;
mod network_policy;
mod provider;
mod vps_host;

pub use provider::{SelfhostProvider, provider};
