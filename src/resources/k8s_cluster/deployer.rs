//! `namespace { deployer {} }`: deploy credentials for pipelines. Its
//! schema, the planned `deployer_rbac` / `deployer_kubeconfigs` /
//! `deployer_token_expiry` (a token near its expiry makes the plan show a
//! renewal), apply (objects, tokens, removal) and what a refresh finds.
//! The objects themselves are [`crate::kube::deployer`].
//!
//! The kubeconfigs are top-level outputs, not attributes of the namespace
//! blocks: the blocks are read back from the cluster, a token cannot be.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};

use super::api::kube_diagnostic;
use super::model::{ClusterConfig, DeployerModel, NamespaceModel, Outputs};
use crate::framework::typed::{from_value, to_value_as};
use crate::framework::validator::{Check, parse_duration};
use crate::framework::{Attribute, AttributePath, Block, Diagnostic, NestedBlock, Nesting, Type, Value};
use crate::kube::deployer::{self as objects, MAX_DURATION, MIN_DURATION, NAME, TOKEN_KEY, TOKEN_SECRET};
use crate::kube::{Deadline, Kube, KubeError};

/// The planned and recorded outputs.
pub const RBAC: &str = "deployer_rbac";
pub const KUBECONFIGS: &str = "deployer_kubeconfigs";
pub const EXPIRY: &str = "deployer_token_expiry";

const DEFAULT_DURATION: &str = "24h";

fn check_duration(s: &str) -> Result<(), String> {
    let d = parse_duration(s)?;
    if d < MIN_DURATION {
        return Err(format!("{s:?} is shorter than 10m (the API server's minimum)"));
    }
    if d > MAX_DURATION {
        return Err(format!(
            "{s:?} is longer than a year; use long_lived_token = true for a token that does not expire"
        ));
    }
    Ok(())
}

/// The `deployer {}` block of a `namespace {}`.
pub fn block() -> NestedBlock {
    let b = Block::new()
        .description("Deploy credentials for a pipeline, limited to this namespace: ServiceAccount, Role and RoleBinding `selfhost-deployer` (the Role allows get, list, watch, create, update, patch and delete on Deployments, Services, ConfigMaps, Secrets, Ingresses, NetworkPolicies, HorizontalPodAutoscalers, PodDisruptionBudgets, CronJobs and Jobs; nothing cluster-wide, no RBAC, no pods/exec), and a kubeconfig in `deployer_kubeconfigs[\"<namespace>\"]`. Removing the block deletes the objects (which revokes a long-lived token).")
        .attribute(
            Attribute::string("token_duration")
                .optional()
                .computed()
                .default_value(DEFAULT_DURATION)
                .validator(Check::values(
                    "Invalid token duration",
                    "a duration between 10m and a year, such as \"24h\"",
                    check_duration,
                ))
                .description("Lifetime of the short-lived token (TokenRequest), e.g. \"24h\" (default; at least 10m). Once less than a third of it is left, the next plan shows `deployer_kubeconfigs` changing and apply issues a new token."),
        )
        .attribute(
            Attribute::bool("long_lived_token")
                .optional()
                .computed()
                .default_value(false)
                .description("Use a token that never expires (a `kubernetes.io/service-account-token` Secret `selfhost-deployer-token`) instead of a short-lived one. It stays valid until the Secret or the block is removed: easier for a pipeline that cannot be re-fed after each apply, worse when it leaks."),
        );
    NestedBlock::new("deployer", Nesting::Single, b)
}

fn duration_of(d: &DeployerModel) -> Duration {
    d.token_duration
        .as_deref()
        .and_then(|s| parse_duration(s).ok())
        .unwrap_or(Duration::from_secs(24 * 3600))
}

