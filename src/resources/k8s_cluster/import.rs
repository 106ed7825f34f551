//! `terraform import` of a cluster this provider created: the ID is the
//! control plane's SSH object (`jsonencode(selfhost_vps_host.cp.ssh)`, so
//! its host key is pinned like every connection's); the settings come back
//! from the record the resource keeps in the cluster, the kubeconfig from
//! the control plane over SSH. Terraform reads the nodes right after.

use crate::framework::resource::{Context, ImportResponse};
use crate::framework::timeouts;
use crate::framework::typed::to_value;
use crate::framework::{Diagnostics, Value};
use crate::kube::Deadline;
use crate::resources::state::{kube_clients, provider_state};
use crate::resources::vps_host::SshObject;

use super::model::{Distro, Outputs, Record};
use super::node::Role;
use super::{READ_API_LIMIT, api, encode, open};

const USAGE: &str = "The ID is the control plane's SSH object as JSON: in an import block `id = jsonencode(selfhost_vps_host.cp.ssh)`, or on the command line `terraform import selfhost_k8s_cluster.main '{\"host\":\"203.0.113.10\",\"port\":22,\"user\":\"root\",\"host_key\":\"ssh-ed25519 AAAA...\"}'`";

pub async fn import(ctx: &Context, id: &str) -> ImportResponse {
    let mut r = ImportResponse::default();
    let d = &mut r.diagnostics;
    let ssh: SshObject = match serde_json::from_str(id) {
        Ok(s) => s,
        Err(e) => {
            d.error("Invalid import ID", format!("{e}. {USAGE}."));
            return r;
        }
    };
    let Some(provider) = provider_state(ctx) else {
        d.error(
            "Provider not configured",
            "The provider was not configured before the import. This is a bug in the provider or the CLI; please report it.",
        );
        return r;
    };
    // Which distribution runs there: k3s has its unit, kubeadm its admin.conf.
    let (node, probe, distro) = match open(ctx, &provider, &ssh, Role::ControlPlane, Distro::K3s).await {
        Ok((n, p)) if p.k3s_unit == "k3s" => (n, p, Distro::K3s),
        Ok(_) => match open(ctx, &provider, &ssh, Role::ControlPlane, Distro::Kubeadm).await {
            Ok((n, p)) => (n, p, Distro::Kubeadm),
            Err(e) => {
                d.0.push(e);
                return r;
            }
        },
        Err(e) => {
            d.0.push(e);
            return r;
        }
    };
    if !probe.initialized {
        d.error(
            "No cluster to import",
            format!(
                "{}: neither a k3s server nor a kubeadm control plane runs there.",
                node.label
            ),
        );
        return r;
    }
    let kubeconfig = match super::distribution::of(distro).admin_kubeconfig(ctx, &node).await {
        Ok(k) => k,
        Err(e) => {
            d.0.push(e);
            return r;
        }
    };
    let kube = match kube_clients(ctx).client(&kubeconfig).await {
        Ok(k) => k,
        Err(e) => {
            d.0.push(api::kube_diagnostic(&e, None));
            return r;
        }
    };
    let dl = Deadline::new(&ctx.cancel, READ_API_LIMIT);
    let record = match api::read_record(&kube, &dl).await {
        Ok(Some(json)) => serde_json::from_str::<Record>(&json).map_err(|e| e.to_string()),
        Ok(None) => Err(format!(
            "the cluster has no kube-system/{} ConfigMap: it was not created by this provider (or by a version before import support)",
            api::RECORD_NAME
        )),
        Err(e) => Err(e.detail()),
    };
    let record = match record {
        Ok(rec) => rec,
        Err(m) => {
            d.error("Cannot import the cluster", format!("{}: {m}.", node.label));
            return r;
        }
    };
    let recorded = &record.config.control_plane;
    if recorded.host != ssh.host || recorded.port != ssh.port || record.config.distro() != distro {
        d.error(
            "Cannot import the cluster",
            format!(
                "{}: the cluster's record names another control plane ({}:{}, distribution {:?}).",
                node.label,
                recorded.host,
                recorded.port,
                record.config.distro().as_str()
            ),
        );
        return r;
    }
    r.state = imported_state(record, ssh, kubeconfig, &mut r.diagnostics);
    r
}

/// The state an import returns: the recorded settings with the connection
/// just verified (same host and port) and the kubeconfig read over SSH;
/// the node outputs come with the read Terraform does next.
fn imported_state(record: Record, ssh: SshObject, kubeconfig: String, d: &mut Diagnostics) -> Value {
    let mut config = record.config;
    config.control_plane = ssh;
    let outputs = Outputs {
        kubeconfig,
        ..Default::default()
    };
    // `encode` takes the block from an object holding it (as from a plan).
    let timeouts = Value::Object(
        [(
            timeouts::BLOCK.to_owned(),
            to_value(&record.timeouts).unwrap_or(Value::Null),
        )]
        .into_iter()
        .collect(),
    );
    encode(&config, &outputs, &timeouts, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imported_state_has_the_record_the_connection_and_the_timeouts() {
        let record: Record = serde_json::from_value(serde_json::json!({
            "config": {
                "distribution": "k3s",
                "version": "v1.36.3",
                "control_plane": {"host": "10.0.0.1", "port": 22, "user": "root", "host_key": "ssh-ed25519 OLD"},
                "cni": "flannel",
            },
            "timeouts": {"create": "25m", "update": null},
        }))
        .expect("record");
        let ssh: SshObject = serde_json::from_value(serde_json::json!(
            {"host": "10.0.0.1", "port": 22, "user": "root", "host_key": "ssh-ed25519 NEW"}
        ))
        .expect("ssh");
        let mut d = Diagnostics::new();
        let v = imported_state(record, ssh, "apiVersion: v1".into(), &mut d);
        assert!(!d.has_error(), "{d:?}");
        assert_eq!(v.attr("timeouts").attr("create").as_str(), Some("25m"));
        assert!(v.attr("timeouts").attr("update").is_null());
        assert_eq!(
            v.attr("control_plane").attr("host_key").as_str(),
            Some("ssh-ed25519 NEW")
        );
        assert_eq!(v.attr("distribution").as_str(), Some("k3s"));
        assert_eq!(v.attr("kubeconfig").as_str(), Some("apiVersion: v1"));
    }
}
