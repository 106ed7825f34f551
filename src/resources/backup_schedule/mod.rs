//! `selfhost_backup_schedule`: scheduled restic backups of an agent's
//! volume or a PostgreSQL database, as a CronJob with its Secret and a
//! ServiceAccount. The scripts and objects come from [`crate::backup`]
//! (pure); this resource checks the configuration at plan time, applies
//! the objects, reads them back for drift and status, and deletes them.

mod cluster;
mod model;
mod schema;

use async_trait::async_trait;

use crate::backup::cronjob::secret_name;
use crate::backup::script::restore_command;
use crate::framework::private::PrivateState;
use crate::framework::resource::{
    ApplyRequest, ApplyResponse, Context, ImportResponse, ModifyPlanRequest, ModifyPlanResponse, ReadRequest,
    ReadResponse, Resource,
};
use crate::framework::timeouts::{self, Operation};
use crate::framework::typed::{decode, from_value, to_value_as};
use crate::framework::{Diagnostics, Schema, Value};
use crate::kube::{Deadline, KubeError};
use crate::resources::kube_object::import_kubeconfig;

use cluster::{ImportError, Status};
use model::Config;
use schema::TIMEOUTS;

/// The resource type.
pub struct BackupSchedule;

fn limit(v: &Value, op: Operation) -> std::time::Duration {
    timeouts::configured(v, op)
        .or_else(|| TIMEOUTS.iter().find(|(o, _)| *o == op).map(|(_, d)| *d))
        .unwrap_or(std::time::Duration::from_secs(300))
}

fn set(v: &mut Value, name: &str, to: Value) {
    if let Some(slot) = v.attr_mut(name) {
        *slot = to;
    }
}

fn string_or_null(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::from)
}

fn diagnose(e: &KubeError, diags: &mut Diagnostics) {
    diags.error(e.summary(), e.detail());
}

/// The restore commands for a plan or state whose non-secret settings are
/// known (secrets and the kubeconfig are not part of them and may still be
/// unknown).
fn planned_restore_command(planned: &Value) -> Option<String> {
    let mut v = planned.clone();
    for name in ["kubeconfig", "encryption_password"] {
        set(&mut v, name, Value::from(""));
    }
    if let Some(pg) = v.attr_mut("source").and_then(|s| s.attr_mut("postgres")) {
        set(pg, "password", Value::from(""));
    }
    if let Some(s3) = v.attr_mut("destination").and_then(|s| s.attr_mut("s3")) {
        set(s3, "access_key_id", Value::from(""));
        set(s3, "secret_access_key", Value::from(""));
    }
    let config: Config = from_value(&v).ok()?;
    let r = config.render()?;
    Some(restore_command(&r.spec, &secret_name(&config.name)))
}

/// `planned` completed with what apply computes. Status values already
/// planned (kept from state) are returned as planned: refreshing them
/// never makes a plan, and apply must match the plan.
fn finish(planned: &Value, config: &Config, status: &Status) -> Value {
    let mut state = planned.clone();
    set(
        &mut state,
        "id",
        Value::from(format!("{}/{}", config.namespace, config.name)),
    );
    set(&mut state, "drift", Value::List(Vec::new()));
    if let Some(cmd) = config
        .render()
        .map(|r| restore_command(&r.spec, &secret_name(&config.name)))
    {
        set(&mut state, "restore_command", Value::from(cmd));
    }
    for (name, value) in [
        ("last_schedule_time", &status.last_schedule_time),
        ("last_successful_time", &status.last_successful_time),
    ] {
        if state.attr(name).is_unknown() {
            set(&mut state, name, string_or_null(value.clone()));
        }
    }
    state
}