fn long_lived(d: &DeployerModel) -> bool {
    d.long_lived_token.unwrap_or(false)
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn unix_seconds(rfc3339: &str) -> Option<i64> {
    rfc3339
        .parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Whether namespace `m` (planned) needs a new token, given what the prior
/// state recorded: a new or changed `deployer {}`, no kubeconfig recorded,
/// or a short-lived token in the last third of its life.
pub fn needs_token(m: &NamespaceModel, prior: Option<(&ClusterConfig, &Outputs)>, now: i64) -> bool {
    let Some(d) = &m.deployer else { return false };
    let Some((config, outputs)) = prior else { return true };
    let was = config
        .namespaces()
        .iter()
        .find(|p| p.name == m.name)
        .and_then(|p| p.deployer.as_ref());
    if was != Some(d) {
        return true;
    }
    if !outputs
        .deployer_kubeconfigs
        .as_ref()
        .is_some_and(|k| k.contains_key(&m.name))
    {
        return true;
    }
    if long_lived(d) {
        return false;
    }
    let expires = outputs
        .deployer_token_expiry
        .as_ref()
        .and_then(|e| e.get(&m.name))
        .and_then(|s| unix_seconds(s));
    objects::due_for_renewal(expires, duration_of(d), now)
}

fn set(planned: &mut Value, attr: &str, v: Value) {
    if let Some(slot) = planned.attr_mut(attr) {
        *slot = v;
    }
}

fn non_empty<V>(m: BTreeMap<String, V>) -> Option<BTreeMap<String, V>> {
    (!m.is_empty()).then_some(m)
}

/// Plan the three outputs: the objects every `deployer {}` asks for; the
/// prior kubeconfigs (without those of removed blocks) unless one needs a
/// new token, which makes both token outputs unknown.
pub fn plan(prior: &Value, planned: &mut Value, now: i64) {
    let Ok(namespaces) = from_value::<Option<Vec<NamespaceModel>>>(planned.attr("namespace")) else {
        for attr in [RBAC, KUBECONFIGS, EXPIRY] {
            set(planned, attr, Value::unknown());
        }
        return;
    };
    let with: Vec<NamespaceModel> = namespaces
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.deployer.is_some())
        .collect();
    let rbac: BTreeMap<String, Vec<String>> = with
        .iter()
        .map(|m| (m.name.clone(), objects::expected(&m.name)))
        .collect();
    set(
        planned,
        RBAC,
        to_value_as(&non_empty(rbac), &Type::map(Type::list(Type::String))).unwrap_or_else(|_| Value::unknown()),
    );
    let prior_model = (!prior.is_null())
        .then(|| {
            from_value::<ClusterConfig>(prior)
                .ok()
                .zip(from_value::<Outputs>(prior).ok())
        })
        .flatten();
    let prior_ref = prior_model.as_ref().map(|(c, o)| (c, o));
    if with.iter().any(|m| needs_token(m, prior_ref, now)) {
        set(planned, KUBECONFIGS, Value::unknown());
        set(planned, EXPIRY, Value::unknown());
        return;
    }
    let outputs = prior_model.map(|(_, o)| o).unwrap_or_default();
    let keep = |m: Option<BTreeMap<String, String>>| {
        non_empty(
            m.unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| with.iter().any(|n| &n.name == k))
                .collect(),
        )
    };
    let ty = Type::map(Type::String);
    set(
        planned,
        KUBECONFIGS,
        to_value_as(&keep(outputs.deployer_kubeconfigs), &ty).unwrap_or_else(|_| Value::unknown()),
    );
    set(
        planned,
        EXPIRY,
        to_value_as(&keep(outputs.deployer_token_expiry), &ty).unwrap_or_else(|_| Value::unknown()),
    );
}

/// Apply every `deployer {}` of `config`: its objects, and its token (the
/// planned one when the plan kept it, else a new one); remove the objects
/// of blocks removed from namespaces that stay. `outputs` gets the
/// kubeconfigs and expiries, also those issued before a failure.
///
/// # Errors
/// The first Kubernetes failure, at its namespace's `deployer`.
pub async fn converge(
    kube: &Kube,
    config: &ClusterConfig,
    prior: Option<&ClusterConfig>,
    planned: &Value,
    outputs: &mut Outputs,
    dl: &Deadline,
) -> Result<(), Diagnostic> {
    let planned_kubeconfigs: Option<BTreeMap<String, String>> = from_value(planned.attr(KUBECONFIGS)).ok().flatten();
    let planned_expiry: BTreeMap<String, String> = from_value(planned.attr(EXPIRY)).ok().flatten().unwrap_or_default();
    let mut kubeconfigs = BTreeMap::new();
    let mut expiry = BTreeMap::new();
    let mut result = Ok(());
    for (i, m) in config.namespaces().iter().enumerate() {
        let at = AttributePath::root("namespace").index(i as i64).attr("deployer");
        let step = match &m.deployer {
            Some(d) => {
                let kept = planned_kubeconfigs.as_ref().and_then(|k| k.get(&m.name));
                apply_one(kube, &m.name, d, kept.is_none(), outputs, dl)
                    .await
                    .map(|issued| match (kept, issued) {
                        (Some(kc), _) => {
                            kubeconfigs.insert(m.name.clone(), kc.clone());
                            if let Some(e) = planned_expiry.get(&m.name) {
                                expiry.insert(m.name.clone(), e.clone());
                            }
                        }
                        (None, Some((kc, e))) => {
                            kubeconfigs.insert(m.name.clone(), kc);
                            if let Some(e) = e {
                                expiry.insert(m.name.clone(), e);
                            }
                        }
                        (None, None) => {}
                    })
            }
            None if had_deployer(prior, &m.name) => remove_one(kube, &m.name, dl).await,
            None => Ok(()),
        };
        if let Err(e) = step {
            result = Err(kube_diagnostic(&e, Some(at)));
            break;
        }
    }
    outputs.deployer_kubeconfigs = non_empty(kubeconfigs);
    outputs.deployer_token_expiry = non_empty(expiry);
    result
}

