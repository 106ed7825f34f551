//! What a distribution does on a node, behind one trait: kubeadm
//! ([`steps`]) and k3s ([`k3s_steps`]) implement the same operations, so
//! the convergence ([`super::converge`]) decides *what* to do from the
//! probes ([`super::plan`]) and never asks *which* distribution runs.

use async_trait::async_trait;

use super::model::{ClusterConfig, Cni, Distro};
use super::node::{NodeHandle, Role};
use super::payload::{self, Payload};
use super::{k3s_security, k3s_steps, security, steps};
use crate::cluster::ClusterSpec;
use crate::cluster::k3s::{self, K3sRole};
use crate::cluster::node::Probe;
use crate::framework::Diagnostic;
use crate::framework::resource::Context;
use crate::network::Hostname;

/// The operations of one distribution, each idempotent.
#[async_trait]
pub trait Distribution: Send + Sync {
    /// The script that reports what a node runs ([`crate::cluster::node::parse_probe`]).
    fn probe_script(&self) -> String;

    /// Install the binaries, images and configuration on `node` (as the
    /// control plane when `role` says so).
    async fn prepare(
        &self,
        ctx: &Context,
        node: &NodeHandle,
        name: &Hostname,
        spec: &ClusterSpec,
        payload: &Payload,
        cni: Cni,
    ) -> Result<(), Diagnostic>;

    /// Bring up a new control plane; returns once its API server answers.
    async fn init(&self, ctx: &Context, cp: &NodeHandle, name: &Hostname, spec: &ClusterSpec)
    -> Result<(), Diagnostic>;

    /// Bring the control plane's API server to `spec.api_server` (Secrets
    /// encryption, audit log); `fresh`: `init` just ran, `probe` predates it.
    #[allow(clippy::too_many_arguments)]
    async fn secure_api_server(
        &self,
        ctx: &Context,
        cp: &NodeHandle,
        name: &Hostname,
        spec: &ClusterSpec,
        cni: Cni,
        probe: &Probe,
        fresh: bool,
    ) -> Result<(), Diagnostic>;

    /// Restart the node's stopped services.
    async fn restart(&self, ctx: &Context, node: &NodeHandle) -> Result<(), Diagnostic>;

    /// The admin kubeconfig, pointed at the address Terraform reaches.
    async fn admin_kubeconfig(&self, ctx: &Context, cp: &NodeHandle) -> Result<String, Diagnostic>;

    /// Apply the pod network the configuration asks for, when the
    /// distribution does not run its own.
    async fn install_cni(
        &self,
        ctx: &Context,
        cp: &NodeHandle,
        config: &ClusterConfig,
        spec: &ClusterSpec,
    ) -> Result<(), Diagnostic>;

    /// Join `worker` to the cluster `cp` runs.
    async fn join(
        &self,
        ctx: &Context,
        cp: &NodeHandle,
        worker: &NodeHandle,
        name: &Hostname,
        spec: &ClusterSpec,
    ) -> Result<(), Diagnostic>;

    /// Drain node `name` and delete its Node, from the control plane.
    async fn drain(&self, ctx: &Context, cp: &NodeHandle, name: &Hostname) -> Result<(), Diagnostic>;

    /// Take the distribution off `node` entirely.
    async fn reset(&self, ctx: &Context, node: &NodeHandle) -> Result<(), Diagnostic>;

    /// An in-place upgrade's first step on a running node: the new
    /// release's files on the node, nothing restarted.
    async fn stage(
        &self,
        ctx: &Context,
        node: &NodeHandle,
        spec: &ClusterSpec,
        payload: &Payload,
    ) -> Result<(), Diagnostic>;

    /// Upgrade the control plane's own components to `spec.version` (before
    /// any node's kubelet).
    async fn upgrade_control_plane(&self, ctx: &Context, cp: &NodeHandle, spec: &ClusterSpec)
    -> Result<(), Diagnostic>;

