//! `effective_node_settings`: the node settings chosen for each node from
//! its host's facts ([`crate::cluster::facts`]), planned by reading the
//! facts over SSH (one exec per host) when the hosts' connections are
//! known, set at apply from the same facts in the node probe, and kept as
//! they are on a plan that changes neither the hosts nor `node_settings`.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;

use super::model::{ClusterConfig, EffectiveSettings};
use super::node::{NodeHandle, Role};
use super::schema;
use super::targets;
use crate::cluster::facts::{self, HostFacts};
use crate::framework::resource::{Context, ModifyPlanRequest, ModifyPlanResponse};
use crate::framework::typed::{conform, from_value, to_value};
use crate::framework::value::semantically_equal;
use crate::framework::{Diagnostic, Type, Value};
use crate::resources::state::ProviderState;
use crate::resources::vps_host::SshObject;

/// The attribute's name.
pub const ATTR: &str = "effective_node_settings";

/// How long a plan waits for the facts of every host before it leaves
/// the attribute "known after apply".
const PLAN_LIMIT: Duration = Duration::from_secs(60);

/// The attributes whose change means the choice must be made again.
const INPUTS: &[&str] = &["control_plane", "workers", "node_settings", "distribution"];

/// Every node's entry, keyed by its host, logged at INFO.
pub fn entries<'a>(
    config: &ClusterConfig,
    nodes: impl IntoIterator<Item = (&'a str, &'a HostFacts)>,
    when: &str,
) -> BTreeMap<String, EffectiveSettings> {
    nodes
        .into_iter()
        .map(|(host, f)| {
            let e = config.effective(f);
            tracing::info!(host = %host, "{host}: node settings ({when}) {}", e.describe());
            (host.to_owned(), e)
        })
        .collect()
}

/// The attribute's value for `map`.
pub fn value(map: &BTreeMap<String, EffectiveSettings>) -> Option<Value> {
    let v = to_value(map).ok()?;
    conform(v, &Type::map(schema::effective_type())).ok()
}

/// Read one host's facts (connect, one exec).
async fn read_facts(
    ctx: &Context,
    provider: &ProviderState,
    ssh: &SshObject,
    role: Role,
) -> Result<HostFacts, Diagnostic> {
    let node = NodeHandle::connect(ctx, provider, ssh, role).await?;
    let out = node.run(ctx, "reading the host's facts", facts::SCRIPT, b"").await?;
    Ok(HostFacts::parse(&out))
}

/// Plan the attribute: kept when nothing it depends on changes, read from
/// the hosts when their connections are known, else known after apply.
pub async fn plan(ctx: &Context, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
    if !resp.planned.attr(ATTR).is_unknown() {
        return;
    }
    let prior = req.prior.attr(ATTR);
    let unchanged = INPUTS
        .iter()
        .all(|a| semantically_equal(resp.planned.attr(a), req.prior.attr(a)));
    if !req.prior.is_null() && !prior.is_null() && unchanged {
        let kept = prior.clone();
        if let Some(slot) = resp.planned.attr_mut(ATTR) {
            *slot = kept;
        }
        return;
    }
    if !INPUTS.iter().all(|a| resp.planned.attr(a).is_wholly_known()) {
        return;
    }
    let Ok(config) = from_value::<ClusterConfig>(&resp.planned) else {
        return;
    };
    let Some(provider) = crate::resources::state::provider_state(ctx) else {
        return;
    };
    let targets = targets(&config);
    let read = join_all(
        targets
            .iter()
            .map(|(ssh, role)| read_facts(ctx, &provider, ssh, role.clone())),
    );
    let facts = match tokio::time::timeout(PLAN_LIMIT, read).await {
        Ok(r) => r,
        Err(_) => {
            tracing::info!(
                "the hosts' facts were not read within {}s: {ATTR} is known after apply",
                PLAN_LIMIT.as_secs()
            );
            return;
        }
    };
    let mut read = Vec::new();
    for ((ssh, _), f) in targets.iter().zip(facts) {
        match f {
            Ok(f) => read.push((ssh.host.as_str(), f)),
            Err(e) => {
                tracing::info!(host = %ssh.host, "{}: facts not read ({}: {}): {ATTR} is known after apply", ssh.host, e.summary, e.detail);
                return;
            }
        }
    }
    let map = entries(&config, read.iter().map(|(h, f)| (*h, f)), "planned");
    if let (Some(v), Some(slot)) = (value(&map), resp.planned.attr_mut(ATTR)) {
        *slot = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries encode into the attribute's type, and a VM's are the
    /// VPS defaults as the attributes spell them.
    #[test]
    fn entries_encode_and_a_vm_reads_as_the_defaults() {
        let config: ClusterConfig = serde_json::from_value(serde_json::json!({
            "version": "v1.36.3",
            "control_plane": {"host": "10.0.0.1", "port": 22, "user": "root", "host_key": "ssh-ed25519 AAAA"},
        }))
        .expect("config");
        let vm = HostFacts::parse(crate::cluster::facts::KVM_VPS_FIXTURE);
        let map = entries(&config, [("10.0.0.1", &vm)], "test");
        let e = &map["10.0.0.1"];
        assert_eq!(e.profile, "vm (kvm)");
        assert_eq!(e.containerd_snapshotter, "overlayfs");
        assert_eq!(e.kubelet_cgroup_driver, "systemd");
        assert_eq!(e.containerd_restrict_oom_score_adj, Some(false));
        assert_eq!(e.kubelet_cgroup_root, None);
        assert_eq!(e.kubelet_extra_config, None);
        assert_eq!(e.kube_proxy_extra_config, None);
        assert_eq!(e.ignore_preflight_errors, None);
        assert!(value(&map).is_some_and(|v| v.is_wholly_known()));
    }
}