fn had_deployer(prior: Option<&ClusterConfig>, name: &str) -> bool {
    prior.is_some_and(|p| p.namespaces().iter().any(|n| n.name == name && n.deployer.is_some()))
}

/// The objects of one namespace's deployer; with `issue`, a new token and
/// its kubeconfig (and expiry, for a short-lived token).
async fn apply_one(
    kube: &Kube,
    namespace: &str,
    d: &DeployerModel,
    issue: bool,
    outputs: &Outputs,
    dl: &Deadline,
) -> Result<Option<(String, Option<String>)>, KubeError> {
    tracing::info!("namespace {namespace}: applying the deployer's ServiceAccount, Role and RoleBinding");
    kube.apply(&objects::service_account(namespace), dl).await?;
    kube.apply(&objects::role(namespace), dl).await?;
    kube.apply(&objects::role_binding(namespace), dl).await?;
    if long_lived(d) {
        kube.apply(&objects::token_secret(namespace), dl).await?;
    } else {
        // Revokes the long-lived token a previous `long_lived_token = true` made.
        kube.delete_and_wait::<Secret>(namespace, TOKEN_SECRET, dl).await?;
    }
    if !issue {
        return Ok(None);
    }
    let (token, expires) = if long_lived(d) {
        tracing::info!("namespace {namespace}: reading the deployer's long-lived token");
        (kube.secret_token(namespace, TOKEN_SECRET, TOKEN_KEY, dl).await?, None)
    } else {
        tracing::info!("namespace {namespace}: requesting a deployer token");
        let t = kube.request_token(namespace, NAME, duration_of(d), dl).await?;
        (t.token, t.expires)
    };
    let kubeconfig = objects::kubeconfig(
        &outputs.api_server_url,
        &outputs.ca_certificate,
        namespace,
        token.expose(),
    );
    Ok(Some((kubeconfig, expires)))
}

/// Delete a deployer's objects (the binding first: no moment where the
/// account has rights but is being removed).
async fn remove_one(kube: &Kube, namespace: &str, dl: &Deadline) -> Result<(), KubeError> {
    tracing::info!("namespace {namespace}: removing the deployer");
    kube.delete_and_wait::<RoleBinding>(namespace, NAME, dl).await?;
    kube.delete_and_wait::<Role>(namespace, NAME, dl).await?;
    kube.delete_and_wait::<Secret>(namespace, TOKEN_SECRET, dl).await?;
    kube.delete_and_wait::<ServiceAccount>(namespace, NAME, dl).await
}