    /// A drained worker's part before its new kubelet starts.
    async fn upgrade_worker(&self, ctx: &Context, node: &NodeHandle, spec: &ClusterSpec) -> Result<(), Diagnostic>;

    /// The control plane's `kubectl`, rendering a command line.
    fn kubectl(&self) -> fn(&[&str]) -> String;
}

/// The implementation of `distro`.
pub fn of(distro: Distro) -> &'static dyn Distribution {
    match distro {
        Distro::Kubeadm => &Kubeadm,
        Distro::K3s => &K3s,
    }
}

/// kubeadm with the provider's containerd, kubelet and CNI.
pub struct Kubeadm;

#[async_trait]
impl Distribution for Kubeadm {
    fn probe_script(&self) -> String {
        crate::cluster::node::probe_script()
    }

    async fn prepare(
        &self,
        ctx: &Context,
        node: &NodeHandle,
        name: &Hostname,
        spec: &ClusterSpec,
        payload: &Payload,
        _cni: Cni,
    ) -> Result<(), Diagnostic> {
        steps::prepare(ctx, node, name, spec, payload).await
    }

    async fn init(
        &self,
        ctx: &Context,
        cp: &NodeHandle,
        name: &Hostname,
        spec: &ClusterSpec,
    ) -> Result<(), Diagnostic> {
        steps::init(ctx, cp, name, spec).await
    }

    async fn secure_api_server(
        &self,
        ctx: &Context,
        cp: &NodeHandle,
        name: &Hostname,
        spec: &ClusterSpec,
        _cni: Cni,
        probe: &Probe,
        fresh: bool,
    ) -> Result<(), Diagnostic> {
        security::converge(ctx, cp, name, spec, probe, fresh).await
    }

    async fn restart(&self, ctx: &Context, node: &NodeHandle) -> Result<(), Diagnostic> {
        steps::start_services(ctx, node).await
    }

    async fn admin_kubeconfig(&self, ctx: &Context, cp: &NodeHandle) -> Result<String, Diagnostic> {
        steps::admin_kubeconfig(ctx, cp).await
    }

    async fn install_cni(
        &self,
        ctx: &Context,
        cp: &NodeHandle,
        config: &ClusterConfig,
        spec: &ClusterSpec,
    ) -> Result<(), Diagnostic> {
        match payload::cni_manifest(&config.install(), config.cni(), spec)? {
            Some(manifest) => steps::apply_cni(ctx, cp, &manifest).await,
            None => Ok(()),
        }
    }

    async fn join(
        &self,
        ctx: &Context,
        cp: &NodeHandle,
        worker: &NodeHandle,
        name: &Hostname,
        spec: &ClusterSpec,
    ) -> Result<(), Diagnostic> {
        steps::join(ctx, cp, worker, name, spec).await
    }

    async fn drain(&self, ctx: &Context, cp: &NodeHandle, name: &Hostname) -> Result<(), Diagnostic> {
        steps::drain(ctx, cp, name).await
    }

    async fn reset(&self, ctx: &Context, node: &NodeHandle) -> Result<(), Diagnostic> {
        steps::reset(ctx, node).await
    }

    async fn stage(
        &self,
        ctx: &Context,
        node: &NodeHandle,
        spec: &ClusterSpec,
        payload: &Payload,
    ) -> Result<(), Diagnostic> {
        steps::stage(ctx, node, spec, payload).await
    }

    async fn upgrade_control_plane(
        &self,
        ctx: &Context,
        cp: &NodeHandle,
        spec: &ClusterSpec,
    ) -> Result<(), Diagnostic> {
        steps::upgrade_control_plane(ctx, cp, spec).await
    }

    async fn upgrade_worker(&self, ctx: &Context, node: &NodeHandle, spec: &ClusterSpec) -> Result<(), Diagnostic> {
        steps::upgrade_worker(ctx, node, spec).await
    }

