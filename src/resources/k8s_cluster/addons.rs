//! The cluster's add-ons as the resource sees them: which ones the
//! configuration turns on, installing and removing them once the nodes
//! converged, and reading them back (an add-on that is gone or changed by
//! hand reads as turned off, so the plan shows it and apply restores it).

use crate::framework::resource::Context;
use crate::framework::{AttributePath, Diagnostic};
use crate::kube::addons::lifecycle::{self, Observed};
use crate::kube::addons::traefik::{self, IngressSettings};
use crate::kube::addons::{Addon, metrics_server, network_policies};
use crate::kube::{Deadline, Kube, KubeError};

use super::api::kube_diagnostic;
use super::model::{ClusterConfig, Distro, IngressModel, NodeModel};
use super::node::{NodeHandle, error};

/// One add-on the resource manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `network_policy_enforcement` (kubeadm only: k3s enforces itself).
    NetworkPolicies,
    /// `metrics_server`.
    MetricsServer,
    /// `ingress {}`.
    Ingress,
}

/// In install order.
pub const ALL: [Kind; 3] = [Kind::NetworkPolicies, Kind::MetricsServer, Kind::Ingress];

impl Kind {
    /// The attribute (or block) that turns it on.
    pub fn attribute(self) -> &'static str {
        match self {
            Kind::NetworkPolicies => network_policies::ADDON,
            Kind::MetricsServer => metrics_server::ADDON,
            Kind::Ingress => traefik::ADDON,
        }
    }

    /// Whether `config` (with the schema's defaults) turns it on.
    pub fn on(self, config: &ClusterConfig) -> bool {
        match self {
            Kind::NetworkPolicies => {
                config.network_policy_enforcement.unwrap_or(true) && config.distro() == Distro::Kubeadm
            }
            Kind::MetricsServer => config.metrics_server.unwrap_or(true),
            Kind::Ingress => config.ingress.is_some(),
        }
    }

    /// Record it in `state` as not (or no longer) there: what the plan
    /// then offers to install again. With k3s network policies are not
    /// ours, so nothing changes.
    pub fn mark_off(self, state: &mut ClusterConfig) {
        match self {
            Kind::NetworkPolicies if state.distro() == Distro::Kubeadm => {
                state.network_policy_enforcement = Some(false)
            }
            Kind::NetworkPolicies => {}
            Kind::MetricsServer => state.metrics_server = Some(false),
            Kind::Ingress => state.ingress = None,
        }
    }

    /// Copy its setting from `from` into `state`.
    fn copy(self, from: &ClusterConfig, state: &mut ClusterConfig) {
        match self {
            Kind::NetworkPolicies => state.network_policy_enforcement = from.network_policy_enforcement,
            Kind::MetricsServer => state.metrics_server = from.metrics_server,
            Kind::Ingress => state.ingress = from.ingress.clone(),
        }
    }
}

/// The host of the node the ingress runs on: `ingress.node`, else the
/// control plane.
pub fn ingress_host(config: &ClusterConfig) -> Option<&str> {
    let i = config.ingress.as_ref()?;
    Some(i.node.as_deref().unwrap_or(&config.control_plane.host))
}

