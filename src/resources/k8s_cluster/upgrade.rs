//! An in-place upgrade of the nodes, run by the apply that changes
//! `version`: what is left is decided by [`crate::cluster::upgrade::steps`]
//! from what the API server reports (so an apply that stopped anywhere
//! resumes there); how each step is done, by the [`Distribution`]. The
//! order is kubeadm's documented one: every node staged (nothing
//! restarted), the control plane's components, then one node at a time:
//! drain (PodDisruptionBudgets respected), the node's part, the new
//! kubelet and runtime, Ready at the new version, uncordon.
//!
//! [`Distribution`]: super::distribution::Distribution

use futures_util::future::join_all;

use super::api;
use super::converge::{NodeConvergence, NodeSpecs, Nodes};
use super::node_name;
use super::payload::Payload;
use crate::cluster::Version;
use crate::cluster::upgrade::{self, NodeRuns, Step};
use crate::framework::Diagnostic;
use crate::kube::Kube;
use crate::network::Hostname;
use crate::resources::state::kube_clients;

/// Time kept back from the drain's own limit for the rest of a node's
/// window (its binaries, restart and Ready), so a drain that cannot finish
/// fails with kubectl's message instead of the operation's deadline.
const AFTER_DRAIN_SECS: u64 = 180;

/// Where in an upgrade a failure happened, for its diagnostic.
struct At<'a> {
    step: &'a str,
    node: &'a str,
    /// The node is cordoned by the upgrade at this point.
    cordoned: bool,
}