    fn kubectl(&self) -> fn(&[&str]) -> String {
        crate::cluster::node::kubectl
    }
}

/// k3s: one binary running its own containerd, kubelet and flannel.
pub struct K3s;

fn k3s_role(node: &NodeHandle) -> K3sRole {
    match node.role {
        Role::ControlPlane => K3sRole::Server,
        Role::Worker(_) | Role::Removed => K3sRole::Agent,
    }
}

#[async_trait]
impl Distribution for K3s {
    fn probe_script(&self) -> String {
        k3s::probe_script()
    }

    async fn prepare(
        &self,
        ctx: &Context,
        node: &NodeHandle,
        name: &Hostname,
        spec: &ClusterSpec,
        payload: &Payload,
        cni: Cni,
    ) -> Result<(), Diagnostic> {
        k3s_steps::prepare(ctx, node, name, spec, payload, k3s_role(node), cni == Cni::Flannel).await
    }

    async fn init(
        &self,
        ctx: &Context,
        cp: &NodeHandle,
        _name: &Hostname,
        _spec: &ClusterSpec,
    ) -> Result<(), Diagnostic> {
        k3s_steps::start_server(ctx, cp).await
    }

    async fn secure_api_server(
        &self,
        ctx: &Context,
        cp: &NodeHandle,
        name: &Hostname,
        spec: &ClusterSpec,
        cni: Cni,
        probe: &Probe,
        fresh: bool,
    ) -> Result<(), Diagnostic> {
        k3s_security::converge(ctx, cp, name, spec, cni == Cni::Flannel, probe, fresh).await
    }

    async fn restart(&self, ctx: &Context, node: &NodeHandle) -> Result<(), Diagnostic> {
        k3s_steps::restart(ctx, node, k3s_role(node)).await
    }

    async fn admin_kubeconfig(&self, ctx: &Context, cp: &NodeHandle) -> Result<String, Diagnostic> {
        k3s_steps::admin_kubeconfig(ctx, cp).await
    }

    /// k3s runs its own flannel (or none): no manifest to apply.
    async fn install_cni(
        &self,
        _ctx: &Context,
        _cp: &NodeHandle,
        _config: &ClusterConfig,
        _spec: &ClusterSpec,
    ) -> Result<(), Diagnostic> {
        Ok(())
    }

    async fn join(
        &self,
        ctx: &Context,
        cp: &NodeHandle,
        worker: &NodeHandle,
        name: &Hostname,
        spec: &ClusterSpec,
    ) -> Result<(), Diagnostic> {
        k3s_steps::join(ctx, cp, worker, name, spec).await
    }

    async fn drain(&self, ctx: &Context, cp: &NodeHandle, name: &Hostname) -> Result<(), Diagnostic> {
        k3s_steps::drain(ctx, cp, name).await
    }

    async fn reset(&self, ctx: &Context, node: &NodeHandle) -> Result<(), Diagnostic> {
        k3s_steps::uninstall(ctx, node).await
    }

    /// The new binary and images uploaded to the staging directory; k3s
    /// installs them in the node's window.
    async fn stage(
        &self,
        ctx: &Context,
        node: &NodeHandle,
        _spec: &ClusterSpec,
        payload: &Payload,
    ) -> Result<(), Diagnostic> {
        steps::upload_payload(ctx, node, payload).await
    }

    /// k3s's server is its control plane: upgraded in its window.
    async fn upgrade_control_plane(
        &self,
        _ctx: &Context,
        _cp: &NodeHandle,
        _spec: &ClusterSpec,
    ) -> Result<(), Diagnostic> {
        Ok(())
    }

    /// An agent takes its configuration from the server.
    async fn upgrade_worker(&self, _ctx: &Context, _node: &NodeHandle, _spec: &ClusterSpec) -> Result<(), Diagnostic> {
        Ok(())
    }

    fn kubectl(&self) -> fn(&[&str]) -> String {
        k3s::kubectl
    }
}
