//! The node part of an apply: remove the workers no longer listed, prepare
//! the nodes that lack this version, bring up or repair the control plane,
//! join or repair the workers, wait until every node is Ready. What each
//! node needs comes from [`super::plan`]; how it is done, from the
//! [`Distribution`].

use futures_util::future::join_all;

use super::api;
use super::distribution::{self, Distribution};
use super::model::ClusterConfig;
use super::node::{NodeHandle, Role};
use super::payload::Payload;
use super::plan::{self, ControlPlaneStep, WorkerStep};
use super::{assemble, node_name, open};
use crate::cluster::ClusterSpec;
use crate::cluster::node::Probe;
use crate::framework::Diagnostic;
use crate::framework::resource::Context;
use crate::kube::Deadline;
use crate::network::Hostname;
use crate::resources::state::{ProviderState, kube_clients};
use crate::resources::vps_host::SshObject;

/// One apply's node convergence: what it works on and with.
pub struct NodeConvergence<'a> {
    pub ctx: &'a Context,
    pub provider: &'a ProviderState,
    pub config: &'a ClusterConfig,
    pub spec: &'a ClusterSpec,
    pub dl: &'a Deadline,
    pub(super) distribution: &'static dyn Distribution,
}

/// Each node's spec: the cluster's, with the settings chosen for its host.
/// kubeadm's cluster-wide parts come from the control plane's (the first).
pub type NodeSpecs = [ClusterSpec];

/// The nodes the apply reached: the control plane first, then the workers
/// in configuration order, each with its probe.
pub type Nodes = [(NodeHandle, Probe)];

impl<'a> NodeConvergence<'a> {
    pub fn new(
        ctx: &'a Context,
        provider: &'a ProviderState,
        config: &'a ClusterConfig,
        spec: &'a ClusterSpec,
        dl: &'a Deadline,
    ) -> Self {
        NodeConvergence {
            ctx,
            provider,
            config,
            spec,
            dl,
            distribution: distribution::of(config.distro()),
        }
    }