/// What the cluster has of every `deployer {}` of `config` (into
/// `deployer_rbac`); with `prune` (a refresh), the kubeconfig of a deployer
/// whose ServiceAccount or long-lived Secret is gone is dropped: its token
/// no longer works, so the plan issues a new one.
///
/// # Errors
/// As [`Kube::get`].
pub async fn observe(
    kube: &Kube,
    config: &ClusterConfig,
    outputs: &mut Outputs,
    prune: bool,
    dl: &Deadline,
) -> Result<(), KubeError> {
    let mut rbac = BTreeMap::new();
    for m in config.namespaces() {
        let Some(d) = &m.deployer else { continue };
        let sa = kube.get::<ServiceAccount>(&m.name, NAME, dl).await?;
        let role = kube.get::<Role>(&m.name, NAME, dl).await?;
        let binding = kube.get::<RoleBinding>(&m.name, NAME, dl).await?;
        let secret_gone = long_lived(d) && kube.get::<Secret>(&m.name, TOKEN_SECRET, dl).await?.is_none();
        if prune && (sa.is_none() || secret_gone) {
            for map in [&mut outputs.deployer_kubeconfigs, &mut outputs.deployer_token_expiry] {
                if let Some(map) = map.as_mut() {
                    map.remove(&m.name);
                }
            }
        }
        rbac.insert(
            m.name.clone(),
            objects::summary(sa.as_ref(), role.as_ref(), binding.as_ref()),
        );
    }
    outputs.deployer_rbac = non_empty(rbac);
    for map in [&mut outputs.deployer_kubeconfigs, &mut outputs.deployer_token_expiry] {
        if map.as_ref().is_some_and(BTreeMap::is_empty) {
            *map = None;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(deployer: Option<DeployerModel>) -> ClusterConfig {
        serde_json::from_value(serde_json::json!({
            "version": "v1.36.3",
            "control_plane": {"host": "10.0.0.1", "port": 22, "user": "root", "host_key": "ssh-ed25519 AAAA"},
            "namespace": [{"name": "apps", "deployer": deployer}],
        }))
        .expect("config")
    }

    fn short(duration: &str) -> DeployerModel {
        DeployerModel {
            token_duration: Some(duration.into()),
            long_lived_token: Some(false),
        }
    }

    fn recorded(expires: &str) -> Outputs {
        Outputs {
            deployer_kubeconfigs: Some(BTreeMap::from([("apps".into(), "kc".into())])),
            deployer_token_expiry: Some(BTreeMap::from([("apps".into(), expires.into())])),
            ..Outputs::default()
        }
    }

    #[test]
    fn durations_are_checked() {
        assert!(check_duration("24h").is_ok());
        assert!(check_duration("10m").is_ok());
        assert!(check_duration("9m").is_err());
        assert!(check_duration("9000h").is_err());
        assert!(check_duration("soon").is_err());
    }

    #[test]
    fn a_token_is_issued_when_new_changed_missing_or_near_expiry() {
        let c = config(Some(short("24h")));
        let m = &c.namespaces()[0];
        let now = unix_seconds("2026-12-07T00:00:00Z").expect("time");
        let fresh = recorded("2026-12-07T20:00:00Z");
        let old = recorded("2026-12-07T07:00:00Z");
        assert!(needs_token(m, None, now), "create");
        assert!(!needs_token(m, Some((&c, &fresh)), now));
        assert!(needs_token(m, Some((&c, &old)), now), "less than a third left");
        assert!(needs_token(m, Some((&c, &Outputs::default())), now), "nothing recorded");
        let longer = config(Some(short("48h")));
        assert!(
            needs_token(&longer.namespaces()[0], Some((&c, &fresh)), now),
            "setting changed"
        );
        let mut ll = short("24h");
        ll.long_lived_token = Some(true);
        let lc = config(Some(ll));
        let mut kept = old.clone();
        kept.deployer_token_expiry = None;
        assert!(!needs_token(&lc.namespaces()[0], Some((&lc, &kept)), now), "long-lived");
        assert!(!needs_token(&config(None).namespaces()[0], None, now), "no deployer");
    }

    fn state(c: &ClusterConfig, o: &Outputs) -> Value {
        let mut v = crate::framework::typed::to_value(c).expect("config");
        if let (Value::Object(a), Ok(Value::Object(b))) = (&mut v, crate::framework::typed::to_value(o)) {
            a.extend(b);
        }
        v
    }

    #[test]
    fn the_plan_keeps_a_fresh_token_and_renews_an_old_one() {
        let c = config(Some(short("24h")));
        let now = unix_seconds("2026-12-07T00:00:00Z").expect("time");
        let prior = state(&c, &recorded("2026-12-07T20:00:00Z"));
        let mut planned = prior.clone();
        plan(&prior, &mut planned, now);
        assert_eq!(planned.attr(KUBECONFIGS), prior.attr(KUBECONFIGS));
        let rbac: BTreeMap<String, Vec<String>> = from_value(planned.attr(RBAC)).expect("rbac");
        assert_eq!(rbac["apps"], objects::expected("apps"));

        let prior = state(&c, &recorded("2026-12-07T07:00:00Z"));
        let mut planned = prior.clone();
        plan(&prior, &mut planned, now);
        assert!(!planned.attr(KUBECONFIGS).is_wholly_known());
        assert!(!planned.attr(EXPIRY).is_wholly_known());

        // removing the block drops its kubeconfig, known at plan time
        let mut planned = state(&config(None), &recorded("2026-12-07T20:00:00Z"));
        plan(&prior, &mut planned, now);
        assert!(planned.attr(KUBECONFIGS).is_null());
        assert!(planned.attr(RBAC).is_null());
    }
}
