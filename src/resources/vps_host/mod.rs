//! `selfhost_vps_host`: prepare and harden an existing Linux host over SSH.
//!
//! Every operation follows one shape: connect (the pool shares one SSH
//! connection per host), gather the facts in ONE script, then either
//! observe (read) or converge the differing aspects one step each and
//! observe again (create/update), or revert (delete with
//! `on_destroy = "revert"`). State always holds what the host really has,
//! so a half-done apply records what was done and the next apply converges.

mod model;
mod schema;
mod session;

use async_trait::async_trait;

use crate::framework::private::PrivateState;
use crate::framework::resource::{
    ApplyRequest, ApplyResponse, Context, ImportResponse, ModifyPlanRequest, ModifyPlanResponse, ReadRequest,
    ReadResponse, Resource,
};
use crate::framework::typed::{decode, from_value, to_value_as};
use crate::framework::{Diagnostics, Schema, Value};
use crate::host::spec::HostSpec;
use crate::resources::connection::{ConnectionConfig, DEFAULT_PORT};
use crate::resources::state::provider_state;

use model::{AspectsModel, HostState, attribute_path, timeouts_of};
pub(crate) use model::{FactsModel, SshObject};
pub(crate) use schema::{fact_attributes, ssh_object_type};
pub(crate) use session::{HostKeyExpectation, Session};

/// Private-state key set by import: the next read takes the aspects to look
/// at from the host's manifest (what this provider manages there), since an
/// import knows no configuration.
const IMPORTED: &str = "imported";

/// The resource type.
pub struct VpsHost;

/// Encode the state, carrying `timeouts` over from `timeouts_from`.
fn encode(state: &HostState, timeouts_from: &Value, diags: &mut Diagnostics) -> Value {
    match to_value_as(state, &schema::schema().value_type()) {
        Ok(mut v) => {
            if let Some(slot) = v.attr_mut(crate::framework::timeouts::BLOCK) {
                *slot = timeouts_of(timeouts_from);
            }
            v
        }
        Err(e) => {
            diags.error(
                "Unencodable state",
                format!("{e}. This is a bug in the provider; please report it."),
            );
            Value::Null
        }
    }
}

/// The host layer's spec of `model`, or its failures as attribute
/// diagnostics and `None`; `validate` also runs every check of the host
/// layer (configuration), without it only the conversion's (state).
fn spec_of(model: &AspectsModel, validate: bool, diags: &mut Diagnostics) -> Option<HostSpec> {
    let (spec, invalid) = match model.to_spec() {
        Ok(spec) if validate => {
            let invalid = spec.validate();
            (Some(spec), invalid)
        }
        Ok(spec) => (Some(spec), Vec::new()),
        Err(invalid) => (None, invalid),
    };
    for (steps, message) in &invalid {
        diags.attribute_error(attribute_path(steps), "Invalid host setting", format!("{message}."));
    }
    spec.filter(|_| invalid.is_empty())
}

/// The connection as it will be stored: write-only key dropped, the port
/// defaulted and the verified host keys recorded.
fn stored_connection(mut c: ConnectionConfig, seen: &session::SeenKeys) -> ConnectionConfig {
    c.private_key_wo = None;
    c.port.get_or_insert(DEFAULT_PORT);
    c.host_key = Some(seen.host.clone());
    if let Some(b) = c.bastion.as_mut() {
        b.port.get_or_insert(DEFAULT_PORT);
        if let Some(k) = &seen.bastion {
            b.host_key = Some(k.clone());
        }
    }
    c
}

