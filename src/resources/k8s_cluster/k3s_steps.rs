//! The steps of a k3s node, over SSH: prepare (the binary, the air-gap
//! images, its configuration and unit), start the server, join an agent
//! with the server's node-token, restart, drain, uninstall. Idempotent
//! like the kubeadm steps, so an apply after a failure picks up where the
//! last one stopped.

use crate::cluster::ClusterSpec;
use crate::cluster::k3s::{self, K3sRole, NodeToken};
use crate::cluster::node::{BUNDLE_DIR, drain_script};
use crate::framework::Diagnostic;
use crate::framework::resource::Context;
use crate::network::Hostname;

use super::node::{NodeHandle, error};
use super::payload::Payload;
use super::steps::upload_payload;

/// The binary, the images, the kubelet drop-in and the unit on `node`;
/// the server's `config.yaml` too (an agent's holds the token: it is
/// written when it joins).
pub async fn prepare(
    ctx: &Context,
    node: &NodeHandle,
    name: &Hostname,
    spec: &ClusterSpec,
    payload: &Payload,
    role: K3sRole,
    flannel: bool,
) -> Result<(), Diagnostic> {
    let label = &node.label;
    tracing::info!(host = %label, "{label}: preparing the node (k3s {} {})", role.unit_name(), spec.version);
    upload_payload(ctx, node, payload).await?;
    tracing::info!(host = %label, "{label}: installing k3s and its images");
    node.run(ctx, "installing k3s", &k3s::install_script(BUNDLE_DIR), b"")
        .await?;
    node.upload(
        ctx,
        k3s::KUBELET_DROP_IN,
        k3s::kubelet_drop_in(spec, name).as_bytes(),
        0o644,
    )
    .await?;
    if role == K3sRole::Server {
        // the API server refuses to start without the policy its flags name
        if spec.api_server.audit_log {
            node.run(
                ctx,
                "creating k3s's server directory",
                &format!("mkdir -p -m 0700 {}", k3s::SERVER_DIR),
                b"",
            )
            .await?;
            node.upload(
                ctx,
                k3s::AUDIT_POLICY,
                crate::cluster::apiserver::audit_policy().as_bytes(),
                0o600,
            )
            .await?;
        }
        let config = k3s::server_config(spec, name, node.host(), flannel);
        node.upload(ctx, k3s::CONFIG, config.as_bytes(), 0o600).await?;
    }
    node.upload(ctx, role.unit_path(), k3s::unit(role).as_bytes(), 0o644)
        .await?;
    Ok(())
}

/// Start the server; returns once k3s reports ready.
pub async fn start_server(ctx: &Context, cp: &NodeHandle) -> Result<(), Diagnostic> {
    let label = &cp.label;
    tracing::info!(host = %label, "{label}: starting k3s server");
    cp.run(ctx, "starting k3s server", &k3s::start_script(K3sRole::Server), b"")
        .await?;
    tracing::info!(host = %label, "{label}: k3s server ready");
    Ok(())
}

/// The admin kubeconfig k3s wrote, pointed at the address Terraform
/// reaches (never logged).
pub async fn admin_kubeconfig(ctx: &Context, cp: &NodeHandle) -> Result<String, Diagnostic> {
    let local = cp
        .run_secret(ctx, "reading the admin kubeconfig", &format!("cat {}", k3s::KUBECONFIG))
        .await?;
    k3s::kubeconfig_for(&local, cp.host()).map_err(|m| {
        error(
            "Cluster step failed: kubeconfig",
            format!("{}: {m}.", cp.label),
            Some(cp.role.path()),
        )
    })
}

/// Join `worker` as a k3s agent with the server's node-token.
pub async fn join(
    ctx: &Context,
    cp: &NodeHandle,
    worker: &NodeHandle,
    name: &Hostname,
    spec: &ClusterSpec,
) -> Result<(), Diagnostic> {
    let label = &worker.label;
    tracing::info!(host = %label, "{label}: joining as a k3s agent");
    let text = cp
        .run_secret(
            ctx,
            "reading the server's node-token",
            &format!("cat {}", k3s::NODE_TOKEN),
        )
        .await?;
    let token = NodeToken::parse(&text).map_err(|m| {
        error(
            "Cluster step failed: node-token",
            format!("{}: {m}.", cp.label),
            Some(cp.role.path()),
        )
    })?;
    let config = k3s::agent_config(spec, name, worker.host(), &token);
    worker.upload(ctx, k3s::CONFIG, config.as_bytes(), 0o600).await?;
    worker
        .run(ctx, "starting k3s agent", &k3s::start_script(K3sRole::Agent), b"")
        .await?;
    tracing::info!(host = %label, "{label}: joined as {}", name.as_str());
    Ok(())
}

/// Restart the node's k3s unit.
pub async fn restart(ctx: &Context, node: &NodeHandle, role: K3sRole) -> Result<(), Diagnostic> {
    let label = &node.label;
    tracing::info!(host = %label, "{label}: restarting {}", role.unit_name());
    node.run(ctx, "restarting k3s", &k3s::restart_script(role), b"")
        .await
        .map(drop)
}

/// Drain `name` and delete its Node, from the server.
pub async fn drain(ctx: &Context, cp: &NodeHandle, name: &Hostname) -> Result<(), Diagnostic> {
    tracing::info!(host = %cp.label, "{}: draining and deleting node {}", cp.label, name.as_str());
    cp.run(ctx, "draining the node", &drain_script(name, k3s::kubectl), b"")
        .await
        .map(drop)
}

/// Take k3s off `node` entirely.
pub async fn uninstall(ctx: &Context, node: &NodeHandle) -> Result<(), Diagnostic> {
    let label = &node.label;
    tracing::info!(host = %label, "{label}: removing k3s (what k3s-killall.sh and k3s-uninstall.sh do)");
    node.run(ctx, "removing k3s", &k3s::uninstall_script(BUNDLE_DIR), b"")
        .await?;
    tracing::info!(host = %label, "{label}: clean");
    Ok(())
}
