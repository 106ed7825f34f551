//! kubeadm and k3s clusters on prepared hosts, as data and scripts: no I/O
//! here (`k3s` holds k3s's files and scripts; the rest is kubeadm's).
//!
//! What `selfhost_k8s_cluster` will run over the SSH layer is decided in
//! this module from a validated [`ClusterSpec`]: the kubeadm configuration
//! files (init and join), containerd's `config.toml`, and the scripts that
//! install an air-gapped bundle and reset a node. It follows, step for
//! step, what `testbed/selftest-kubeadm` proves on the test bed's hosts
//! with plain shell; the resource drives these pieces through `host::Exec`.
//!
//! Every value that reaches a script is validated here first and quoted by
//! [`crate::shell::quote`]; configuration files are rendered with serde
//! (JSON documents, which kubeadm's YAML reader takes as they are), never by
//! pasting text into YAML.

pub mod apiserver;
pub mod bundle;
pub mod cni;
pub mod containerd;
pub mod facts;
pub mod k3s;
pub mod kubeadm;
pub mod node;
pub mod probe;
pub mod release;
pub mod reset;
pub mod spec;
pub mod upgrade;

pub use spec::{CgroupDriver, ClusterSpec, NodeSettings, Version};