/// Plan-time checks of the `ingress` block, at its attributes.
pub fn check(config: &ClusterConfig) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(i) = &config.ingress else {
        return out;
    };
    if let Some(node) = &i.node
        && *node != config.control_plane.host
        && !config.workers().iter().any(|w| w.host == *node)
    {
        out.push(error(
            "Invalid ingress node",
            format!(
                "{node:?} is not the host of one of this cluster's nodes (the control plane's or a worker's `host`)."
            ),
            Some(AttributePath::root("ingress").attr("node")),
        ));
    }
    match &i.acme {
        None => out.push(error(
            "Missing ACME settings",
            "The ingress obtains its certificates by ACME: add an `acme { email = \"...\" }` block (Let's Encrypt by default).".to_owned(),
            Some(AttributePath::root("ingress").attr("acme")),
        )),
        Some(a) if a.server.is_some() && a.staging == Some(true) => out.push(error(
            "Conflicting ACME settings",
            "`staging = true` selects Let's Encrypt's staging directory; with `server` set it would be ignored. Set one of the two.".to_owned(),
            Some(AttributePath::root("ingress").attr("acme").attr("staging")),
        )),
        Some(_) => {}
    }
    if config.distro() == Distro::K3s && config.network_policy_enforcement == Some(false) {
        out.push(error(
            "Not supported with k3s",
            "k3s enforces NetworkPolicy with its own controller, which this provider does not turn off; remove `network_policy_enforcement = false` (or use `cni = \"none\"`, which disables it with flannel).".to_owned(),
            Some(AttributePath::root("network_policy_enforcement")),
        ));
    }
    out
}

fn settings(i: &IngressModel, node: String) -> IngressSettings {
    let acme = i.acme.clone().unwrap_or_default();
    let server = acme.server.unwrap_or_else(|| {
        if acme.staging == Some(true) {
            traefik::LETS_ENCRYPT_STAGING.to_owned()
        } else {
            traefik::LETS_ENCRYPT.to_owned()
        }
    });
    IngressSettings {
        node,
        email: acme.email,
        server,
        ca_certificate: acme.ca_certificate,
    }
}

/// The objects of `kind` for `config`; `nodes` name the ingress node.
fn render(kind: Kind, config: &ClusterConfig, nodes: &[NodeModel]) -> Result<Addon, KubeError> {
    match kind {
        Kind::NetworkPolicies => network_policies::render(),
        Kind::MetricsServer => metrics_server::render(),
        Kind::Ingress => {
            let i = config.ingress.clone().unwrap_or_default();
            let host = ingress_host(config).unwrap_or_default();
            let node = nodes
                .iter()
                .find(|n| n.host == host)
                .map(|n| n.name.clone())
                .unwrap_or_default();
            traefik::render(&settings(&i, node))
        }
    }
}

fn path(kind: Kind) -> AttributePath {
    AttributePath::root(kind.attribute())
}

fn diagnostic(kind: Kind, e: &KubeError) -> Diagnostic {
    let mut d = kube_diagnostic(e, Some(path(kind)));
    d.summary = format!("Add-on {}: {}", kind.attribute(), d.summary);
    d
}

/// The script that makes the ingress node's ACME directory, readable by
/// root only (no input: the path is a constant).
fn acme_dir_script() -> String {
    format!(
        "set -eu\ninstall -d -m 0755 /var/lib/selfhost\ninstall -d -m 0700 -o root -g root {dir}\nchmod 0700 {dir}\n",
        dir = traefik::ACME_DIR
    )
}

/// The script that removes it (with the certificates in it).
fn acme_dir_removal_script() -> String {
    format!("rm -rf {}\n", traefik::ACME_DIR)
}

