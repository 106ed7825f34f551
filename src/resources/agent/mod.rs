//! `selfhost_agent`: one isolated workload on Kubernetes (Deployment,
//! Service, Secret, ConfigMap, claim, Ingress, autoscaler, disruption
//! budget), applied server-side, waited for, read back for drift on managed fields only, imported by
//! `namespace/name`.

mod cluster;
mod model;
mod schema;
mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use crate::framework::private::PrivateState;
use crate::framework::resource::{
    ApplyRequest, ApplyResponse, Context, ImportResponse, ModifyPlanRequest, ModifyPlanResponse, ReadRequest,
    ReadResponse, Resource, unsupported_state_version,
};
use crate::framework::timeouts::{self, Operation};
use crate::framework::typed::{decode, from_value};
use crate::framework::value::semantically_equal;
use crate::framework::{AttributePath, Diagnostics, Schema, Value};
use crate::kube::agent::{AgentSpec, LAST_APPLIED};
use crate::kube::{Deadline, Kube};
use crate::resources::kube_object::{
    DRIFT, diagnose, drift_value, from_last_applied, import_kubeconfig, last_applied, parse_import_id, set,
};
use crate::resources::state::kube_clients;
use cluster::Failure;
use model::AgentModel;

/// Attributes left out of the last-applied annotation: the credentials and
/// what Read recomputes.
const NOT_ANNOTATED: &[&str] = &["kubeconfig", DRIFT];
/// Maps whose keys (not values) go in the annotation: secrets, and file
/// contents that would bloat it (annotations are limited to 256 KiB in
/// all); import reads their values from the Secret and the ConfigMap.
const KEYS_ONLY: &[&str] = &["secret_env", "config_files"];
/// Time limit of a Read.
const READ_LIMIT: Duration = Duration::from_secs(120);

/// The resource type.
pub struct Agent;

/// The identity attributes of a state (enough to find and delete).
#[derive(serde::Deserialize)]
struct Identity {
    kubeconfig: String,
    namespace: String,
    name: String,
}

/// Set `id`, `service_dns` and an empty `drift` from the other attributes
/// (unknown while those are unknown).
fn fill_computed(v: &mut Value) {
    let (ns, name) = (v.attr("namespace").as_str(), v.attr("name").as_str());
    let known = ns.zip(name).map(|(ns, name)| (ns.to_owned(), name.to_owned()));
    let id = known
        .as_ref()
        .map_or_else(Value::unknown, |(ns, name)| Value::from(format!("{ns}/{name}")));
    let dns = match (v.attr("port"), &known) {
        (Value::List(ports), Some((ns, name))) if !ports.is_empty() => {
            Value::from(format!("{name}.{ns}.svc.cluster.local"))
        }
        (Value::List(ports), _) if ports.is_empty() => Value::Null,
        (Value::Null, _) => Value::Null,
        _ => Value::unknown(),
    };
    set(v, "id", id);
    set(v, "service_dns", dns);
    set(v, DRIFT, drift_value(Vec::new()));
}

/// The limit of our own waits: a configured timeout also cancels the
/// operation from outside at that moment, so end ours a little earlier to
/// report what was still awaited rather than a bare cancellation.
fn own_limit(configured: Option<Duration>, default: Duration) -> Duration {
    match configured {
        Some(d) => d.saturating_sub(Duration::from_secs(2)).max(Duration::from_secs(1)),
        None => default,
    }
}

/// The client for a model's kubeconfig, or a diagnostic at `kubeconfig`.
async fn client(ctx: &Context, kubeconfig: &str, diags: &mut Diagnostics) -> Option<Kube> {
    match kube_clients(ctx).client(kubeconfig).await {
        Ok(k) => Some(k),
        Err(e) => {
            diagnose(&e, Some(AttributePath::root("kubeconfig")), diags);
            None
        }
    }
}

fn report(f: Failure, diags: &mut Diagnostics) {
    let summary = f.summary.unwrap_or_else(|| f.error.summary());
    match f.path {
        Some(p) => diags.attribute_error(p, summary, f.error.detail()),
        None => diags.error(summary, f.error.detail()),
    }
}

