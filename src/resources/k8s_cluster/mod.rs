//! `selfhost_k8s_cluster`: a kubeadm or k3s cluster bootstrapped over SSH
//! on hosts `selfhost_vps_host` prepared, in the same apply as the
//! workloads that use its `kubeconfig`.
//!
//! Every apply converges: it probes each node (one exec), then does only
//! what is missing — prepare, `kubeadm init` (or the k3s server), the CNI,
//! `kubeadm join` (or a k3s agent with the node-token), restart stopped
//! services, drain and reset removed workers — and reads the cluster back
//! (`steps` are kubeadm's, `k3s_steps` k3s's). State always holds what exists: a failed join keeps
//! the control plane, a worker whose reset failed stays in state until a
//! later apply removes it.

mod addons;
mod api;
mod converge;
mod deployer;
mod detect;
mod distribution;
mod import;
mod k3s_security;
mod k3s_steps;
mod model;
mod node;
mod node_targets;
mod payload;
mod plan;
mod pod_security;
mod schema;
mod security;
mod steps;
mod upgrade;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;

use crate::cluster::ClusterSpec;
use crate::cluster::node::Probe;
use crate::framework::private::PrivateState;
use crate::framework::resource::{
    ApplyRequest, ApplyResponse, Context, ImportResponse, ModifyPlanRequest, ModifyPlanResponse, ReadRequest,
    ReadResponse, Resource,
};
use crate::framework::timeouts::{self, Operation};
use crate::framework::typed::{decode, from_value, to_value};
use crate::framework::{AttributePath, Diagnostic, Diagnostics, Schema, Value};
use crate::host::validate;
use crate::kube::{Deadline, Kube};
use crate::network::Hostname;
use crate::resources::state::{ProviderState, kube_clients, provider_state};
use crate::resources::vps_host::SshObject;

use converge::NodeConvergence;
use model::{ClusterConfig, Distro, NodeModel, Outputs, STATUS_OK};
use node::{NodeHandle, Role, error};
use payload::Payload;

/// The resource type.
pub struct K8sCluster;

/// How long a refresh may wait for the API server before it reports the
/// nodes as it found them over SSH.
const READ_API_LIMIT: Duration = Duration::from_secs(30);

fn limit(value: &Value, op: Operation) -> Duration {
    timeouts::configured(value, op).unwrap_or_else(|| {
        schema::TIMEOUTS
            .iter()
            .find(|(o, _)| *o == op)
            .map_or(Duration::from_secs(1800), |(_, d)| *d)
    })
}

/// The state value: configuration + outputs + `timeouts` from `timeouts_from`.
pub(super) fn encode(config: &ClusterConfig, outputs: &Outputs, timeouts_from: &Value, d: &mut Diagnostics) -> Value {
    let merged = match (to_value(config), to_value(outputs)) {
        (Ok(Value::Object(mut a)), Ok(Value::Object(b))) => {
            a.extend(b);
            a.insert(timeouts::BLOCK.to_owned(), timeouts_from.attr(timeouts::BLOCK).clone());
            Value::Object(a)
        }
        _ => Value::Null,
    };
    match crate::framework::typed::conform(merged, &schema::schema().value_type()) {
        Ok(v) if !v.is_null() => v,
        Ok(_) => {
            d.error(
                "Unencodable state",
                "The cluster state did not encode. This is a bug in the provider; please report it.",
            );
            Value::Null
        }
        Err(e) => {
            d.error(
                "Unencodable state",
                format!("{e}. This is a bug in the provider; please report it."),
            );
            Value::Null
        }
    }
}

/// What this provider version cannot do yet, said at the attribute.
fn unsupported(config: &ClusterConfig) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let install = config.install();
    match config.distro() {
        Distro::K3s => out.extend(k3s_conflicts(config)),
        Distro::Kubeadm if install.k3s_version.is_some() => out.push(error(
            "Conflicting install settings",
            "install.k3s_version is only read with distribution = \"k3s\".".to_owned(),
            Some(AttributePath::root("install").attr("k3s_version")),
        )),
        Distro::Kubeadm => {}
    }
    match install.source.as_deref() {
        Some("bundle") if install.bundle.is_none() => out.push(error(
            "Missing bundle",
            "install.source = \"bundle\" needs install.bundle, the bundle's directory.".to_owned(),
            Some(AttributePath::root("install").attr("bundle")),
        )),
        Some("bundle") if install.image_archives.is_some() => out.push(error(
            "Conflicting install settings",
            "install.image_archives is for source = \"download\"; a bundle brings its own images (images/ in the bundle).".to_owned(),
            Some(AttributePath::root("install").attr("image_archives")),
        )),
        Some("bundle") => {}
        _ if install.bundle.is_some() => out.push(error(
            "Conflicting install settings",
            "install.bundle is only read with source = \"bundle\"; set source = \"bundle\" or remove bundle.".to_owned(),
            Some(AttributePath::root("install").attr("bundle")),
        )),
        _ => {}
    }
    out
}

/// Settings k3s does not take from us, said at their attribute (a user
/// who sets one expects it to apply).
fn k3s_conflicts(config: &ClusterConfig) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let at = |attr: &str, why: &str| {
        error(
            "Not applicable with k3s",
            format!("node_settings.{attr} is not applied with distribution = \"k3s\": {why}."),
            Some(AttributePath::root("node_settings").attr(attr)),
        )
    };
    let s = config.node_settings.clone().unwrap_or_default();
    if s.containerd_restrict_oom_score_adj == Some(true) {
        out.push(at(
            "containerd_restrict_oom_score_adj",
            "k3s writes containerd's configuration itself (its config.toml.tmpl is the way to change it)",
        ));
    }
    if s.containerd_oom_score_adjust.is_some() {
        out.push(at(
            "containerd_oom_score_adjust",
            "k3s runs containerd inside its own unit",
        ));
    }
    if s.kube_proxy_extra_config.is_some() {
        out.push(at(
            "kube_proxy_extra_config",
            "k3s configures kube-proxy from its own flags (kube-proxy-arg)",
        ));
    }
    if s.ignore_preflight_errors.as_ref().is_some_and(|v| !v.is_empty()) {
        out.push(at("ignore_preflight_errors", "k3s has no kubeadm preflight checks"));
    }
    if let Some(v) = config.install().k3s_version
        && !v.starts_with(&format!("{}+k3s", config.version))
    {
        out.push(error(
            "Conflicting install settings",
            format!(
                "install.k3s_version {v:?} is not a k3s release of version {:?} (expected \"{}+k3sN\").",
                config.version, config.version
            ),
            Some(AttributePath::root("install").attr("k3s_version")),
        ));
    }
    out
}