impl VpsHost {
    /// Create and update: converge what differs, then observe.
    async fn apply(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        let mut resp = ApplyResponse {
            state: req.prior.clone(),
            private: req.private.clone(),
            ..Default::default()
        };
        let d = &mut resp.diagnostics;
        let (Some(config_conn), Some(desired)) = (
            decode::<ConnectionHolder>(&req.config, "configuration", d).map(|c| c.connection),
            decode::<AspectsModel>(&req.config, "configuration", d),
        ) else {
            return resp;
        };
        let Some(spec) = spec_of(&desired, true, d) else {
            return resp;
        };
        // The host key to expect: pinned in configuration, else recorded
        // in state (an update), else the first one seen (a create).
        let prior_conn = if req.prior.is_null() {
            None
        } else {
            decode::<ConnectionHolder>(&req.prior, "prior state", d).map(|c| c.connection)
        };
        let expect = HostKeyExpectation::for_apply(&config_conn, prior_conn.as_ref());
        let on_destroy = req.config.attr("on_destroy").as_str().unwrap_or("keep").to_owned();

        let session = match Session::open(ctx, &config_conn, &expect, true).await {
            Ok(s) => s,
            Err(diag) => {
                d.0.push(diag);
                return resp;
            }
        };
        let outcome = session.converge(ctx, &spec, req.prior.is_null()).await;
        for w in &outcome.warnings {
            d.attribute_warning(attribute_path(&w.path), "Not applied on this host", w.message.clone());
        }
        let error_free = outcome.error_free();
        if let Some(diag) = outcome.error {
            d.0.push(diag);
        }
        let Some(observed) = outcome.observed else {
            return resp; // nothing could be read back: the prior state stands
        };
        let aspects = AspectsModel::from_spec(&observed.spec, &desired);
        let wanted = AspectsModel::from_spec(&spec, &desired);
        if error_free && aspects != wanted {
            d.error(
                "Host did not take the settings",
                format!(
                    "{}: every step succeeded, but reading the host back still differs from the configuration in: {}. Check the host's logs; the state records what the host has.",
                    session.label(),
                    model::differing_aspects(&aspects, &wanted).join(", ")
                ),
            );
        }
        let state = HostState::new(
            stored_connection(config_conn, session.seen_keys()),
            aspects,
            observed.facts,
            on_destroy,
            session.ssh_object(),
        );
        resp.state = encode(&state, &req.planned, d);
        resp.private.remove(IMPORTED);
        resp
    }
}

/// The rule a lock-out diagnostic points at: one whose ports include the
/// SSH port but whose protocol is not tcp, else the first rule.
fn lockout_rule_path(aspects: &AspectsModel, ssh_port: u16) -> Option<crate::framework::AttributePath> {
    let rules = &aspects.firewall.as_ref()?.allow;
    let at = |i: usize, attr: &str| {
        crate::framework::AttributePath::root("firewall")
            .attr("allow")
            .index(i as i64)
            .attr(attr)
    };
    let covering = rules
        .iter()
        .position(|r| crate::host::validate::port_range(&r.port).is_ok_and(|range| range.contains(ssh_port)));
    match covering {
        Some(i) => Some(at(i, "protocol")),
        None if rules.is_empty() => None,
        None => Some(at(0, "port")),
    }
}

/// Just the connection block of a configuration, plan or state.
#[derive(serde::Deserialize)]
struct ConnectionHolder {
    #[serde(rename = "ssh_connection")]
    connection: ConnectionConfig,
}

#[async_trait]
impl Resource for VpsHost {
    fn type_name(&self) -> &'static str {
        "selfhost_vps_host"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    async fn validate(&self, _ctx: &Context, config: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        // The firewall must keep the SSH port this provider connects on open.
        let firewall = config.attr("firewall");
        let port = match config.attr("ssh_connection").attr("port") {
            Value::Null => Some(DEFAULT_PORT),
            v => v.as_i64(),
        };
        if let (Some(port), true) = (port, !firewall.is_null() && firewall.is_wholly_known()) {
            let holder = Value::Object([("firewall".to_owned(), firewall.clone())].into_iter().collect());
            if let Ok(aspects) = from_value::<AspectsModel>(&holder)
                && let Ok(port) = u16::try_from(port)
                && let Ok(spec) = aspects.to_spec()
                && let Err((steps, message)) = crate::host::check_firewall_keeps_ssh(&spec, port)
            {
                d.attribute_error(
                    lockout_rule_path(&aspects, port).unwrap_or_else(|| attribute_path(&steps)),
                    "Firewall would lock out SSH",
                    format!("{message}."),
                );
            }
        }
        d
    }

    async fn modify_plan(&self, ctx: &Context, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        // `ssh` is known at plan time whenever the connection is, so the
        // cluster that consumes it plans with real values.
        let planned_ssh = session::planned_ssh_object(ctx, &resp.planned);
        if let Some(slot) = resp.planned.attr_mut("ssh") {
            *slot = planned_ssh;
        }
        // Switching the host's identity (a new address) replaces the
        // resource; RequiresReplace on connection.host covers that. A new
        // pinned key for the same host is an in-place change.
        let _ = req;
    }

    async fn create(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        self.apply(ctx, req).await
    }

    async fn update(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        self.apply(ctx, req).await
    }