impl NodeConvergence<'_> {
    /// Bring every node of `nodes` the API server lists to this apply's
    /// version. Nodes not in the cluster yet (a worker added in the same
    /// apply) are left to the join, which installs the new version.
    pub async fn upgrade(
        &self,
        payload: &mut Option<Payload>,
        nodes: &Nodes,
        specs: &NodeSpecs,
        kubeconfig: &str,
    ) -> Result<(), Diagnostic> {
        let target = &self.spec.version;
        let kube = kube_clients(self.ctx)
            .client(kubeconfig)
            .await
            .map_err(|e| api::kube_diagnostic(&e, None))?;
        let names = nodes
            .iter()
            .map(|(h, p)| node_name(h, p))
            .collect::<Result<Vec<_>, _>>()?;
        let registered = api::nodes(&kube, self.dl)
            .await
            .map_err(|e| api::kube_diagnostic(&e, None))?;
        let members: Vec<usize> = (0..nodes.len())
            .filter(|&i| registered.contains_key(names[i].as_str()))
            .collect();
        if members.first() != Some(&0) {
            let e = super::node::error(
                "Control plane not registered",
                format!(
                    "The API server does not list the control plane's node {}; it must be Ready before an upgrade.",
                    names[0].as_str()
                ),
                Some(nodes[0].0.role.path()),
            );
            let at = At {
                step: "reading the nodes",
                node: names[0].as_str(),
                cordoned: false,
            };
            return Err(self.stopped(e, at, &[]));
        }
        let runs: Vec<NodeRuns> = members
            .iter()
            .map(|&i| {
                let info = &registered[names[i].as_str()];
                NodeRuns {
                    kubelet: info.version.clone(),
                    cordoned_by_upgrade: info.cordoned_by_upgrade,
                }
            })
            .collect();
        let cp_done = api::control_plane_at(&kube, target, self.dl)
            .await
            .map_err(|e| api::kube_diagnostic(&e, None))?;
        let todo = upgrade::steps(target, cp_done, &runs);
        if todo.is_empty() {
            return Ok(());
        }
        let member_names: Vec<&Hostname> = members.iter().map(|&i| &names[i]).collect();
        tracing::info!(
            "upgrading the cluster to {target}: {} node(s) ({}) at {}",
            runs.len(),
            member_names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
            runs.iter().map(|r| r.kubelet.as_str()).collect::<Vec<_>>().join(", ")
        );
        let mut upgraded: Vec<String> = runs
            .iter()
            .zip(&member_names)
            .filter(|(r, _)| upgrade::release_of(&r.kubelet).as_ref() == Some(target))
            .map(|(_, n)| n.as_str().to_owned())
            .collect();
        let single = members.len() == 1;
        for step in todo {
            match step {
                Step::Stage(at) => {
                    let p = self.payload(payload).await?;
                    let staged = join_all(at.iter().map(|&k| {
                        let i = members[k];
                        let spec = specs.get(i).unwrap_or(self.spec);
                        self.distribution.stage(self.ctx, &nodes[i].0, spec, p)
                    }))
                    .await;
                    for (r, &k) in staged.into_iter().zip(&at) {
                        r.map_err(|e| {
                            self.stopped(
                                e,
                                At {
                                    step: "staging the new release",
                                    node: member_names[k].as_str(),
                                    cordoned: false,
                                },
                                &upgraded,
                            )
                        })?;
                    }
                }
                Step::ControlPlane => {
                    let spec = specs.first().unwrap_or(self.spec);
                    self.distribution
                        .upgrade_control_plane(self.ctx, &nodes[0].0, spec)
                        .await
                        .map_err(|e| {
                            self.stopped(
                                e,
                                At {
                                    step: "upgrading the control plane's components",
                                    node: names[0].as_str(),
                                    cordoned: false,
                                },
                                &upgraded,
                            )
                        })?;
                }
                Step::Node(k) => {
                    let i = members[k];
                    let p = self.payload(payload).await?;
                    self.node_window(
                        &kube,
                        nodes,
                        specs.get(i).unwrap_or(self.spec),
                        &names,
                        i,
                        p,
                        single,
                        &upgraded,
                    )
                    .await?;
                    upgraded.push(names[i].as_str().to_owned());
                }
                Step::Uncordon(k) => {
                    let i = members[k];
                    self.uncordon(nodes, &names[i], &upgraded).await?;
                }
            }
        }
        tracing::info!("cluster upgraded to {target}: {}", upgraded.join(", "));
        Ok(())
    }

    /// One node's window: drain (unless it is the only node: its pods have
    /// nowhere to go and restart with it), the distribution's part, the new
    /// binaries and runtime, restart, Ready at the new version, uncordon.
    #[allow(clippy::too_many_arguments)]
    async fn node_window(
        &self,
        kube: &Kube,
        nodes: &Nodes,
        spec: &crate::cluster::ClusterSpec,
        names: &[Hostname],
        i: usize,
        payload: &Payload,
        single: bool,
        upgraded: &[String],
    ) -> Result<(), Diagnostic> {
        let target = &self.spec.version;
        let (cp, node, name) = (&nodes[0].0, &nodes[i].0, &names[i]);
        let at = |step, cordoned| At {
            step,
            node: name.as_str(),
            cordoned,
        };
        let label = &node.label;
        if single {
            tracing::info!(host = %label, "{label}: the only node: not drained (its pods restart with its kubelet)");
        } else {
            let timeout = self.dl.remaining().as_secs().saturating_sub(AFTER_DRAIN_SECS).max(60);
            tracing::info!(host = %label, "{label}: draining {} for its upgrade (PodDisruptionBudgets respected, at most {timeout} s)", name.as_str());
            cp.run(
                self.ctx,
                "draining the node",
                &upgrade::drain_script(name, target, timeout, self.distribution.kubectl()),
                b"",
            )
            .await
            .map_err(|e| self.stopped(e, at("draining the node", true), upgraded))?;
        }
        let cordoned = !single;
        if i != 0 {
            self.distribution
                .upgrade_worker(self.ctx, node, spec)
                .await
                .map_err(|e| self.stopped(e, at("upgrading the node's configuration", cordoned), upgraded))?;
        }
        self.distribution
            .prepare(self.ctx, node, name, spec, payload, self.config.cni())
            .await
            .map_err(|e| self.stopped(e, at("installing the new binaries and runtime", cordoned), upgraded))?;
        self.distribution
            .restart(self.ctx, node)
            .await
            .map_err(|e| self.stopped(e, at("restarting the kubelet", cordoned), upgraded))?;
        api::wait_node_at(kube, name.as_str(), target, self.dl)
            .await
            .map_err(|e| {
                self.stopped(
                    api::kube_diagnostic(&e, Some(node.role.path())),
                    at("waiting for the node to be Ready at the new version", cordoned),
                    upgraded,
                )
            })?;
        if i == 0 {
            cp.run(
                self.ctx,
                "waiting for the API server to answer steadily",
                &upgrade::settle_script(self.distribution.kubectl()),
                b"",
            )
            .await
            .map_err(|e| {
                self.stopped(
                    e,
                    at("waiting for the API server after the kubelet's restart", cordoned),
                    upgraded,
                )
            })?;
        }
        if !single {
            self.uncordon(nodes, name, upgraded).await?;
        }
        tracing::info!(host = %label, "{label}: {} runs {target}", name.as_str());
        Ok(())
    }

    /// Uncordon `name` (from the control plane) and drop the upgrade's mark.
    async fn uncordon(&self, nodes: &Nodes, name: &Hostname, upgraded: &[String]) -> Result<(), Diagnostic> {
        nodes[0]
            .0
            .run(
                self.ctx,
                "uncordoning the node",
                &upgrade::uncordon_script(name, self.distribution.kubectl()),
                b"",
            )
            .await
            .map(drop)
            .map_err(|e| {
                self.stopped(
                    e,
                    At {
                        step: "uncordoning the node",
                        node: name.as_str(),
                        cordoned: true,
                    },
                    upgraded,
                )
            })
    }

    /// `e` as the upgrade's failure: which step on which node, what the
    /// nodes run now, whether one stays cordoned, and that the next apply
    /// resumes.
    fn stopped(&self, mut e: Diagnostic, at: At<'_>, upgraded: &[String]) -> Diagnostic {
        let target = &self.spec.version;
        e.summary = format!("Upgrade to {target} stopped: {} on {}", at.step, at.node);
        let done = if upgraded.is_empty() {
            "No node runs it yet".to_owned()
        } else {
            format!("Nodes at {target}: {}", upgraded.join(", "))
        };
        let cordon = if at.cordoned {
            format!(
                " Node {n} stays cordoned (annotation {a}) until an apply finishes its upgrade; `kubectl uncordon {n}` takes it back into service now.",
                n = at.node,
                a = upgrade::CORDON_ANNOTATION
            )
        } else {
            String::new()
        };
        e.detail = format!(
            "{}\n\n{done} (`nodes[*].version` shows what each runs).{cordon} The state keeps the version the cluster ran before; the next apply resumes the upgrade from this step.",
            e.detail
        );
        e
    }
}

/// Whether `version` is an upgrade target the cluster has not reached:
/// used by the apply (from the prior state's version).
pub fn pending(prior: Option<&str>, planned: &Version) -> bool {
    prior
        .and_then(|p| Version::parse(p).ok())
        .is_some_and(|p| &p != planned)
}

/// Whether the API server and every node report `target`.
pub fn everywhere(outputs: &super::model::Outputs, target: &Version) -> bool {
    let at = |v: &str| crate::cluster::upgrade::release_of(v).as_ref() == Some(target);
    at(&outputs.running_version) && !outputs.nodes.is_empty() && outputs.nodes.iter().all(|n| at(&n.version))
}