/// The configuration for the resource's own checks at validate time. A
/// `distribution` or `cni` the schema's validator already refused is read
/// as unset, so every other setting is still checked in the same run.
fn checkable(config: &Value) -> Option<ClusterConfig> {
    from_value(config).ok().or_else(|| {
        let mut c = config.clone();
        for (attr, allowed) in [("distribution", schema::DISTRIBUTIONS), ("cni", schema::CNIS)] {
            if let Some(slot) = c.attr_mut(attr)
                && slot.as_str().is_some_and(|s| !allowed.contains(&s))
            {
                *slot = Value::Null;
            }
        }
        from_value(&c).ok()
    })
}

fn spec_or_diagnose(config: &ClusterConfig, d: &mut Diagnostics) -> Option<ClusterSpec> {
    match config.to_spec() {
        Ok(s) => Some(s),
        Err(bad) => {
            for (path, m) in bad {
                d.attribute_error(path, "Invalid cluster setting", format!("{m}."));
            }
            None
        }
    }
}

fn node_name(node: &NodeHandle, probe: &Probe) -> Result<Hostname, Diagnostic> {
    validate::hostname(&probe.hostname).map_err(|m| {
        error(
            "Unusable node name",
            format!(
                "{}: its host name {:?} cannot name a Kubernetes node ({m}); set `hostname` on its selfhost_vps_host.",
                node.label, probe.hostname
            ),
            Some(node.role.path()),
        )
    })
}

/// Connect to and probe one node.
pub(super) async fn open(
    ctx: &Context,
    provider: &ProviderState,
    ssh: &SshObject,
    role: Role,
    distro: Distro,
) -> Result<(NodeHandle, Probe), Diagnostic> {
    let node = NodeHandle::connect(ctx, provider, ssh, role).await?;
    let probe = node.probe(ctx, distro).await?;
    Ok((node, probe))
}

/// The workers of `prior` that `config` no longer lists.
fn removed_workers(prior: Option<&ClusterConfig>, config: &ClusterConfig) -> Vec<SshObject> {
    prior
        .map(|p| {
            p.workers()
                .iter()
                .filter(|w| !config.workers().iter().any(|c| c.host == w.host && c.port == w.port))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The workers to record: the configured ones, and the removed ones whose
/// reset failed (they stay in state until a later apply removes them).
fn recorded_workers(config: &ClusterConfig, still_there: Vec<SshObject>) -> Option<Vec<SshObject>> {
    let mut workers = config.workers().to_vec();
    workers.extend(still_there);
    if workers.is_empty() && config.workers.is_none() {
        None
    } else {
        Some(workers)
    }
}

/// Every node of `config` with its role and its probe (`None`: unreachable).
async fn probe_all(
    ctx: &Context,
    provider: &ProviderState,
    config: &ClusterConfig,
) -> Vec<(SshObject, Role, Option<Probe>)> {
    let reprobed = open_all(ctx, provider, config).await;
    targets(config)
        .into_iter()
        .zip(reprobed)
        .map(|((ssh, role), r)| (ssh, role, r.ok().map(|(_, p)| p)))
        .collect()
}

/// Every node of `config` with its role: the control plane, then the
/// workers in configuration order.
fn targets(config: &ClusterConfig) -> Vec<(SshObject, Role)> {
    let mut targets = vec![(config.control_plane.clone(), Role::ControlPlane)];
    targets.extend(
        config
            .workers()
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), Role::Worker(i))),
    );
    targets
}

/// Connect to and probe every node of `config` concurrently.
async fn open_all(
    ctx: &Context,
    provider: &ProviderState,
    config: &ClusterConfig,
) -> Vec<Result<(NodeHandle, Probe), Diagnostic>> {
    let targets = targets(config);
    let distro = config.distro();
    join_all(
        targets
            .iter()
            .map(|(ssh, role)| open(ctx, provider, ssh, role.clone(), distro)),
    )
    .await
}

/// The nodes [`open_all`] reached, with their probes; the first failure
/// to reach one goes to `failure` (unless it holds one already).
async fn open_reachable(
    ctx: &Context,
    provider: &ProviderState,
    config: &ClusterConfig,
    failure: &mut Option<Diagnostic>,
) -> Vec<(NodeHandle, Probe)> {
    let mut handles = Vec::new();
    for r in open_all(ctx, provider, config).await {
        match r {
            Ok(h) => handles.push(h),
            Err(e) => *failure = failure.take().or(Some(e)),
        }
    }
    handles
}

fn status_of(probe: Option<&Probe>, registered: Option<&api::NodeInfo>, api_known: bool) -> &'static str {
    match probe {
        None => "unreachable",
        Some(p) if !p.k3s_unit.is_empty() && !p.kubelet_active => "k3s stopped",
        Some(p) if !p.containerd_active => "containerd stopped",
        Some(p) if !p.kubelet_active => "kubelet stopped",
        Some(p) if !p.joined => "not joined",
        // The control plane's API server answers /readyz (checked on it).
        Some(p) if p.initialized && !p.api_ready => "api server not ready",
        Some(_) if api_known && registered.is_none() => "not registered",
        Some(_) => STATUS_OK,
    }
}

/// The payload, within what is left of the operation's time limit (a
/// slow mirror ends like any other step that overruns `timeouts`).
async fn assemble(config: &ClusterConfig, ctx: &Context, dl: &Deadline) -> Result<Payload, Diagnostic> {
    let limit = dl.limit();
    match tokio::time::timeout(dl.remaining(), Payload::assemble(config, &ctx.cancel)).await {
        Ok(r) => r,
        Err(_) => Err(error(
            "Timed out",
            format!(
                "Fetching the release artifacts did not finish within the operation's time limit ({}s, `timeouts`); what was fetched and checked stays cached for the next apply.",
                limit.as_secs()
            ),
            Some(AttributePath::root("install")),
        )),
    }
}

