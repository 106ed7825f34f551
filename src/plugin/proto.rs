//! Messages and services generated from `proto/` by `build.rs`.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Terraform plugin protocol 6 (`tfplugin6`).
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// go-plugin's services (`plugin`): controller, stdio, broker.
pub mod plugin {
    tonic::include_proto!("plugin");
}