/// The spec a state stands for (without write-only values), annotated as
/// it was applied.
fn spec_of(state: &Value, diags: &mut Diagnostics) -> Option<(AgentModel, AgentSpec)> {
    let model = decode::<AgentModel>(state, "state", diags)?;
    let annotation = match last_applied(&schema::schema(), state, NOT_ANNOTATED, KEYS_ONLY) {
        Ok(a) => a,
        Err(e) => {
            diags.error(
                "Unencodable state",
                format!("{e}. This is a bug in the provider; please report it."),
            );
            return None;
        }
    };
    let spec = model.spec(BTreeMap::new(), Some(annotation));
    Some((model, spec))
}

/// Version 0 → 1: `ingress.issuer` (cert-manager) is gone; traefik's ACME
/// resolver obtains the certificate. Everything else is as it was.
fn upgrade_from_v0(mut state: serde_json::Value) -> serde_json::Value {
    if let Some(ingress) = state.get_mut("ingress").and_then(serde_json::Value::as_object_mut) {
        ingress.remove("issuer");
    }
    state
}

impl Agent {
    async fn apply(&self, ctx: &Context, req: ApplyRequest, op: Operation) -> ApplyResponse {
        let mut resp = ApplyResponse::default();
        let mut state = req.planned.clone();
        fill_computed(&mut state);
        let Some((model, mut spec)) = spec_of(&state, &mut resp.diagnostics) else {
            return resp;
        };
        spec.secret_env_wo = match from_value::<Option<BTreeMap<String, String>>>(req.config.attr("secret_env_wo")) {
            Ok(m) => m.unwrap_or_default(),
            Err(e) => {
                resp.diagnostics.error(
                    "Unreadable configuration",
                    format!("secret_env_wo: {e}. This is a bug in the provider; please report it."),
                );
                return resp;
            }
        };
        let prior = if req.prior.is_null() {
            None
        } else {
            spec_of(&req.prior, &mut resp.diagnostics).map(|(_, s)| s)
        };
        let default = if op == Operation::Create {
            schema::CREATE_LIMIT
        } else {
            schema::UPDATE_LIMIT
        };
        let dl = Deadline::new(&ctx.cancel, own_limit(timeouts::configured(&req.planned, op), default));
        let Some(kube) = client(ctx, &model.kubeconfig, &mut resp.diagnostics).await else {
            // Nothing was touched: the object is as before.
            resp.state = req.prior;
            return resp;
        };
        let wait = model.wait_for_rollout.unwrap_or(true);
        if let Err(f) = cluster::apply(&kube, &spec, prior.as_ref(), wait, &dl).await {
            // The autoscaler is still there: the state keeps it (and the
            // replicas stay the autoscaler's), so the next plan removes it again.
            if f.summary == Some(cluster::AUTOSCALER_NOT_REMOVED) {
                set(
                    &mut state,
                    cluster::AUTOSCALING,
                    req.prior.attr(cluster::AUTOSCALING).clone(),
                );
            }
            // Likewise the budget still there: kept in state, removed again next plan.
            if f.summary == Some(cluster::BUDGET_NOT_REMOVED) {
                set(
                    &mut state,
                    cluster::DISRUPTION_BUDGET,
                    req.prior.attr(cluster::DISRUPTION_BUDGET).clone(),
                );
            }
            report(f, &mut resp.diagnostics);
        }
        // Also after a failure part-way: what was applied exists, and the
        // next plan converges from there.
        resp.state = state;
        resp.private = req.private;
        resp
    }
}

#[async_trait]
impl Resource for Agent {
    fn type_name(&self) -> &'static str {
        "selfhost_agent"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    async fn validate(&self, _ctx: &Context, config: &Value) -> Diagnostics {
        validate::config(config)
    }

    fn upgrade_state(&self, version: i64, state: serde_json::Value) -> Result<serde_json::Value, Diagnostics> {
        match version {
            0 => Ok(upgrade_from_v0(state)),
            _ => Err(unsupported_state_version(
                self.type_name(),
                version,
                schema::SCHEMA_VERSION,
            )),
        }
    }