/// What is recorded in the cluster for `terraform import`: the settings
/// and the planned `timeouts`. A `timeouts` block that does not decode is
/// an error at the attribute, never silently "no timeouts".
fn record_of(config: &ClusterConfig, planned: &Value) -> Result<model::Record, Diagnostic> {
    let timeouts = from_value(planned.attr(timeouts::BLOCK)).map_err(|e| {
        error(
            "Invalid timeouts",
            format!(
                "The `timeouts` block did not decode ({e}); this is a bug in the provider or the CLI, please report it."
            ),
            Some(AttributePath::root(timeouts::BLOCK)),
        )
    })?;
    Ok(model::Record {
        config: config.clone(),
        timeouts,
    })
}

/// Record the settings in the cluster for `terraform import`. A failure
/// to write is logged, not fatal: the cluster itself is as planned.
async fn write_record(kube: &Kube, record: &model::Record, dl: &Deadline) {
    let written = match serde_json::to_string(record) {
        Ok(json) => api::write_record(kube, &json, dl).await.map_err(|e| e.detail()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(m) = written {
        tracing::warn!(
            "could not record the cluster's settings for import (kube-system/{}): {m}",
            api::RECORD_NAME
        );
    }
}

/// The outputs as the nodes and the API server tell them now.
async fn observe(
    ctx: &Context,
    config: &ClusterConfig,
    probes: &[(SshObject, Role, Option<Probe>)],
    kubeconfig: &str,
    prior: &Outputs,
    dl: &Deadline,
) -> (Outputs, Option<Kube>) {
    let kube = if kubeconfig.is_empty() {
        None
    } else {
        kube_clients(ctx).client(kubeconfig).await.ok()
    };
    let mut registered: Option<BTreeMap<String, api::NodeInfo>> = None;
    let mut out = Outputs {
        kubeconfig: kubeconfig.to_owned(),
        api_server_url: format!(
            "https://{}",
            crate::cluster::spec::api_endpoint(&config.control_plane.host)
        ),
        ca_certificate: ca_certificate(kubeconfig).unwrap_or_default(),
        ..prior.clone()
    };
    if let Some(k) = &kube {
        registered = api::nodes(k, dl).await.ok();
        if let Ok(v) = api::server_version(k, dl).await {
            out.running_version = v;
        }
        if let Ok(id) = api::cluster_id(k, dl).await
            && !id.is_empty()
        {
            out.id = id;
        }
    }
    out.nodes = probes
        .iter()
        .map(|(ssh, role, probe)| {
            let name = probe.as_ref().map(|p| p.hostname.clone()).unwrap_or_else(|| {
                prior
                    .nodes
                    .iter()
                    .find(|n| n.host == ssh.host)
                    .map(|n| n.name.clone())
                    .unwrap_or_default()
            });
            let info = registered.as_ref().and_then(|r| r.get(&name));
            NodeModel {
                status: status_of(probe.as_ref(), info, registered.is_some()).to_owned(),
                ready: info.is_some_and(|i| i.ready),
                version: info.map(|i| i.version.clone()).unwrap_or_default(),
                name,
                host: ssh.host.clone(),
                role: role.name().to_owned(),
            }
        })
        .collect();
    (out, kube)
}

/// Record the API server's encryption and audit settings as the control
/// plane's probe found them (kubeadm: its manifest and files; k3s: its
/// configuration, `k3s secrets-encrypt status`), so a change
/// by hand, or a sequence that stopped half-way, shows in the plan.
fn observe_api_server(state: &mut ClusterConfig, probes: &[(SshObject, Role, Option<Probe>)]) {
    if let Some((_, Role::ControlPlane, Some(p))) = probes.first()
        && p.initialized
    {
        let before = state.api_server_security();
        state.observe_api_server(&p.security);
        let seen = state.api_server_security();
        if seen != before {
            tracing::info!(
                "{}: the API server's security settings differ from the state's ({seen:?}, recorded {before:?}); the plan shows the change",
                state.control_plane.host
            );
        }
    }
}

/// The cluster CA (PEM) from a kubeconfig's current cluster.
pub(crate) fn ca_certificate(kubeconfig: &str) -> Option<String> {
    use base64::Engine;
    let parsed = kube::config::Kubeconfig::from_yaml(kubeconfig).ok()?;
    let cluster = parsed.clusters.first()?.cluster.as_ref()?;
    let data = cluster.certificate_authority_data.as_ref()?;
    let pem = base64::engine::general_purpose::STANDARD.decode(data).ok()?;
    String::from_utf8(pem).ok()
}

/// Once the API answers: the namespaces the configuration asks for
/// (unless a node step failed), what exists of them recorded, and the
/// settings recorded in the cluster for import.
async fn finish_in_cluster(
    kube: Option<&Kube>,
    config: &ClusterConfig,
    prior: Option<&ClusterConfig>,
    recorded: &mut ClusterConfig,
    planned: &Value,
    failure: &mut Option<Diagnostic>,
    dl: &Deadline,
) {
    let Some(k) = kube else {
        recorded.namespace = prior.and_then(|p| p.namespace.clone());
        return;
    };
    if failure.is_none() {
        *failure = converge_namespaces(k, config, prior, dl).await.err();
    }
    recorded.namespace = match api::observe_namespaces(k, config.namespaces(), dl).await {
        Ok(seen) if !seen.is_empty() || config.namespace.is_some() => Some(seen),
        Ok(_) => None,
        Err(_) => prior.and_then(|p| p.namespace.clone()),
    };
    if failure.is_none() {
        match record_of(recorded, planned) {
            Ok(record) => write_record(k, &record, dl).await,
            Err(e) => *failure = Some(e),
        }
    }
}

async fn converge_namespaces(
    kube: &Kube,
    config: &ClusterConfig,
    prior: Option<&ClusterConfig>,
    dl: &Deadline,
) -> Result<(), Diagnostic> {
    for (i, m) in config.namespaces().iter().enumerate() {
        let labels = pod_security::labels_for(&config.version, config.pod_security.as_deref(), m);
        api::apply_namespace(kube, m, labels, dl)
            .await
            .map_err(|e| api::kube_diagnostic(&e, Some(AttributePath::root("namespace").index(i as i64))))?;
    }
    if let Some(p) = prior {
        for old in p.namespaces() {
            if !config.namespaces().iter().any(|m| m.name == old.name) {
                api::delete_namespace(kube, &old.name, dl)
                    .await
                    .map_err(|e| api::kube_diagnostic(&e, None))?;
            }
        }
    }
    Ok(())
}

/// Once the namespaces exist: the deployers (unless a step failed), then
/// what the cluster has of the Pod Security labels and deployer objects
/// (`recorded`: the namespaces as found).
#[allow(clippy::too_many_arguments)]
async fn finish_access(
    kube: &Kube,
    config: &ClusterConfig,
    prior: Option<&ClusterConfig>,
    recorded: &ClusterConfig,
    planned: &Value,
    outputs: &mut Outputs,
    failure: &mut Option<Diagnostic>,
    dl: &Deadline,
) {
    if failure.is_none() {
        *failure = deployer::converge(kube, config, prior, planned, outputs, dl)
            .await
            .err();
    }
    match pod_security::observe(kube, recorded.namespaces(), dl).await {
        Ok(seen) => outputs.pod_security_labels = seen,
        Err(e) => tracing::warn!("could not read the namespaces' Pod Security labels: {}", e.detail()),
    }
    if let Err(e) = deployer::observe(kube, recorded, outputs, false, dl).await {
        tracing::warn!("could not read the deployer objects: {}", e.detail());
    }
}

impl K8sCluster {
    /// Create and update: do what is missing, then read the cluster back.
    async fn converge(&self, ctx: &Context, req: ApplyRequest, op: Operation) -> ApplyResponse {
        let mut resp = ApplyResponse {
            state: req.prior.clone(),
            private: req.private.clone(),
            ..Default::default()
        };
        let d = &mut resp.diagnostics;
        // The plan, not the configuration: it has the schema's defaults.
        let Some(config) = decode::<ClusterConfig>(&req.planned, "plan", d) else {
            return resp;
        };
        let prior: Option<(ClusterConfig, Outputs)> = if req.prior.is_null() {
            None
        } else {
            match (
                decode::<ClusterConfig>(&req.prior, "prior state", d),
                decode::<Outputs>(&req.prior, "prior state", d),
            ) {
                (Some(c), Some(o)) => Some((c, o)),
                _ => return resp,
            }
        };
        let mut problems = unsupported(&config);
        problems.extend(addons::check(&config));
        problems.extend(pod_security::check(&req.planned));
        if !problems.is_empty() {
            d.0.extend(problems);
            return resp;
        }
        let Some(spec) = spec_or_diagnose(&config, d) else {
            return resp;
        };
        let Some(provider) = provider_state(ctx) else {
            d.error("Provider not configured", "The provider was not configured before this operation. This is a bug in the provider or the CLI; please report it.");
            return resp;
        };
        let dl = Deadline::new(&ctx.cancel, limit(&req.planned, op));
        // A new cluster's binaries are fetched and checked before any SSH
        // session: a bad bundle or checksum leaves every host untouched. An
        // update assembles them only if a node needs preparing, so a repair
        // (a kubelet restart) needs no mirror.
        let mut payload = None;
        if prior.is_none() {
            match assemble(&config, ctx, &dl).await {
                Ok(p) => payload = Some(p),
                Err(e) => {
                    d.0.push(e);
                    return resp;
                }
            }
        }
        let prior_outputs = prior.as_ref().map(|p| p.1.clone()).unwrap_or_default();

        // Workers being removed stay recorded until their reset succeeded.
        let mut recorded = config.clone();
        let mut failure: Option<Diagnostic> = None;
        let mut handles = open_reachable(ctx, &provider, &config, &mut failure).await;
        let mut kubeconfig = prior_outputs.kubeconfig.clone();
        // The settings each node gets, from the facts its probe just read;
        // they must be those the plan showed.
        let mut effective = prior_outputs.effective_node_settings.clone();
        if failure.is_none() {
            let fresh = detect::entries(&config, handles.iter().map(|(h, p)| (h.host(), &p.facts)), "applied");
            let planned = req.planned.attr(detect::ATTR);
            if planned.is_wholly_known()
                && !planned.is_null()
                && !detect::value(&fresh).is_some_and(|v| crate::framework::value::semantically_equal(&v, planned))
            {
                d.error(
                    "Host facts changed since the plan",
                    format!(
                        "The node settings chosen from the hosts' facts differ from the plan's `{}`: a host changed between plan and apply. Nothing was changed; run the plan again.",
                        detect::ATTR
                    ),
                );
                return resp;
            }
            effective = Some(fresh);
        }
        let mut node_specs: Vec<ClusterSpec> = handles.iter().map(|(_, p)| config.node_spec(&spec, &p.facts)).collect();
        // A `version` change on a running cluster: the in-place upgrade,
        // node by node, before anything else; then the nodes are read
        // again (they run other binaries now) for the rest of the apply.
        let upgrading = upgrade::pending(prior.as_ref().map(|p| p.0.version.as_str()), &spec.version);
        if failure.is_none() && upgrading && handles.first().is_some_and(|(_, p)| p.initialized) {
            let conv = NodeConvergence::new(ctx, &provider, &config, &spec, &dl);
            match conv.upgrade(&mut payload, &handles, &node_specs, &kubeconfig).await {
                Ok(()) => {
                    handles = open_reachable(ctx, &provider, &config, &mut failure).await;
                    node_specs = handles.iter().map(|(_, p)| config.node_spec(&spec, &p.facts)).collect();
                }
                Err(e) => failure = Some(e),
            }
        }
        if failure.is_none() {
            let removed = removed_workers(prior.as_ref().map(|p| &p.0), &config);
            let (outcome, still_there) = NodeConvergence::new(ctx, &provider, &config, &spec, &dl)
                .run(&mut payload, &handles, &node_specs, &removed, &mut kubeconfig)
                .await;
            recorded.workers = recorded_workers(&config, still_there);
            failure = outcome.err();
        }

        // Read back what exists, whatever happened above.
        // Stopped (Ctrl-C) or timed out: the operation's token is cancelled,
        // yet the state must say what the nodes run now (an upgrade may have
        // moved some on): the read-back gets its own short limit.
        let rb = read_back_context(ctx);
        let rb_dl = Deadline::new(&rb.cancel, READ_BACK_AFTER_STOP);
        let probes = probe_all(&rb, &provider, &recorded).await;
        observe_api_server(&mut recorded, &probes);
        let (mut outputs, kube) = observe(
            &rb,
            &recorded,
            &probes,
            &kubeconfig,
            &prior_outputs,
            if ctx.cancel.is_cancelled() { &rb_dl } else { &dl },
        )
        .await;
        outputs.effective_node_settings = effective;
        // An upgrade that stopped half-way: the state keeps the version the
        // cluster ran (the nodes' own versions say how far it got), so the
        // next plan shows the change again and its apply resumes.
        if failure.is_some()
            && upgrading
            && !upgrade::everywhere(&outputs, &spec.version)
            && let Some((p, _)) = &prior
        {
            recorded.version = p.version.clone();
        }

        // The add-ons, once the nodes are there (else as they were).
        let prior_config = prior.as_ref().map(|p| &p.0);
        match &kube {
            Some(k) if failure.is_none() => {
                let nodes: Vec<&NodeHandle> = handles.iter().map(|(h, _)| h).collect();
                failure = addons::converge(
                    ctx,
                    k,
                    &config,
                    prior_config,
                    &mut recorded,
                    &outputs.nodes,
                    &nodes,
                    &dl,
                )
                .await
                .err();
            }
            _ => addons::keep_prior(prior_config, &mut recorded),
        }
        finish_in_cluster(
            kube.as_ref(),
            &config,
            prior.as_ref().map(|p| &p.0),
            &mut recorded,
            &req.planned,
            &mut failure,
            &dl,
        )
        .await;
        if let Some(k) = &kube {
            finish_access(
                k,
                &config,
                prior_config,
                &recorded,
                &req.planned,
                &mut outputs,
                &mut failure,
                &dl,
            )
            .await;
        }
        if let Some(f) = failure {
            d.0.push(f);
        }
        resp.state = encode(&recorded, &outputs, &req.planned, d);
        resp
    }
}

/// How long the read-back after a stopped (Ctrl-C) or timed-out apply may
/// take: Terraform waits for it, and a second Ctrl-C ends it sooner.
const READ_BACK_AFTER_STOP: Duration = Duration::from_secs(30);

/// `ctx`, or after it was cancelled a copy whose token ends after
/// [`READ_BACK_AFTER_STOP`], for reading back what an apply left.
fn read_back_context(ctx: &Context) -> Context {
    if !ctx.cancel.is_cancelled() {
        return ctx.clone();
    }
    tracing::info!("the operation was stopped: reading back what the nodes run now (at most {READ_BACK_AFTER_STOP:?})");
    let token = tokio_util::sync::CancellationToken::new();
    let ends = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(READ_BACK_AFTER_STOP).await;
        ends.cancel();
    });
    Context {
        cancel: token,
        ..ctx.clone()
    }
}

