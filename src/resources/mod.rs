//! The provider's resources, data sources and ephemeral resources.

mod agent;
mod backup_schedule;
pub mod connection;
pub mod gateway_token;
mod host_facts;
mod k8s_cluster;
pub(crate) use k8s_cluster::ca_certificate;
mod kube_object;
mod network_policy;
mod provider;
pub(crate) mod state;
mod vps_host;

pub use provider::{SelfhostProvider, provider};