    async fn modify_plan(&self, _ctx: &Context, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if resp.planned.is_null() {
            return; // destroy
        }
        fill_computed(&mut resp.planned);
        // A claim cannot be swapped under running pods: a new agent.
        if !req.prior.is_null() && !semantically_equal(req.prior.attr("storage"), resp.planned.attr("storage")) {
            resp.requires_replace.push(AttributePath::root("storage"));
        }
    }

    async fn create(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        self.apply(ctx, req, Operation::Create).await
    }

    async fn update(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        self.apply(ctx, req, Operation::Update).await
    }

    async fn read(&self, ctx: &Context, req: ReadRequest) -> ReadResponse {
        let mut resp = ReadResponse {
            state: req.state,
            private: req.private,
            diagnostics: Diagnostics::new(),
        };
        let Some((model, spec)) = spec_of(&resp.state, &mut resp.diagnostics) else {
            return resp;
        };
        let Some(kube) = client(ctx, &model.kubeconfig, &mut resp.diagnostics).await else {
            return resp;
        };
        let limit = timeouts::configured(&resp.state, Operation::Read).unwrap_or(READ_LIMIT);
        let dl = Deadline::new(&ctx.cancel, limit);
        match cluster::drift(&kube, &spec, &dl).await {
            Ok(Some(lines)) => set(&mut resp.state, DRIFT, drift_value(lines)),
            Ok(None) => {
                tracing::info!(agent = %format!("{}/{}", spec.namespace, spec.name), "the agent's Deployment is gone; removing it from state");
                resp.state = Value::Null;
            }
            Err(e) => diagnose(&e, None, &mut resp.diagnostics),
        }
        resp
    }

    async fn delete(&self, ctx: &Context, state: Value, _private: PrivateState) -> Diagnostics {
        let mut diags = Diagnostics::new();
        let Some(id) = decode::<Identity>(&state, "state", &mut diags) else {
            return diags;
        };
        let Some(kube) = client(ctx, &id.kubeconfig, &mut diags).await else {
            return diags;
        };
        let limit = own_limit(timeouts::configured(&state, Operation::Delete), schema::DELETE_LIMIT);
        let dl = Deadline::new(&ctx.cancel, limit);
        let extras = cluster::Extras {
            autoscaler: !state.attr(cluster::AUTOSCALING).is_null(),
            disruption_budget: !state.attr(cluster::DISRUPTION_BUDGET).is_null(),
        };
        if let Err(e) = cluster::delete(&kube, &id.namespace, &id.name, extras, &dl).await {
            diagnose(&e, None, &mut diags);
        }
        diags
    }

    /// Import `namespace/name`: the configuration comes back from the
    /// Deployment's last-applied annotation, the secret values from the
    /// Secret, the kubeconfig from the file `KUBECONFIG` names.
    async fn import(&self, ctx: &Context, id: &str) -> ImportResponse {
        let mut resp = ImportResponse::default();
        let (ns, name) = match parse_import_id(id) {
            Ok(x) => x,
            Err(d) => {
                resp.diagnostics = d;
                return resp;
            }
        };
        let kubeconfig = match import_kubeconfig() {
            Ok(k) => k,
            Err(d) => {
                resp.diagnostics = d;
                return resp;
            }
        };
        let Some(kube) = client(ctx, &kubeconfig, &mut resp.diagnostics).await else {
            return resp;
        };
        let dl = Deadline::new(&ctx.cancel, READ_LIMIT);
        let what = format!("Deployment {ns}/{name}");
        let deployment = match kube.get::<Deployment>(&ns, &name, &dl).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                resp.diagnostics.error(
                    "Agent not found",
                    format!("There is no {what} to import (with the kubeconfig KUBECONFIG names)."),
                );
                return resp;
            }
            Err(e) => {
                diagnose(&e, None, &mut resp.diagnostics);
                return resp;
            }
        };
        let annotation = deployment
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LAST_APPLIED));
        let mut state = match from_last_applied(&schema::schema(), annotation, &what) {
            Ok(v) => v,
            Err(d) => {
                resp.diagnostics = d;
                return resp;
            }
        };
        if !(state.attr("namespace").as_str() == Some(ns.as_str())
            && state.attr("name").as_str() == Some(name.as_str()))
        {
            resp.diagnostics.error(
                "Unreadable last-applied annotation",
                format!("The annotation of {what} describes another agent (copied from elsewhere?)."),
            );
            return resp;
        }
        set(&mut state, "kubeconfig", Value::from(kubeconfig));
        if let Err(d) = fill_secret_env(&kube, &mut state, &ns, &name, &dl).await {
            resp.diagnostics = d;
            return resp;
        }
        if let Err(d) = fill_config_files(&kube, &mut state, &ns, &name, &dl).await {
            resp.diagnostics = d;
            return resp;
        }
        fill_computed(&mut state);
        resp.state = state;
        resp
    }
}