/// Create and update: apply every object as planned.
async fn apply(ctx: &Context, req: &ApplyRequest, op: Operation) -> ApplyResponse {
    let mut resp = ApplyResponse {
        private: req.private.clone(),
        ..ApplyResponse::default()
    };
    let Some(config) = decode::<Config>(&req.planned, "plan", &mut resp.diagnostics) else {
        return resp;
    };
    let Some(rendered) = config.render() else {
        resp.diagnostics.error(
            "Incomplete backup configuration",
            "The source, destination or a credential is missing; `terraform validate` says which.",
        );
        return resp;
    };
    let objs = cluster::objects(&config, &rendered);
    let dl = Deadline::new(&ctx.cancel, limit(&req.planned, op));
    match cluster::apply(ctx, &config, &objs, &dl).await {
        Ok(status) => resp.state = finish(&req.planned, &config, &status),
        Err(e) => {
            diagnose(&e, &mut resp.diagnostics);
            // Some objects may be applied, some not. A failed create is
            // recorded (Terraform taints it: the next apply replaces it); a
            // failed update keeps the prior state, so the next plan shows
            // the same update again and its apply converges.
            resp.state = match op {
                Operation::Update => req.prior.clone(),
                _ => finish(&req.planned, &config, &Status::default()),
            };
        }
    }
    resp
}

#[async_trait]
impl Resource for BackupSchedule {
    fn type_name(&self) -> &'static str {
        "selfhost_backup_schedule"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    async fn validate(&self, _ctx: &Context, config: &Value) -> Diagnostics {
        let mut diags = Diagnostics::new();
        model::validate(config, &mut diags);
        diags
    }

    async fn modify_plan(&self, _ctx: &Context, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if resp.planned.is_null() {
            return; // destroy
        }
        // Drift found by the last refresh is repaired by this plan.
        set(&mut resp.planned, "drift", Value::List(Vec::new()));
        if let (Some(ns), Some(name)) = (
            resp.planned.attr("namespace").as_str(),
            resp.planned.attr("name").as_str(),
        ) {
            let id = Value::from(format!("{ns}/{name}"));
            set(&mut resp.planned, "id", id);
        }
        let command = planned_restore_command(&resp.planned);
        match command {
            Some(cmd) => set(&mut resp.planned, "restore_command", Value::from(cmd)),
            None if req.prior.is_null() => set(&mut resp.planned, "restore_command", Value::unknown()),
            None => {}
        }
    }

    async fn create(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        apply(ctx, &req, Operation::Create).await
    }

    async fn read(&self, ctx: &Context, req: ReadRequest) -> ReadResponse {
        let mut resp = ReadResponse {
            state: req.state,
            private: req.private,
            diagnostics: Diagnostics::new(),
        };
        let Some(config) = decode::<Config>(&resp.state, "state", &mut resp.diagnostics) else {
            return resp;
        };
        let Some(rendered) = config.render() else {
            return resp;
        };
        let objs = cluster::objects(&config, &rendered);
        let dl = Deadline::new(&ctx.cancel, limit(&resp.state, Operation::Read));
        match cluster::observe(ctx, &config, &objs, &dl).await {
            Ok(None) => {
                tracing::info!(namespace = %config.namespace, name = %config.name, "the backup CronJob is gone: removing it from state");
                resp.state = Value::Null;
            }
            Ok(Some(seen)) => {
                set(
                    &mut resp.state,
                    "last_schedule_time",
                    string_or_null(seen.status.last_schedule_time),
                );
                set(
                    &mut resp.state,
                    "last_successful_time",
                    string_or_null(seen.status.last_successful_time),
                );
                set(
                    &mut resp.state,
                    "drift",
                    Value::List(seen.drift.into_iter().map(Value::from).collect()),
                );
            }
            Err(e) => diagnose(&e, &mut resp.diagnostics),
        }
        resp
    }

    async fn update(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        apply(ctx, &req, Operation::Update).await
    }

    async fn delete(&self, ctx: &Context, state: Value, _private: PrivateState) -> Diagnostics {
        let mut diags = Diagnostics::new();
        let Some(config) = decode::<Config>(&state, "state", &mut diags) else {
            return diags;
        };
        let dl = Deadline::new(&ctx.cancel, limit(&state, Operation::Delete));
        if let Err(e) = cluster::remove(ctx, &config, &dl).await {
            diagnose(&e, &mut diags);
        }
        diags
    }