/// Why the plan's `version` cannot replace the prior one in place, said at
/// `version`: a downgrade or a skipped minor (kubeadm's skew policy), or a
/// release the bundle does not hold. Any other change is an in-place
/// upgrade ([`upgrade`]).
fn version_change_problem(prior: &Value, planned: &Value) -> Option<Diagnostic> {
    let (old, new) = (prior.attr("version").as_str()?, planned.attr("version").as_str()?);
    if old == new {
        return None;
    }
    let at = |summary: &str, detail: String| error(summary, detail, Some(AttributePath::root("version")));
    if let (Ok(from), Ok(to)) = (crate::cluster::Version::parse(old), crate::cluster::Version::parse(new))
        && let Err(why) = crate::cluster::upgrade::check(&from, &to)
    {
        return Some(at("Version change refused", why));
    }
    // (a plan whose `install` is not known yet is checked at apply)
    if let Ok(config) = from_value::<ClusterConfig>(planned)
        && config.uses_bundle()
        && let Err(e) = payload::Payload::from_bundle(
            config.install().bundle.as_deref().unwrap_or_default(),
            new,
            config.distro(),
        )
    {
        return Some(at(
            "Version not in the bundle",
            format!("{} Point install.bundle at a bundle of {new} to upgrade.", e.detail),
        ));
    }
    None
}