    async fn read(&self, ctx: &Context, req: ReadRequest) -> ReadResponse {
        let mut resp = ReadResponse {
            state: req.state.clone(),
            private: req.private.clone(),
            diagnostics: Diagnostics::new(),
        };
        let d = &mut resp.diagnostics;
        let Some(prior) = decode::<HostState>(&req.state, "state", d) else {
            return resp;
        };
        let imported = req.private.get(IMPORTED).is_some();
        let expect = HostKeyExpectation::recorded(&prior.connection);
        let session = match Session::open(ctx, &prior.connection, &expect, false).await {
            Ok(s) => s,
            Err(diag) => {
                d.0.push(diag);
                return resp;
            }
        };
        let prior_aspects = prior.aspects();
        let Some(managed) = spec_of(&prior_aspects, false, d) else {
            return resp;
        };
        let observed = match session.observe(ctx, &managed, imported).await {
            Ok(o) => o,
            Err(diag) => {
                d.0.push(diag);
                return resp;
            }
        };
        let like = if imported {
            AspectsModel::default()
        } else {
            prior_aspects
        };
        let state = HostState::new(
            stored_connection(prior.connection.clone(), session.seen_keys()),
            AspectsModel::from_spec(&observed.spec, &like),
            observed.facts,
            prior.on_destroy.clone().unwrap_or_else(|| "keep".to_owned()),
            session.ssh_object(),
        );
        resp.state = encode(&state, &req.state, d);
        resp
    }

    async fn delete(&self, ctx: &Context, state: Value, _private: PrivateState) -> Diagnostics {
        let mut d = Diagnostics::new();
        let Some(prior) = decode::<HostState>(&state, "state", &mut d) else {
            return d;
        };
        if prior.on_destroy.as_deref() != Some("revert") {
            tracing::info!(host = %prior.connection.host, "on_destroy = keep: leaving the host as it is");
            return d;
        }
        let expect = HostKeyExpectation::recorded(&prior.connection);
        let session = match Session::open(ctx, &prior.connection, &expect, false).await {
            Ok(s) => s,
            Err(diag) => {
                d.0.push(diag);
                return d;
            }
        };
        let Some(managed) = spec_of(&prior.aspects(), false, &mut d) else {
            return d;
        };
        if let Err(diag) = session.revert(ctx, &managed).await {
            d.0.push(diag);
        }
        d
    }

    async fn import(&self, ctx: &Context, id: &str) -> ImportResponse {
        let mut r = ImportResponse::default();
        match session::parse_import_id(id) {
            Ok((user, host, port)) => {
                // A user equal to the provider's default is what a
                // configuration leaves unset: keep it unset, so the plan
                // after the import is empty.
                let default_user = provider_state(ctx)
                    .and_then(|p| p.ssh_defaults.user.clone())
                    .unwrap_or_else(|| "root".to_owned());
                let user = user.filter(|u| *u != default_user);
                let state = HostState::imported(ConnectionConfig {
                    host,
                    port: Some(port),
                    user,
                    private_key: None,
                    private_key_wo: None,
                    agent: None,
                    host_key: None,
                    connect_timeout: None,
                    bastion: None,
                });
                r.state = encode(&state, &Value::Null, &mut r.diagnostics);
                r.private.set(IMPORTED, serde_json::Value::Bool(true));
            }
            Err(e) => r.diagnostics.error(
                "Invalid import ID",
                format!("{e}. Use user@host:port, e.g. `terraform import selfhost_vps_host.cp root@203.0.113.10:22` (user and port are optional)."),
            ),
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::typed::conform;

    fn config(firewall: serde_json::Value) -> Value {
        let json = serde_json::json!({
            "ssh_connection": {"host": "192.0.2.1", "port": null},
            "firewall": firewall,
        });
        let v = crate::framework::codec::json::decode(json.to_string().as_bytes(), &VpsHost.schema().value_type());
        conform(v.expect("decode"), &VpsHost.schema().value_type()).expect("conform")
    }

    #[tokio::test]
    async fn firewall_without_the_ssh_port_is_refused_on_validate() {
        let ctx = Context {
            cancel: Default::default(),
            provider_data: None,
            write_only_supported: true,
        };
        let bad = config(
            serde_json::json!({"allow": [{"port": "80", "protocol": null, "sources": null}, {"port": "22", "protocol": "udp", "sources": null}]}),
        );
        let d = VpsHost.validate(&ctx, &bad).await;
        assert!(d.has_error(), "{d:?}");
        assert!(d.0[0].detail.contains("tcp port 22"), "{}", d.0[0].detail);
        let good = config(serde_json::json!({"allow": [{"port": "20-30", "protocol": null, "sources": null}]}));
        assert!(!VpsHost.validate(&ctx, &good).await.has_error());
    }
}