/// Install what `config` turns on, remove what `prior` had and `config`
/// no longer does; `recorded` gets each add-on as it now is. Stops at the
/// first failure (later add-ons keep their prior record).
#[allow(clippy::too_many_arguments)]
pub async fn converge(
    ctx: &Context,
    kube: &Kube,
    config: &ClusterConfig,
    prior: Option<&ClusterConfig>,
    recorded: &mut ClusterConfig,
    nodes: &[NodeModel],
    handles: &[&NodeHandle],
    dl: &Deadline,
) -> Result<(), Diagnostic> {
    for kind in ALL {
        let was = prior.is_some_and(|p| kind.on(p));
        let wanted = kind.on(config);
        let result = if wanted {
            install(ctx, kube, kind, config, prior, nodes, handles, dl).await
        } else if was {
            remove(ctx, kube, kind, prior, nodes, handles, dl).await
        } else {
            Ok(())
        };
        match result {
            Ok(()) => kind.copy(config, recorded),
            Err(e) => {
                match prior {
                    Some(p) if !wanted => kind.copy(p, recorded),
                    _ => kind.mark_off(recorded),
                }
                for later in ALL.iter().skip_while(|k| **k != kind).skip(1) {
                    match prior {
                        Some(p) => later.copy(p, recorded),
                        None => later.mark_off(recorded),
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Without a converge (a node step failed, the API did not answer): each
/// add-on as `prior` had it, or not there for a new cluster.
pub fn keep_prior(prior: Option<&ClusterConfig>, recorded: &mut ClusterConfig) {
    for kind in ALL {
        match prior {
            Some(p) => kind.copy(p, recorded),
            None => kind.mark_off(recorded),
        }
    }
}

fn handle_for<'a>(handles: &[&'a NodeHandle], host: &str) -> Option<&'a NodeHandle> {
    handles.iter().copied().find(|h| h.host() == host)
}

#[allow(clippy::too_many_arguments)]
async fn install(
    ctx: &Context,
    kube: &Kube,
    kind: Kind,
    config: &ClusterConfig,
    prior: Option<&ClusterConfig>,
    nodes: &[NodeModel],
    handles: &[&NodeHandle],
    dl: &Deadline,
) -> Result<(), Diagnostic> {
    let addon = render(kind, config, nodes).map_err(|e| diagnostic(kind, &e))?;
    if kind == Kind::Ingress {
        let host = ingress_host(config).unwrap_or_default();
        let Some(node) = handle_for(handles, host) else {
            return Err(error(
                "Ingress node not reachable",
                format!("No SSH session to {host}, the ingress node, was open; apply again."),
                Some(AttributePath::root("ingress").attr("node")),
            ));
        };
        node.run(ctx, "preparing the ingress's ACME storage", &acme_dir_script(), b"")
            .await?;
        // Moved: the old node's directory holds certificates no one uses.
        if let Some(old) = prior.and_then(ingress_host).filter(|old| *old != host)
            && let Some(h) = handle_for(handles, old)
            && let Err(e) = h
                .run(
                    ctx,
                    "removing the old ingress node's ACME storage",
                    &acme_dir_removal_script(),
                    b"",
                )
                .await
        {
            tracing::warn!("{}: {}", e.summary, e.detail);
        }
    }
    lifecycle::install(kube, &addon, dl)
        .await
        .map_err(|e| diagnostic(kind, &e))
}

async fn remove(
    ctx: &Context,
    kube: &Kube,
    kind: Kind,
    prior: Option<&ClusterConfig>,
    nodes: &[NodeModel],
    handles: &[&NodeHandle],
    dl: &Deadline,
) -> Result<(), Diagnostic> {
    let Some(p) = prior else {
        return Ok(());
    };
    let addon = render(kind, p, nodes).map_err(|e| diagnostic(kind, &e))?;
    lifecycle::remove(kube, &addon, dl)
        .await
        .map_err(|e| diagnostic(kind, &e))?;
    if kind == Kind::Ingress
        && let Some(h) = ingress_host(p).and_then(|host| handle_for(handles, host))
    {
        h.run(
            ctx,
            "removing the ingress's ACME storage",
            &acme_dir_removal_script(),
            b"",
        )
        .await?;
    }
    Ok(())
}

/// Read each add-on `state` has on; one that is gone or changed by hand is
/// marked off in `state` (logged with what differs). An unreadable API
/// leaves `state` as it was.
pub async fn observe(kube: &Kube, state: &mut ClusterConfig, nodes: &[NodeModel], dl: &Deadline) {
    for kind in ALL {
        if !kind.on(state) {
            continue;
        }
        let Ok(addon) = render(kind, state, nodes) else {
            continue;
        };
        match lifecycle::observe(kube, &addon, dl).await {
            Ok(Observed::Present) => {}
            Ok(Observed::Missing(what)) => {
                tracing::info!(
                    "add-on {}: missing {}; apply installs it again",
                    kind.attribute(),
                    what.join(", ")
                );
                kind.mark_off(state);
            }
            Ok(Observed::Drifted(what)) => {
                tracing::info!(
                    "add-on {}: changed outside Terraform ({}); apply restores it",
                    kind.attribute(),
                    what.join("; ")
                );
                kind.mark_off(state);
            }
            Err(e) => tracing::warn!("add-on {}: not read: {e}", kind.attribute()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::k8s_cluster::model::AcmeModel;
    use crate::resources::vps_host::SshObject;

    fn host(h: &str) -> SshObject {
        SshObject {
            host: h.into(),
            port: 22,
            user: "root".into(),
            host_key: "ssh-ed25519 AAAA".into(),
        }
    }

    fn config() -> ClusterConfig {
        serde_json::from_value(serde_json::json!({
            "version": "v1.36.3",
            "control_plane": {"host": "10.0.0.1", "port": 22, "user": "root", "host_key": "ssh-ed25519 AAAA"},
        }))
        .expect("config")
    }

    #[test]
    fn defaults_turn_on_enforcement_and_metrics_but_not_the_ingress() {
        let mut c = config();
        assert!(Kind::NetworkPolicies.on(&c) && Kind::MetricsServer.on(&c) && !Kind::Ingress.on(&c));
        c.distribution = Some(Distro::K3s);
        assert!(!Kind::NetworkPolicies.on(&c), "k3s enforces with its own controller");
        Kind::NetworkPolicies.mark_off(&mut c);
        assert_eq!(c.network_policy_enforcement, None, "nothing to mark with k3s");
        c.distribution = None;
        Kind::MetricsServer.mark_off(&mut c);
        Kind::NetworkPolicies.mark_off(&mut c);
        assert_eq!(
            (c.metrics_server, c.network_policy_enforcement),
            (Some(false), Some(false))
        );
    }

    #[test]
    fn the_ingress_block_is_checked_at_its_attributes() {
        let mut c = config();
        c.workers = Some(vec![host("10.0.0.2")]);
        c.ingress = Some(IngressModel {
            node: Some("10.0.0.9".into()),
            acme: None,
        });
        let paths: Vec<String> = check(&c)
            .iter()
            .filter_map(|d| d.attribute.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(paths, ["ingress.node", "ingress.acme"]);
        c.ingress = Some(IngressModel {
            node: Some("10.0.0.2".into()),
            acme: Some(AcmeModel {
                email: "ops@example.com".into(),
                server: Some("https://acme.example/dir".into()),
                staging: Some(true),
                ca_certificate: None,
            }),
        });
        let paths: Vec<String> = check(&c)
            .iter()
            .filter_map(|d| d.attribute.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(paths, ["ingress.acme.staging"]);
        assert_eq!(ingress_host(&c), Some("10.0.0.2"));
    }

    #[test]
    fn the_acme_server_defaults_to_lets_encrypt_or_its_staging() {
        let acme = |staging, server: Option<&str>| IngressModel {
            node: None,
            acme: Some(AcmeModel {
                email: "ops@example.com".into(),
                server: server.map(str::to_owned),
                staging,
                ca_certificate: None,
            }),
        };
        assert_eq!(settings(&acme(None, None), "n".into()).server, traefik::LETS_ENCRYPT);
        assert_eq!(
            settings(&acme(Some(true), None), "n".into()).server,
            traefik::LETS_ENCRYPT_STAGING
        );
        assert_eq!(
            settings(&acme(Some(false), Some("https://pebble:14000/dir")), "n".into()).server,
            "https://pebble:14000/dir"
        );
    }

    #[test]
    fn the_acme_directory_scripts_take_no_input() {
        assert!(acme_dir_script().contains("install -d -m 0700 -o root -g root /var/lib/selfhost/ingress-acme"));
        assert_eq!(acme_dir_removal_script(), "rm -rf /var/lib/selfhost/ingress-acme\n");
    }
}