/// The attributes a user sets (everything but the outputs) and the
/// blocks, from the schema: a new setting cannot be left out. Built once
/// per process: every plan of the resource compares them.
fn settings() -> &'static [String] {
    static SETTINGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SETTINGS.get_or_init(|| {
        let block = schema::schema().block;
        block
            .attributes
            .iter()
            .filter(|a| a.required || a.optional)
            .map(|a| a.name.clone())
            .chain(block.blocks.iter().map(|b| b.name.clone()))
            .collect()
    })
}

/// Whether the plan must show `nodes` as changing: any update (apply reads
/// the nodes again, and they may have moved on since the refresh), which
/// includes a worker added or removed and a node that needs repair.
fn nodes_change(planned: &Value, config: &Value, prior: &Value) -> bool {
    if settings().iter().any(|a| planned.attr(a) != prior.attr(a)) {
        return true;
    }
    if !config.attr("workers").is_wholly_known() {
        return true;
    }
    let configured: Vec<SshObject> = from_value(config.attr("workers")).unwrap_or_default();
    let recorded: Vec<SshObject> = from_value(prior.attr("workers")).unwrap_or_default();
    if configured != recorded {
        return true;
    }
    let nodes: Vec<NodeModel> = from_value(prior.attr("nodes")).unwrap_or_default();
    nodes.len() != recorded.len() + 1 || nodes.iter().any(NodeModel::needs_repair)
}

#[async_trait]
impl Resource for K8sCluster {
    fn type_name(&self) -> &'static str {
        "selfhost_k8s_cluster"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    async fn validate(&self, _ctx: &Context, config: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        d.0.extend(pod_security::check(config));
        d.0.extend(node_targets::check(config));
        if let Some(c) = checkable(config) {
            d.0.extend(unsupported(&c));
            d.0.extend(addons::check(&c));
            let _ = spec_or_diagnose(&c, &mut d);
        } else if let Some(v) = config.attr("version").as_str()
            && let Err(m) = crate::cluster::Version::parse(v)
        {
            d.attribute_error(
                AttributePath::root("version"),
                "Invalid cluster setting",
                format!("{m}."),
            );
        }
        d
    }

