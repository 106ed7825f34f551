//! terraform-provider-selfhost: a Terraform/OpenTofu provider that declares a
//! self-hosted platform (hosts, cluster, workloads) in HCL.

pub mod backup;
pub mod cluster;
pub mod docs;
pub mod download;
pub mod framework;
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod kube;
pub mod logging;
pub mod network;
pub mod plugin;
pub mod resources;
pub mod sensitive;
pub mod shell;
pub mod ssh;
