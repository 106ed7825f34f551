//! The wire: go-plugin handshake, mTLS and the tonic services for tfplugin6.
//! Knows protobuf; knows nothing of hosts or Kubernetes.

pub mod conn;
pub mod controller;
pub mod convert;
pub mod handshake;
pub mod listener;
pub mod proto;
pub mod provider_service;
pub mod serve;
pub mod stdio;
pub mod tls;

pub use serve::{PluginEnv, ServeError, ServeOptions, serve};