/// Put the contents of the annotation's `config_files` back, from the ConfigMap.
async fn fill_config_files(
    kube: &Kube,
    state: &mut Value,
    ns: &str,
    name: &str,
    dl: &Deadline,
) -> Result<(), Diagnostics> {
    let Value::Map(keys) = state.attr("config_files").clone() else {
        return Ok(());
    };
    let map_name = AgentSpec {
        name: name.to_owned(),
        ..AgentSpec::default()
    }
    .config_map_name();
    let data = match kube.get::<ConfigMap>(ns, &map_name, dl).await {
        Ok(c) => c.and_then(|c| c.data).unwrap_or_default(),
        Err(e) => {
            let mut d = Diagnostics::new();
            diagnose(&e, None, &mut d);
            return Err(d);
        }
    };
    // A file missing from the ConfigMap stays empty: Read then shows the drift.
    let files = keys
        .keys()
        .map(|k| (k.clone(), Value::from(data.get(k).cloned().unwrap_or_default())))
        .collect();
    set(state, "config_files", Value::Map(files));
    Ok(())
}

/// Put the values of the annotation's `secret_env` keys back, from the Secret.
async fn fill_secret_env(
    kube: &Kube,
    state: &mut Value,
    ns: &str,
    name: &str,
    dl: &Deadline,
) -> Result<(), Diagnostics> {
    let mut d = Diagnostics::new();
    let Value::Map(keys) = state.attr("secret_env").clone() else {
        return Ok(());
    };
    let secret_name = AgentSpec {
        name: name.to_owned(),
        ..AgentSpec::default()
    }
    .secret_name();
    let secret = match kube.get::<Secret>(ns, &secret_name, dl).await {
        Ok(s) => s,
        Err(e) => {
            diagnose(&e, None, &mut d);
            return Err(d);
        }
    };
    let data = secret.and_then(|s| s.data).unwrap_or_default();
    let mut values = BTreeMap::new();
    for k in keys.keys() {
        // A key missing from the Secret stays empty: Read then shows the drift.
        let v = match data.get(k) {
            Some(b) => match String::from_utf8(b.0.clone()) {
                Ok(s) => s,
                Err(_) => {
                    d.error(
                        "Secret value not importable",
                        format!("Secret {ns}/{secret_name} holds bytes that are not UTF-8 at key {k:?}; secret_env values are strings."),
                    );
                    return Err(d);
                }
            },
            None => String::new(),
        };
        values.insert(k.clone(), Value::from(v));
    }
    set(state, "secret_env", Value::Map(values));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context {
        Context {
            cancel: Default::default(),
            provider_data: None,
            write_only_supported: false,
        }
    }

    fn value(j: serde_json::Value) -> Value {
        crate::framework::codec::json::decode_lenient(j.to_string().as_bytes(), &schema::schema().value_type()).unwrap()
    }

    fn config() -> serde_json::Value {
        json!({
            "kubeconfig": "apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: SECRET-TOKEN}}]",
            "namespace": "agents", "name": "research", "image": "img:1", "replicas": 1,
            "secret_env": {"OPENAI_API_KEY": "sk-secret"},
            "config_files": {"agent.yaml": "LONG-FILE-CONTENT"},
            "port": [{"name": "http", "port": 8080}],
            "toleration": [],
            "storage": {"size": "1Gi", "mount_path": "/data"}
        })
    }

    /// Plan `config` over `prior` as Terraform would (proposed = config
    /// plus prior computed values).
    async fn plan(prior: &Value, config: &Value) -> ModifyPlanResponse {
        let mut proposed = config.clone();
        for k in ["id", "service_dns", DRIFT, "config_path", "wait_for_rollout"] {
            if let Some(slot) = proposed.attr_mut(k)
                && slot.is_null()
            {
                *slot = prior.attr(k).clone();
            }
        }
        if let Some(Value::List(ports)) = proposed.attr_mut("port") {
            for (i, p) in ports.iter_mut().enumerate() {
                if let (Some(slot), Value::List(prior_ports)) = (p.attr_mut("protocol"), prior.attr("port"))
                    && slot.is_null()
                    && let Some(pp) = prior_ports.get(i)
                {
                    *slot = pp.attr("protocol").clone();
                }
            }
        }
        crate::framework::plan::plan_resource(&Agent, &ctx(), prior, &proposed, config).await
    }

    #[tokio::test]
    async fn plan_knows_every_computed_value_and_a_second_plan_is_empty() {
        let c = value(config());
        let p = plan(&Value::Null, &c).await;
        assert!(p.planned.is_wholly_known(), "nothing left for after apply");
        assert_eq!(p.planned.attr("id").as_str(), Some("agents/research"));
        assert_eq!(
            p.planned.attr("service_dns").as_str(),
            Some("research.agents.svc.cluster.local")
        );
        assert_eq!(p.planned.attr(DRIFT), &Value::List(vec![]));
        let again = plan(&p.planned, &c).await;
        assert_eq!(again.planned, p.planned);
        assert!(again.requires_replace.is_empty());
    }

    #[tokio::test]
    async fn drift_read_back_plans_an_update_to_nothing() {
        let c = value(config());
        let mut state = plan(&Value::Null, &c).await.planned;
        set(
            &mut state,
            DRIFT,
            drift_value(vec!["Service/research: missing".to_owned()]),
        );
        let p = plan(&state, &c).await;
        assert_eq!(p.planned.attr(DRIFT), &Value::List(vec![]));
        assert_ne!(p.planned, state, "the drift is a diff");
        assert!(p.requires_replace.is_empty(), "repaired in place");
    }

    #[tokio::test]
    async fn a_changed_storage_needs_a_new_agent() {
        let state = plan(&Value::Null, &value(config())).await.planned;
        let mut bigger = config();
        bigger["storage"]["size"] = json!("2Gi");
        let p = plan(&state, &value(bigger)).await;
        assert_eq!(p.requires_replace, vec![AttributePath::root("storage")]);
        let mut same_image_changed = config();
        same_image_changed["image"] = json!("img:2");
        let p = plan(&state, &value(same_image_changed)).await;
        assert!(p.requires_replace.is_empty(), "{:?}", p.requires_replace);
    }

    #[tokio::test]
    async fn the_annotation_round_trips_without_secrets() {
        let state = plan(&Value::Null, &value(config())).await.planned;
        let schema = schema::schema();
        let annotation = last_applied(&schema, &state, NOT_ANNOTATED, KEYS_ONLY).unwrap();
        for secret in ["sk-secret", "SECRET-TOKEN", "LONG-FILE-CONTENT"] {
            assert!(!annotation.contains(secret), "{annotation}");
        }
        let mut back = from_last_applied(&schema, Some(&annotation), "x").unwrap();
        set(&mut back, "kubeconfig", state.attr("kubeconfig").clone());
        set(&mut back, "secret_env", state.attr("secret_env").clone());
        set(&mut back, "config_files", state.attr("config_files").clone());
        fill_computed(&mut back);
        assert_eq!(back, state, "import rebuilds the state");
    }

    /// A version-0 state (with cert-manager's `issuer`) as the CLI sends it
    /// to UpgradeResourceState.
    async fn upgrade(version: i64, json: &serde_json::Value) -> (Option<Value>, Diagnostics) {
        use crate::framework::server::{ProviderServer, RawState};
        let server = ProviderServer::new(crate::resources::provider());
        let raw = RawState {
            json: json.to_string().into_bytes(),
            ..RawState::default()
        };
        let (raw, d) = server.upgrade_resource_state("selfhost_agent", version, raw).await;
        let ty = schema::schema().value_type();
        (
            raw.map(|r| crate::framework::codec::msgpack::decode(&r.msgpack, &ty).unwrap()),
            d,
        )
    }

    fn v0_state(tls: bool) -> serde_json::Value {
        let mut c = config();
        c["ingress"] =
            json!({"host": "research.example.com", "path": "/", "tls": tls, "class": null, "issuer": "letsencrypt"});
        c["id"] = json!("agents/research");
        c["drift"] = json!([]);
        c
    }

    #[tokio::test]
    async fn version_0_state_loses_issuer_and_keeps_the_rest() {
        assert_eq!(schema::schema().version, 1);
        let (state, d) = upgrade(0, &v0_state(false)).await;
        assert!(!d.has_error(), "{d:?}");
        let state = state.unwrap();
        let ingress = state.attr("ingress");
        assert_eq!(ingress.attr("host").as_str(), Some("research.example.com"));
        assert_eq!(
            ingress.attr("tls"),
            &Value::from(false),
            "what was applied stays; the new default shows in the next plan"
        );
        assert_eq!(state.attr("name").as_str(), Some("research"));
        assert_eq!(state.attr("image").as_str(), Some("img:1"));
        assert!(state.attr("autoscaling").is_null(), "a new block starts null");
        // The upgrade itself, without the server's final conforming.
        let up = upgrade_from_v0(v0_state(true));
        assert!(up["ingress"].get("issuer").is_none(), "{up}");
        assert_eq!(up["ingress"]["tls"], true);
        let no_ingress = json!({"name": "a", "ingress": null});
        assert_eq!(upgrade_from_v0(no_ingress.clone()), no_ingress);
    }

    #[tokio::test]
    async fn current_state_passes_and_a_newer_one_is_refused() {
        let mut current = v0_state(true);
        if let Some(i) = current["ingress"].as_object_mut() {
            i.remove("issuer");
        }
        let (state, d) = upgrade(1, &current).await;
        assert!(!d.has_error(), "{d:?}");
        assert_eq!(state.unwrap().attr("ingress").attr("tls"), &Value::from(true));
        let (state, d) = upgrade(2, &current).await;
        assert!(state.is_none());
        assert!(d.0[0].summary.contains("Unsupported state version"), "{d:?}");
        assert!(d.0[0].detail.contains("selfhost_agent"), "{d:?}");
    }

    fn autoscaled() -> serde_json::Value {
        let mut c = config();
        c.as_object_mut().unwrap().remove("replicas");
        c["resources"] = json!({"cpu_request": "250m"});
        c["autoscaling"] = json!({"max_replicas": 4, "cpu_percent": 70});
        c
    }

    #[tokio::test]
    async fn autoscaling_plans_its_default_and_round_trips_through_import() {
        let c = value(autoscaled());
        let p = plan(&Value::Null, &c).await;
        assert!(p.planned.is_wholly_known());
        let a = p.planned.attr("autoscaling");
        assert_eq!(a.attr("min_replicas").as_i64(), Some(1), "min_replicas defaults to 1");
        assert_eq!(a.attr("max_replicas").as_i64(), Some(4));
        assert!(a.attr("memory_percent").is_null());
        let again = plan(&p.planned, &c).await;
        assert_eq!(again.planned, p.planned, "a second plan is empty");
        assert!(again.requires_replace.is_empty());

        // What the objects and a later import are made from.
        let mut diags = Diagnostics::new();
        let (_, spec) = spec_of(&p.planned, &mut diags).unwrap();
        assert!(!diags.has_error(), "{diags:?}");
        let objs = spec.render();
        assert!(objs.autoscaler.is_some());
        let d = serde_json::to_value(&objs.deployment).unwrap();
        assert!(d["spec"].get("replicas").is_none(), "the autoscaler owns the replicas");

        let schema = schema::schema();
        let annotation = last_applied(&schema, &p.planned, NOT_ANNOTATED, KEYS_ONLY).unwrap();
        let mut back = from_last_applied(&schema, Some(&annotation), "x").unwrap();
        for k in ["kubeconfig", "secret_env", "config_files"] {
            set(&mut back, k, p.planned.attr(k).clone());
        }
        fill_computed(&mut back);
        assert_eq!(back, p.planned, "import brings autoscaling back");

        // Removing the block removes the autoscaler (and nothing is replaced).
        let mut without = autoscaled();
        without.as_object_mut().unwrap().remove("autoscaling");
        let p2 = plan(&p.planned, &value(without)).await;
        assert!(p2.planned.attr("autoscaling").is_null());
        assert!(p2.requires_replace.is_empty());
        let (_, spec2) = spec_of(&p2.planned, &mut diags).unwrap();
        assert!(spec2.render().autoscaler.is_none());
    }

    #[tokio::test]
    async fn disruption_budget_round_trips_through_import_and_goes_with_the_block() {
        let mut budgeted = config();
        budgeted["replicas"] = json!(2);
        budgeted["disruption_budget"] = json!({"min_available": "1"});
        let c = value(budgeted.clone());
        let p = plan(&Value::Null, &c).await;
        assert!(p.planned.is_wholly_known());
        assert_eq!(
            p.planned.attr("disruption_budget").attr("min_available").as_str(),
            Some("1")
        );
        assert!(p.planned.attr("disruption_budget").attr("max_unavailable").is_null());
        let again = plan(&p.planned, &c).await;
        assert_eq!(again.planned, p.planned, "a second plan is empty");

        let mut diags = Diagnostics::new();
        let (_, spec) = spec_of(&p.planned, &mut diags).unwrap();
        assert!(!diags.has_error(), "{diags:?}");
        let pdb = serde_json::to_value(spec.render().disruption_budget.unwrap()).unwrap();
        assert_eq!(pdb["spec"]["minAvailable"], 1);

        let schema = schema::schema();
        let annotation = last_applied(&schema, &p.planned, NOT_ANNOTATED, KEYS_ONLY).unwrap();
        let mut back = from_last_applied(&schema, Some(&annotation), "x").unwrap();
        for k in ["kubeconfig", "secret_env", "config_files"] {
            set(&mut back, k, p.planned.attr(k).clone());
        }
        fill_computed(&mut back);
        assert_eq!(back, p.planned, "import brings disruption_budget back");

        // min → max: an update in place.
        budgeted["disruption_budget"] = json!({"max_unavailable": "50%"});
        let p2 = plan(&p.planned, &value(budgeted.clone())).await;
        assert!(p2.requires_replace.is_empty());
        let (_, spec2) = spec_of(&p2.planned, &mut diags).unwrap();
        let pdb = serde_json::to_value(spec2.render().disruption_budget.unwrap()).unwrap();
        assert_eq!(pdb["spec"]["maxUnavailable"], "50%");
        assert!(pdb["spec"].get("minAvailable").is_none());

        // Removing the block removes the budget (and nothing is replaced).
        budgeted.as_object_mut().unwrap().remove("disruption_budget");
        let p3 = plan(&p2.planned, &value(budgeted)).await;
        assert!(p3.planned.attr("disruption_budget").is_null());
        assert!(p3.requires_replace.is_empty());
        let (_, spec3) = spec_of(&p3.planned, &mut diags).unwrap();
        assert!(spec3.render().disruption_budget.is_none());
    }

    #[test]
    fn own_limits_end_before_the_operation_is_cancelled() {
        let d = Duration::from_secs(600);
        assert_eq!(own_limit(None, d), d);
        assert_eq!(own_limit(Some(Duration::from_secs(60)), d), Duration::from_secs(58));
        assert_eq!(own_limit(Some(Duration::from_secs(1)), d), Duration::from_secs(1));
    }
}