    /// Converge `nodes` and remove the `removed` workers. `payload` is
    /// assembled here if a node needs it; `kubeconfig` is read once per
    /// cluster (empty: read it). Returns the outcome and the removed
    /// workers that could not be reset (they stay in state).
    pub async fn run(
        &self,
        payload: &mut Option<Payload>,
        nodes: &Nodes,
        specs: &NodeSpecs,
        removed: &[SshObject],
        kubeconfig: &mut String,
    ) -> (Result<(), Diagnostic>, Vec<SshObject>) {
        let Some((cp, cp_probe)) = nodes.first() else {
            return (Ok(()), removed.to_vec());
        };
        let names = match nodes
            .iter()
            .map(|(h, p)| node_name(h, p))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(n) => n,
            Err(e) => return (Err(e), removed.to_vec()),
        };
        let (still_there, first_error) = self.remove_workers(cp, cp_probe, removed).await;
        if let Some(e) = first_error {
            return (Err(e), still_there);
        }
        let result = async {
            let cp_spec = specs.first().unwrap_or(self.spec);
            self.prepare(payload, nodes, specs, &names).await?;
            self.control_plane(cp, cp_probe, &names[0], cp_spec, kubeconfig).await?;
            let kube = kube_clients(self.ctx)
                .client(kubeconfig)
                .await
                .map_err(|e| api::kube_diagnostic(&e, None))?;
            // A failed list is an error (after the client's retries), never
            // "no nodes": that would restart every worker's kubelet.
            let registered = api::nodes(&kube, self.dl)
                .await
                .map_err(|e| api::kube_diagnostic(&e, None))?;
            self.workers(
                cp,
                &nodes[1..],
                specs.get(1..).unwrap_or_default(),
                &names[1..],
                &registered,
            )
            .await?;
            let all: Vec<String> = names.iter().map(|n| n.as_str().to_owned()).collect();
            api::wait_ready(&kube, &all, self.dl)
                .await
                .map_err(|e| api::kube_diagnostic(&e, None))
        }
        .await;
        (result, Vec::new())
    }

    /// Drain each removed worker from the control plane, then reset it.
    /// Returns the workers that could not be removed and the first error.
    async fn remove_workers(
        &self,
        cp: &NodeHandle,
        cp_probe: &Probe,
        removed: &[SshObject],
    ) -> (Vec<SshObject>, Option<Diagnostic>) {
        let mut still_there = Vec::new();
        let mut first_error = None;
        for w in removed {
            let r = async {
                let (h, p) = open(self.ctx, self.provider, w, Role::Removed, self.config.distro()).await?;
                if cp_probe.initialized
                    && let Ok(name) = node_name(&h, &p)
                {
                    self.distribution.drain(self.ctx, cp, &name).await?;
                }
                self.distribution.reset(self.ctx, &h).await
            }
            .await;
            if let Err(e) = r {
                still_there.push(w.clone());
                first_error = first_error.or(Some(e));
            }
        }
        (still_there, first_error)
    }

    /// The release's payload, assembled on first need (an update that
    /// prepares no node never reads the bundle or the mirror).
    pub(super) async fn payload<'p>(&self, payload: &'p mut Option<Payload>) -> Result<&'p Payload, Diagnostic> {
        if let Some(p) = payload {
            return Ok(p);
        }
        Ok(payload.insert(assemble(self.config, self.ctx, self.dl).await?))
    }

    /// Prepare every node that lacks this version (in parallel).
    async fn prepare(
        &self,
        payload: &mut Option<Payload>,
        nodes: &Nodes,
        specs: &NodeSpecs,
        names: &[Hostname],
    ) -> Result<(), Diagnostic> {
        let version = self.spec.version.to_string();
        let to_prepare: Vec<usize> = (0..nodes.len())
            .filter(|&i| plan::needs_prepare(&nodes[i].1, &version))
            .collect();
        if to_prepare.is_empty() {
            return Ok(());
        }
        let payload = self.payload(payload).await?;
        let cni = self.config.cni();
        let prepared = join_all(to_prepare.iter().map(|&i| {
            let spec = specs.get(i).unwrap_or(self.spec);
            self.distribution
                .prepare(self.ctx, &nodes[i].0, &names[i], spec, payload, cni)
        }))
        .await;
        prepared.into_iter().collect()
    }

    /// Bring up or repair the control plane, read its kubeconfig once, and
    /// apply the pod network.
    async fn control_plane(
        &self,
        cp: &NodeHandle,
        probe: &Probe,
        name: &Hostname,
        spec: &ClusterSpec,
        kubeconfig: &mut String,
    ) -> Result<(), Diagnostic> {
        let step = plan::control_plane_step(probe);
        match step {
            ControlPlaneStep::Init => {
                self.distribution.init(self.ctx, cp, name, spec).await?;
                kubeconfig.clear();
            }
            ControlPlaneStep::Restart => self.distribution.restart(self.ctx, cp).await?,
            ControlPlaneStep::Keep => {}
        }
        self.distribution
            .secure_api_server(
                self.ctx,
                cp,
                name,
                spec,
                self.config.cni(),
                probe,
                step == ControlPlaneStep::Init,
            )
            .await?;
        // Read once per cluster: an update returns the kubeconfig the plan
        // promised (workloads planned with it).
        if kubeconfig.is_empty() {
            *kubeconfig = self.distribution.admin_kubeconfig(self.ctx, cp).await?;
        }
        self.distribution.install_cni(self.ctx, cp, self.config, spec).await
    }

    /// Join or repair every worker (in parallel).
    async fn workers(
        &self,
        cp: &NodeHandle,
        workers: &Nodes,
        specs: &NodeSpecs,
        names: &[Hostname],
        registered: &std::collections::BTreeMap<String, api::NodeInfo>,
    ) -> Result<(), Diagnostic> {
        let done = join_all(
            workers
                .iter()
                .zip(names)
                .enumerate()
                .map(|(i, ((h, p), name))| async move {
                    let spec = specs.get(i).unwrap_or(self.spec);
                    match plan::worker_step(p, name.as_str(), registered) {
                        WorkerStep::Join => self.distribution.join(self.ctx, cp, h, name, spec).await,
                        WorkerStep::Restart => self.distribution.restart(self.ctx, h).await,
                        WorkerStep::Keep => Ok(()),
                    }
                }),
        )
        .await;
        done.into_iter().collect()
    }
}