    async fn modify_plan(&self, ctx: &Context, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if resp.planned.is_null() {
            return;
        }
        detect::plan(ctx, req, resp).await;
        pod_security::plan(&mut resp.planned);
        deployer::plan(&req.prior, &mut resp.planned, deployer::now());
        if req.prior.is_null() {
            return;
        }
        if let Some(d) = version_change_problem(&req.prior, &resp.planned) {
            resp.diagnostics.0.push(d);
        }
        // an upgrade changes the version the API server reports
        if req.prior.attr("version") != resp.planned.attr("version")
            && let Some(slot) = resp.planned.attr_mut("running_version")
        {
            *slot = Value::unknown();
        }
        if nodes_change(&resp.planned, &req.config, &req.prior)
            && let Some(slot) = resp.planned.attr_mut("nodes")
        {
            *slot = Value::unknown();
        }
    }

    async fn create(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        self.converge(ctx, req, Operation::Create).await
    }

    async fn update(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        self.converge(ctx, req, Operation::Update).await
    }

    async fn read(&self, ctx: &Context, req: ReadRequest) -> ReadResponse {
        let mut resp = ReadResponse {
            state: req.state.clone(),
            private: req.private.clone(),
            diagnostics: Diagnostics::new(),
        };
        let d = &mut resp.diagnostics;
        let (Some(mut config), Some(prior)) = (
            decode::<ClusterConfig>(&req.state, "state", d),
            decode::<Outputs>(&req.state, "state", d),
        ) else {
            return resp;
        };
        let Some(provider) = provider_state(ctx) else {
            return resp;
        };
        let opened = open_all(ctx, &provider, &config).await;
        if let Some(Ok((_, cp))) = opened.first()
            && !cp.initialized
        {
            tracing::info!(
                "{}: no control plane (kubeadm was reset): the cluster is gone",
                config.control_plane.host
            );
            resp.state = Value::Null;
            return resp;
        }
        let mut targets = vec![(config.control_plane.clone(), Role::ControlPlane)];
        targets.extend(
            config
                .workers()
                .iter()
                .enumerate()
                .map(|(i, w)| (w.clone(), Role::Worker(i))),
        );
        let probes: Vec<(SshObject, Role, Option<Probe>)> = targets
            .into_iter()
            .zip(opened)
            .map(|((ssh, role), r)| {
                if let Err(e) = &r {
                    tracing::warn!("{}: {}", e.summary, e.detail);
                }
                (ssh, role, r.ok().map(|(_, p)| p))
            })
            .collect();
        observe_api_server(&mut config, &probes);
        let dl = Deadline::new(&ctx.cancel, READ_API_LIMIT.min(limit(&req.state, Operation::Read)));
        let (mut outputs, kube) = observe(ctx, &config, &probes, &prior.kubeconfig, &prior, &dl).await;
        // A state from an earlier provider version (or an import) has no
        // entries yet: the facts the probes read give them.
        if outputs.effective_node_settings.is_none() && probes.iter().all(|(_, _, p)| p.is_some()) {
            outputs.effective_node_settings = Some(detect::entries(
                &config,
                probes
                    .iter()
                    .filter_map(|(ssh, _, p)| p.as_ref().map(|p| (ssh.host.as_str(), &p.facts))),
                "read",
            ));
        }
        if let Some(k) = &kube
            && let Ok(seen) = api::observe_namespaces(k, config.namespaces(), &dl).await
            && config.namespace.is_some()
        {
            config.namespace = Some(seen);
        }
        if let Some(k) = &kube {
            addons::observe(k, &mut config, &outputs.nodes, &dl).await;
            if let Ok(seen) = pod_security::observe(k, config.namespaces(), &dl).await {
                outputs.pod_security_labels = seen;
            }
            if let Err(e) = deployer::observe(k, &config, &mut outputs, true, &dl).await {
                tracing::warn!("could not read the deployer objects: {}", e.detail());
            }
        }
        resp.state = encode(&config, &outputs, &req.state, d);
        resp
    }

    async fn import(&self, ctx: &Context, id: &str) -> ImportResponse {
        import::import(ctx, id).await
    }