    /// Import `namespace/name`; the kubeconfig is read as kubectl finds it
    /// (`$KUBECONFIG`, else `~/.kube/config`), the configuration from the
    /// CronJob's annotation and the secrets from its Secret.
    async fn import(&self, ctx: &Context, id: &str) -> ImportResponse {
        let mut resp = ImportResponse::default();
        let Some((namespace, name)) = id.split_once('/').filter(|(n, m)| !n.is_empty() && !m.is_empty()) else {
            resp.diagnostics.error(
                "Invalid import id",
                format!("{id:?} is not \"namespace/name\" (e.g. \"agents/research-data\")."),
            );
            return resp;
        };
        let kubeconfig = match import_kubeconfig() {
            Ok(k) => k,
            Err(d) => {
                resp.diagnostics = d;
                return resp;
            }
        };
        let dl = Deadline::new(&ctx.cancel, limit(&Value::Null, Operation::Read));
        let config = match cluster::adopt(ctx, kubeconfig, namespace, name, &dl).await {
            Ok(c) => c,
            Err(ImportError::Kube(e)) => {
                diagnose(&e, &mut resp.diagnostics);
                return resp;
            }
            Err(ImportError::NotFound(what)) => {
                resp.diagnostics.error(
                    "Cannot import a missing backup schedule",
                    format!("{what} does not exist."),
                );
                return resp;
            }
            Err(ImportError::NotOurs(why)) => {
                resp.diagnostics.error("Not a selfhost_backup_schedule", why);
                return resp;
            }
        };
        let state = match to_value_as(&config, &self.schema().value_type()) {
            Ok(v) => v,
            Err(e) => {
                resp.diagnostics.error(
                    "Unencodable state",
                    format!("{e}. This is a bug in the provider; please report it."),
                );
                return resp;
            }
        };
        resp.state = finish(&state, &config, &Status::default());
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration as Terraform sends it (every attribute present).
    fn config() -> Value {
        let json = serde_json::json!({
            "kubeconfig": "apiVersion: v1", "namespace": "agents", "name": "research-data",
            "schedule": "0 3 * * *", "time_zone": "Europe/Paris", "encryption_password": "pw",
            "source": {"agent": "research", "claim": null, "postgres": null},
            "destination": {"s3": {"endpoint": "https://s3.example.com", "bucket": "b", "prefix": null,
                "region": null, "access_key_id": "k", "secret_access_key": "s"}, "volume": null},
            "retention": {"keep_last": 3, "keep_hourly": null, "keep_daily": 7, "keep_weekly": null, "keep_monthly": null},
        });
        let ty = BackupSchedule.schema().value_type();
        crate::framework::typed::conform(json_to_value(&json), &ty).unwrap_or(Value::Null)
    }

    fn json_to_value(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::from(n.as_i64().unwrap_or_default()),
            serde_json::Value::String(s) => Value::from(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(json_to_value).collect()),
            serde_json::Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), json_to_value(v))).collect())
            }
        }
    }

    fn ctx() -> Context {
        Context {
            cancel: Default::default(),
            provider_data: None,
            write_only_supported: false,
        }
    }

    async fn plan(prior: &Value, config: &Value) -> ModifyPlanResponse {
        let mut proposed = config.clone();
        for k in [
            "id",
            "last_schedule_time",
            "last_successful_time",
            "restore_command",
            "drift",
            "suspend",
            "successful_jobs_history_limit",
            "failed_jobs_history_limit",
            "image",
        ] {
            if let Some(slot) = proposed.attr_mut(k)
                && slot.is_null()
            {
                *slot = prior.attr(k).clone();
            }
        }
        crate::framework::plan::plan_resource(&BackupSchedule, &ctx(), prior, &proposed, config).await
    }

    #[tokio::test]
    async fn the_plan_shows_the_restore_command_and_a_refresh_of_status_makes_no_diff() {
        let c = config();
        let p = plan(&Value::Null, &c).await;
        assert!(!p.diagnostics.has_error(), "{:?}", p.diagnostics);
        let cmd = p
            .planned
            .attr("restore_command")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(cmd.contains("restic restore latest"), "{cmd}");
        assert!(!cmd.contains("'pw'") && !cmd.contains("'s'"), "no secret in {cmd}");
        // As apply leaves it, then a refresh that saw a run.
        let Some(cfg) = from_value::<Config>(&p.planned).ok() else {
            panic!("the plan must decode");
        };
        let mut state = finish(&p.planned, &cfg, &Status::default());
        set(&mut state, "last_schedule_time", Value::from("2026-11-23T03:00:00Z"));
        let again = plan(&state, &c).await;
        assert_eq!(again.planned, state, "status alone never makes a diff");
        // A refresh that found drift: the plan sets it back to empty.
        set(
            &mut state,
            "drift",
            Value::List(vec![Value::from("CronJob spec.suspend")]),
        );
        let repair = plan(&state, &c).await;
        assert_eq!(repair.planned.attr("drift"), &Value::List(Vec::new()));
        assert_eq!(
            repair.planned.attr("last_schedule_time"),
            &Value::from("2026-11-23T03:00:00Z")
        );
    }

    #[tokio::test]
    async fn a_failed_update_keeps_the_prior_state_so_the_next_plan_retries_it() {
        // Nothing listens on this port: transient failures until the 1s limit.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").ok();
        let port = listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map_or(1, |a| a.port());
        drop(listener);
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{token: abc}}\n"
        );
        let mut c = config();
        set(&mut c, "kubeconfig", Value::from(kubeconfig));
        let p = plan(&Value::Null, &c).await;
        let Some(cfg) = from_value::<Config>(&p.planned).ok() else {
            panic!("the plan must decode");
        };
        let prior = finish(&p.planned, &cfg, &Status::default());
        let mut changed = c.clone();
        set(&mut changed, "schedule", Value::from("@hourly"));
        let ty = BackupSchedule
            .schema()
            .block
            .get_block(timeouts::BLOCK)
            .map_or(crate::framework::Type::Dynamic, |b| b.value_type());
        let timeouts = crate::framework::typed::conform(json_to_value(&serde_json::json!({"update": "1s"})), &ty)
            .unwrap_or(Value::Null);
        set(&mut changed, timeouts::BLOCK, timeouts);
        let planned = plan(&prior, &changed).await.planned;
        let r = BackupSchedule
            .update(
                &ctx(),
                ApplyRequest {
                    config: changed,
                    planned,
                    prior: prior.clone(),
                    private: PrivateState::default(),
                },
            )
            .await;
        // The configured 1s ended it (the default is minutes), said as such.
        let timed_out = r
            .diagnostics
            .0
            .iter()
            .find(|d| d.summary == "Kubernetes operation timed out");
        assert!(
            timed_out.is_some_and(|d| d.detail.contains("within 1s")),
            "{:?}",
            r.diagnostics
        );
        assert_eq!(r.state, prior);
    }

    #[tokio::test]
    async fn missing_credentials_and_sources_are_diagnosed_on_their_attributes() {
        let mut c = config();
        if let Some(s3) = c.attr_mut("destination").and_then(|d| d.attr_mut("s3")) {
            set(s3, "secret_access_key", Value::Null);
        }
        if let Some(src) = c.attr_mut("source") {
            set(src, "agent", Value::Null);
        }
        let d = BackupSchedule.validate(&ctx(), &c).await;
        let paths: Vec<String> =
            d.0.iter()
                .filter_map(|d| d.attribute.as_ref().map(|p| p.to_string()))
                .collect();
        assert!(paths.iter().any(|p| p.contains("secret_access_key")), "{paths:?}");
        assert!(paths.iter().any(|p| p == "source"), "{paths:?}");
        // Unknown credentials (from another resource) are fine at plan time.
        if let Some(s3) = c.attr_mut("destination").and_then(|d| d.attr_mut("s3")) {
            set(s3, "secret_access_key", Value::unknown());
        }
        let d = BackupSchedule.validate(&ctx(), &c).await;
        assert!(!d.0.iter().any(|d| d.summary.contains("S3")), "{d:?}");
    }
}