    async fn delete(&self, ctx: &Context, state: Value, _private: PrivateState) -> Diagnostics {
        let mut d = Diagnostics::new();
        let Some(config) = decode::<ClusterConfig>(&state, "state", &mut d) else {
            return d;
        };
        let Some(provider) = provider_state(ctx) else {
            return d;
        };
        let opened = open_all(ctx, &provider, &config).await;
        let mut handles = Vec::new();
        for r in opened {
            match r {
                Ok(h) => handles.push(h),
                Err(e) => {
                    d.0.push(e);
                    return d;
                }
            }
        }
        let Some((cp, cp_probe)) = handles.first() else {
            return d;
        };
        // Workers first: drain (best effort: the API may be down), reset.
        let dist = distribution::of(config.distro());
        let workers = &handles[1..];
        if cp_probe.initialized {
            for (w, p) in workers {
                if let Ok(name) = node_name(w, p)
                    && let Err(e) = dist.drain(ctx, cp, &name).await
                {
                    tracing::warn!("{}: {}", e.summary, e.detail);
                }
            }
        }
        let resets = join_all(workers.iter().map(|(w, _)| dist.reset(ctx, w))).await;
        if let Some(e) = resets.into_iter().find_map(Result::err) {
            d.0.push(e);
            return d;
        }
        if let Err(e) = dist.reset(ctx, cp).await {
            d.0.push(e);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attributes only the provider sets.
    const COMPUTED_OUTPUTS: [&str; 11] = [
        "id",
        "kubeconfig",
        "api_server_url",
        "ca_certificate",
        "nodes",
        "running_version",
        "effective_node_settings",
        "pod_security_labels",
        "deployer_rbac",
        "deployer_kubeconfigs",
        "deployer_token_expiry",
    ];
    use std::time::Instant;

    /// A mirror that accepts connections and never answers: the
    /// operation's time limit, not the per-read timeout, ends the fetch.
    #[tokio::test]
    async fn fetching_the_payload_ends_at_the_operation_time_limit() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let config: ClusterConfig = serde_json::from_value(serde_json::json!({
            "distribution": "k3s",
            "version": "v1.36.3",
            "control_plane": {"host": "10.0.0.1", "port": 22, "user": "root", "host_key": "ssh-ed25519 AAAA"},
            "install": {"source": "download", "k3s_url": format!("http://{addr}/k3s")},
        }))
        .expect("config");
        let ctx = Context {
            cancel: Default::default(),
            provider_data: None,
            write_only_supported: true,
        };
        let dl = Deadline::new(&ctx.cancel, Duration::from_secs(2));
        let started = Instant::now();
        let r = assemble(&config, &ctx, &dl).await;
        let took = started.elapsed();
        server.abort();
        let e = r.expect_err("a mirror that never answers cannot make a payload");
        assert_eq!(e.summary, "Timed out", "{e:?}");
        assert!(took < Duration::from_secs(10), "ended after {took:?}");
        assert_eq!(e.attribute, Some(AttributePath::root("install")));
    }

    /// What the list held when it was written by hand: the schema gives
    /// the same, plus whatever a later attribute adds.
    #[test]
    fn settings_are_every_attribute_a_user_sets() {
        let got: std::collections::BTreeSet<String> = settings().iter().cloned().collect();
        for a in [
            "distribution",
            "version",
            "control_plane",
            "workers",
            "pod_cidr",
            "service_cidr",
            "cni",
            "install",
            "node_settings",
            "namespace",
            "timeouts",
        ] {
            assert!(got.contains(a), "{a} missing from {got:?}");
        }
        for output in COMPUTED_OUTPUTS {
            assert!(!got.contains(output), "{output} is an output");
        }
    }

    /// A worker dropped from the configuration is removed; one whose reset
    /// failed stays recorded after the configured ones.
    #[test]
    fn removed_workers_stay_recorded_until_reset() {
        let worker = |host: &str| SshObject {
            host: host.into(),
            port: 22,
            user: "root".into(),
            host_key: "ssh-ed25519 AAAA".into(),
        };
        let mut prior = small_config();
        prior.workers = Some(vec![worker("10.0.0.2"), worker("10.0.0.3")]);
        let mut config = small_config();
        config.workers = Some(vec![worker("10.0.0.2")]);
        let removed = removed_workers(Some(&prior), &config);
        assert_eq!(removed, [worker("10.0.0.3")]);
        assert_eq!(removed_workers(None, &config), []);
        assert_eq!(
            recorded_workers(&config, removed),
            Some(vec![worker("10.0.0.2"), worker("10.0.0.3")])
        );
        assert_eq!(recorded_workers(&small_config(), Vec::new()), None);
    }

    /// Every version change is refused at `version` (until in-place
    /// upgrades land), each with its reason; an undecodable plan too.
    #[test]
    fn version_changes_are_refused_at_the_attribute_with_their_reason() {
        let mut d = Diagnostics::new();
        let prior = encode(&small_config(), &Outputs::default(), &Value::Null, &mut d);
        let with = |v: &str| {
            let mut p = prior.clone();
            if let Some(slot) = p.attr_mut("version") {
                *slot = Value::String(v.into());
            }
            p
        };
        assert!(version_change_problem(&prior, &prior).is_none());
        for (to, summary) in [
            ("v1.35.4", "Version change refused"),
            ("v1.38.0", "Version change refused"),
        ] {
            let e = version_change_problem(&prior, &with(to)).expect("refused");
            assert_eq!(
                (e.summary.as_str(), e.attribute.clone()),
                (summary, Some(AttributePath::root("version"))),
                "{to}"
            );
        }
        // one minor or a patch up: an in-place upgrade
        for to in ["v1.36.4", "v1.37.1"] {
            assert!(version_change_problem(&prior, &with(to)).is_none(), "{to}");
        }
        let mut unknown_install = with("v1.37.1");
        if let Some(slot) = unknown_install.attr_mut("install") {
            *slot = Value::unknown();
        }
        assert!(version_change_problem(&prior, &unknown_install).is_none());
        // a bundle that holds another release
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("MANIFEST.json"), r#"{"kubernetes": "v1.36.3"}"#).expect("write");
        let mut from_bundle = with("v1.37.1");
        if let Some(slot) = from_bundle.attr_mut("install") {
            *slot = crate::framework::typed::to_value(&serde_json::json!({
                "source": "bundle",
                "bundle": dir.path().display().to_string(),
            }))
            .expect("value");
        }
        let e = version_change_problem(&prior, &from_bundle).expect("refused");
        assert_eq!(e.summary, "Version not in the bundle");
        assert!(e.detail.contains("holds Kubernetes \"v1.36.3\""), "{}", e.detail);
    }

    /// A refused `cni` does not hide the other settings' errors.
    #[test]
    fn a_refused_cni_leaves_the_rest_checkable() {
        let mut v = crate::framework::typed::to_value(&small_config()).expect("value");
        if let Some(slot) = v.attr_mut("cni") {
            *slot = Value::String("calico".into());
        }
        if let Some(slot) = v.attr_mut("pod_cidr") {
            *slot = Value::String("10.0.0.1/8".into());
        }
        let c = checkable(&v).expect("checkable with cni unset");
        assert_eq!(c.cni, None);
        let mut d = Diagnostics::new();
        assert!(spec_or_diagnose(&c, &mut d).is_none());
        assert!(
            d.0.iter().any(|e| e.attribute == Some(AttributePath::root("pod_cidr"))),
            "{d:?}"
        );
    }

    fn small_config() -> ClusterConfig {
        serde_json::from_value(serde_json::json!({
            "version": "v1.36.3",
            "control_plane": {"host": "10.0.0.1", "port": 22, "user": "root", "host_key": "ssh-ed25519 AAAA"},
        }))
        .expect("config")
    }

    /// The record keeps the planned `timeouts` for import; one that does not
    /// decode is a diagnostic at `timeouts`, not a record without them.
    #[test]
    fn the_import_record_keeps_timeouts_or_says_why_not() {
        let planned = Value::Object(
            [(
                "timeouts".to_owned(),
                Value::Object(
                    [("create".to_owned(), Value::String("45m".into()))]
                        .into_iter()
                        .collect(),
                ),
            )]
            .into_iter()
            .collect(),
        );
        let record = record_of(&small_config(), &planned).expect("record");
        let create = record
            .timeouts
            .as_ref()
            .and_then(|t| t.get("create").cloned().flatten());
        assert_eq!(create.as_deref(), Some("45m"));

        let malformed = Value::Object([("timeouts".to_owned(), Value::Bool(true))].into_iter().collect());
        let e = record_of(&small_config(), &malformed).expect_err("refused");
        assert_eq!(e.summary, "Invalid timeouts");
        assert_eq!(e.attribute, Some(AttributePath::root("timeouts")));
    }

    /// Terraform's proposed new state: the configuration, with the prior
    /// value of every computed attribute the configuration leaves null
    /// (also inside `node_settings`).
    fn proposed(config: &Value, prior: &Value) -> Value {
        let block = schema::schema().block;
        let mut p = config.clone();
        for a in block.attributes.iter().filter(|a| a.computed) {
            if let Some(slot) = p.attr_mut(&a.name)
                && slot.is_null()
            {
                *slot = prior.attr(&a.name).clone();
            }
        }
        let ns = block.blocks.iter().find(|b| b.name == "node_settings").expect("block");
        if let Some(slot) = p.attr_mut("node_settings")
            && !slot.is_null()
        {
            for a in ns.block.attributes.iter().filter(|a| a.computed) {
                if let Some(v) = slot.attr_mut(&a.name)
                    && v.is_null()
                {
                    *v = prior.attr("node_settings").attr(&a.name).clone();
                }
            }
        }
        p
    }

    /// A cluster an earlier provider version made: an empty
    /// `node_settings {}` block recorded its defaults, and the state has no
    /// `effective_node_settings` (or one a refresh filled). Neither plans a
    /// replacement; the only change is the security this version turns on
    /// by default (a refresh reads it as off), and once on, none.
    #[tokio::test]
    async fn a_state_from_an_earlier_version_plans_no_change() {
        let mut old = small_config();
        old.node_settings = Some(model::NodeSettingsModel {
            containerd_snapshotter: Some("overlayfs".into()),
            containerd_restrict_oom_score_adj: Some(false),
            kubelet_cgroup_driver: Some("systemd".into()),
            ..Default::default()
        });
        // as the state holds them: the schema's defaults filled in
        old.distribution = Some(Distro::Kubeadm);
        old.pod_cidr = Some(schema::DEFAULT_POD_CIDR.into());
        old.service_cidr = Some(schema::DEFAULT_SERVICE_CIDR.into());
        old.cni = Some(model::Cni::Flannel);
        old.network_policy_enforcement = Some(true);
        old.metrics_server = Some(true);
        old.pod_security = Some("restricted".into());
        let vm = crate::cluster::facts::HostFacts::parse(crate::cluster::facts::KVM_VPS_FIXTURE);
        let mut outputs = Outputs {
            id: "uid".into(),
            kubeconfig: "kc".into(),
            api_server_url: "https://10.0.0.1:6443".into(),
            nodes: vec![NodeModel {
                name: "cp".into(),
                host: "10.0.0.1".into(),
                role: "control-plane".into(),
                ready: true,
                version: "v1.36.3".into(),
                status: STATUS_OK.into(),
            }],
            running_version: "v1.36.3".into(),
            ..Default::default()
        };
        let mut written = small_config();
        written.node_settings = Some(model::NodeSettingsModel::default());
        let mut d = Diagnostics::new();
        let mut config = encode(&written, &Outputs::default(), &Value::Null, &mut d);
        for a in COMPUTED_OUTPUTS {
            if let Some(slot) = config.attr_mut(a) {
                *slot = Value::Null;
            }
        }
        const SECURITY: [&str; 3] = ["secrets_encryption", "secrets_encryption_key_version", "audit_log"];
        for (refreshed, secured) in [(false, false), (true, false), (true, true)] {
            outputs.effective_node_settings = refreshed.then(|| detect::entries(&old, [("10.0.0.1", &vm)], "test"));
            let mut old = old.clone();
            if refreshed {
                old.observe_api_server(&crate::cluster::apiserver::ObservedSecurity::default());
            }
            if secured {
                (
                    old.secrets_encryption,
                    old.secrets_encryption_key_version,
                    old.audit_log,
                ) = (Some(true), Some(1), Some(true));
            }
            let prior = encode(&old, &outputs, &Value::Null, &mut d);
            assert!(d.0.is_empty(), "{d:?}");
            let ctx = Context {
                cancel: Default::default(),
                provider_data: None,
                write_only_supported: true,
            };
            let resp =
                crate::framework::plan::plan_resource(&K8sCluster, &ctx, &prior, &proposed(&config, &prior), &config)
                    .await;
            assert!(resp.diagnostics.0.is_empty(), "{:?}", resp.diagnostics);
            assert!(resp.requires_replace.is_empty(), "{:?}", resp.requires_replace);
            if secured {
                assert!(
                    crate::framework::value::semantically_equal(&resp.planned, &prior),
                    "planned {:?}\nprior {:?}",
                    resp.planned,
                    prior
                );
                continue;
            }
            let Value::Object(attrs) = &prior else {
                panic!("prior is an object")
            };
            for (name, before) in attrs {
                let after = resp.planned.attr(name);
                if SECURITY.contains(&name.as_str()) {
                    let on = [Value::Bool(true), Value::from(1), Value::Bool(true)];
                    let i = SECURITY.iter().position(|s| s == name).unwrap_or_default();
                    assert!(
                        crate::framework::value::semantically_equal(after, &on[i]),
                        "{name}: {after:?}"
                    );
                } else if !["nodes", "effective_node_settings"].contains(&name.as_str()) {
                    assert!(
                        crate::framework::value::semantically_equal(after, before),
                        "refreshed={refreshed}: {name} planned {after:?}, was {before:?}"
                    );
                }
            }
        }
    }
}
