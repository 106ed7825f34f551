//! The Kubernetes calls of `selfhost_agent`: apply its objects (and delete
//! those it no longer needs), wait for the rollout, read drift, delete
//! everything and wait until it is gone.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::framework::AttributePath;
use crate::kube::agent::{AgentObjects, AgentSpec};
use crate::kube::client::describe;
use crate::kube::rollout::{Rollout, rollout};
use crate::kube::{Deadline, Kube, KubeError};
use crate::resources::kube_object::drift_lines;

/// The attribute of the autoscaler.
pub const AUTOSCALING: &str = "autoscaling";
/// The summary of a failure to delete an autoscaler no longer configured:
/// the state then keeps `autoscaling` (the autoscaler still exists) and
/// the next plan tries again.
pub const AUTOSCALER_NOT_REMOVED: &str = "Autoscaler not removed";
/// The attribute of the disruption budget.
pub use super::schema::DISRUPTION_BUDGET;
/// The summary of a failure to delete a disruption budget no longer
/// configured: the state then keeps `disruption_budget` (the budget still
/// exists) and the next plan tries again.
pub const BUDGET_NOT_REMOVED: &str = "Disruption budget not removed";

/// An API failure and the attribute it concerns (for the diagnostic).
pub struct Failure {
    pub error: KubeError,
    pub path: Option<AttributePath>,
    /// Replaces the error's own summary (e.g. pods refused by a quota).
    pub summary: Option<&'static str>,
}

impl From<KubeError> for Failure {
    fn from(error: KubeError) -> Self {
        Failure {
            error,
            path: None,
            summary: None,
        }
    }
}

/// The attribute a quota refusal is about, from the API server's message
/// ("exceeded quota: q, requested: limits.cpu=1, used: ...").
fn quota_path(message: &str) -> AttributePath {
    let requested = message
        .split("requested:")
        .nth(1)
        .and_then(|r| r.split("used:").next())
        .unwrap_or_default();
    let attr = requested
        .split(',')
        .find_map(|item| match item.trim().split('=').next().unwrap_or_default() {
            "limits.cpu" => Some("cpu_limit"),
            "requests.cpu" | "cpu" => Some("cpu_request"),
            "limits.memory" => Some("memory_limit"),
            "requests.memory" | "memory" => Some("memory_request"),
            _ => None,
        });
    match attr {
        Some(a) => AttributePath::root("resources").attr(a),
        None => AttributePath::root("resources"),
    }
}

fn at(path: &str) -> impl FnOnce(KubeError) -> Failure + '_ {
    move |error| Failure {
        error,
        path: Some(AttributePath::root(path)),
        summary: None,
    }
}

/// Apply every object of `spec` (supporting objects first, so the pods find
/// their Secret, ConfigMap and claim), delete those `prior` had and `spec`
/// no longer has, then wait for the rollout when asked.
pub async fn apply(
    kube: &Kube,
    spec: &AgentSpec,
    prior: Option<&AgentSpec>,
    wait: bool,
    dl: &Deadline,
) -> Result<(), Failure> {
    let objs = spec.render();
    // An autoscaler no longer wanted goes first, so that the replica count
    // is the Deployment's own again when the Deployment is applied.
    if prior.is_some_and(|p| p.autoscaling.is_some()) && objs.autoscaler.is_none() {
        kube.delete_and_wait::<HorizontalPodAutoscaler>(&spec.namespace, &spec.name, dl)
            .await
            .map_err(|error| Failure {
                summary: Some(AUTOSCALER_NOT_REMOVED),
                ..at(AUTOSCALING)(error)
            })?;
    }
    // Likewise a budget no longer wanted, before any step that could fail
    // (the state then still records it, so it is never left behind).
    if prior.is_some_and(|p| p.disruption_budget.is_some()) && objs.disruption_budget.is_none() {
        kube.delete_and_wait::<PodDisruptionBudget>(&spec.namespace, &spec.name, dl)
            .await
            .map_err(|error| Failure {
                summary: Some(BUDGET_NOT_REMOVED),
                ..at(DISRUPTION_BUDGET)(error)
            })?;
    }
    if let Some(s) = &objs.secret {
        kube.apply(s, dl).await.map_err(at("secret_env"))?;
    }
    if let Some(c) = &objs.config_map {
        kube.apply(c, dl).await.map_err(at("config_files"))?;
    }
    if let Some(c) = &objs.claim {
        kube.apply(c, dl).await.map_err(at("storage"))?;
    }
    kube.apply(&objs.deployment, dl).await?;
    if let Some(s) = &objs.service {
        kube.apply(s, dl).await.map_err(at("port"))?;
    }
    if let Some(i) = &objs.ingress {
        kube.apply(i, dl).await.map_err(at("ingress"))?;
    }
    if let Some(a) = &objs.autoscaler {
        kube.apply(a, dl).await.map_err(at(AUTOSCALING))?;
    }
    // After the Deployment, whose pods it selects.
    if let Some(b) = &objs.disruption_budget {
        kube.apply(b, dl).await.map_err(at(DISRUPTION_BUDGET))?;
    }
    if let Some(prior) = prior {
        remove_unneeded(kube, &prior.render(), &objs, &spec.namespace, dl).await?;
    }
    tracing::info!(agent = %format!("{}/{}", spec.namespace, spec.name), "applied the agent's objects");
    if wait {
        wait_for_rollout(kube, spec, dl).await?;
    }
    Ok(())
}

/// Objects the previous configuration had and this one does not.
async fn remove_unneeded(
    kube: &Kube,
    old: &AgentObjects,
    new: &AgentObjects,
    ns: &str,
    dl: &Deadline,
) -> Result<(), KubeError> {
    let name = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| m.name.clone().unwrap_or_default();
    if let (Some(o), None) = (&old.ingress, &new.ingress) {
        kube.delete_and_wait::<Ingress>(ns, &name(&o.metadata), dl).await?;
    }
    if let (Some(o), None) = (&old.service, &new.service) {
        kube.delete_and_wait::<Service>(ns, &name(&o.metadata), dl).await?;
    }
    if let (Some(o), None) = (&old.secret, &new.secret) {
        kube.delete_and_wait::<Secret>(ns, &name(&o.metadata), dl).await?;
    }
    if let (Some(o), None) = (&old.config_map, &new.config_map) {
        kube.delete_and_wait::<ConfigMap>(ns, &name(&o.metadata), dl).await?;
    }
    Ok(())
}

/// Poll the Deployment until its rollout is done, refused, stalled, or the
/// deadline passes.
async fn wait_for_rollout(kube: &Kube, spec: &AgentSpec, dl: &Deadline) -> Result<(), Failure> {
    let what = format!("rollout of {}", describe::<Deployment>(&spec.namespace, &spec.name));
    let mut last = String::new();
    let mut delay = Duration::from_millis(250);
    loop {
        let d = kube.get::<Deployment>(&spec.namespace, &spec.name, dl).await?;
        let state = match &d {
            Some(d) => rollout(d),
            None => Rollout::Waiting("the Deployment is missing".to_owned()),
        };
        match state {
            Rollout::Done => {
                tracing::info!(operation = %what, "rollout done");
                return Ok(());
            }
            Rollout::ReplicaFailure(message) => {
                let quota = message.contains("exceeded quota");
                let path = if quota {
                    quota_path(&message)
                } else {
                    AttributePath::root("image")
                };
                return Err(Failure {
                    error: if quota {
                        KubeError::Quota {
                            what: format!("{what}: creating its pods"),
                            message,
                        }
                    } else {
                        KubeError::Refused {
                            what: format!("{what}: creating its pods"),
                            code: 403,
                            reason: "ReplicaFailure".to_owned(),
                            message,
                        }
                    },
                    path: Some(path),
                    summary: Some(if quota {
                        "Agent's pods refused by a Kubernetes resource quota"
                    } else {
                        "Agent's pods could not be created"
                    }),
                });
            }
            Rollout::Stalled(message) => {
                return Err(KubeError::WaitTimeout {
                    what: format!("{what} (progress deadline exceeded: {message})"),
                    limit: dl.limit(),
                }
                .into());
            }
            Rollout::Waiting(why) => {
                if why != last {
                    tracing::info!(operation = %what, waiting_for = %why, "waiting for the rollout");
                    last = why;
                }
            }
        }
        // At the deadline, say what was still awaited.
        dl.sleep_awaiting(delay, &what, &last).await?;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Drift of every object `spec` renders (write-only secret values are not
/// known here, so only `secret_env` keys are compared). `None` when the
/// Deployment is gone: the agent no longer exists.
pub async fn drift(kube: &Kube, spec: &AgentSpec, dl: &Deadline) -> Result<Option<Vec<String>>, KubeError> {
    let objs = spec.render();
    let ns = &spec.namespace;
    let Some(live) = kube.get::<Deployment>(ns, &spec.name, dl).await? else {
        return Ok(None);
    };
    let mut lines = drift_lines("Deployment", &spec.name, &objs.deployment, Some(&live));
    if let Some(s) = &objs.service {
        let live = kube.get::<Service>(ns, &spec.name, dl).await?;
        lines.extend(drift_lines("Service", &spec.name, s, live.as_ref()));
    }
    if let Some(s) = &objs.secret {
        let n = spec.secret_name();
        let live = kube.get::<Secret>(ns, &n, dl).await?;
        lines.extend(drift_lines("Secret", &n, s, live.as_ref()));
    }
    if let Some(c) = &objs.config_map {
        let n = spec.config_map_name();
        let live = kube.get::<ConfigMap>(ns, &n, dl).await?;
        lines.extend(drift_lines("ConfigMap", &n, c, live.as_ref()));
    }
    if let Some(c) = &objs.claim {
        let n = spec.claim_name();
        let live = kube.get::<PersistentVolumeClaim>(ns, &n, dl).await?;
        lines.extend(drift_lines("PersistentVolumeClaim", &n, c, live.as_ref()));
    }
    if let Some(i) = &objs.ingress {
        let live = kube.get::<Ingress>(ns, &spec.name, dl).await?;
        lines.extend(drift_lines("Ingress", &spec.name, i, live.as_ref()));
    }
    if let Some(a) = &objs.autoscaler {
        let live = kube.get::<HorizontalPodAutoscaler>(ns, &spec.name, dl).await?;
        lines.extend(drift_lines("HorizontalPodAutoscaler", &spec.name, a, live.as_ref()));
    }
    if let Some(b) = &objs.disruption_budget {
        let live = kube.get::<PodDisruptionBudget>(ns, &spec.name, dl).await?;
        lines.extend(drift_lines("PodDisruptionBudget", &spec.name, b, live.as_ref()));
    }
    if !lines.is_empty() {
        tracing::info!(agent = %format!("{ns}/{}", spec.name), drift = ?lines, "managed fields changed outside Terraform");
    }
    Ok(Some(lines))
}

/// Which optional kinds an agent has, so that deleting one without them
/// needs no access to those kinds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extras {
    /// It has a HorizontalPodAutoscaler (`autoscaling`).
    pub autoscaler: bool,
    /// It has a PodDisruptionBudget (`disruption_budget`).
    pub disruption_budget: bool,
}

/// Delete every object an agent named `name` may have (the Deployment
/// after its pods are gone) and wait until all are gone. The autoscaler
/// and the disruption budget only when the agent has them (`extras`), so
/// that agents without need no access to those kinds; the autoscaler goes
/// first, before it would scale a Deployment being deleted.
pub async fn delete(kube: &Kube, ns: &str, name: &str, extras: Extras, dl: &Deadline) -> Result<(), KubeError> {
    let names = AgentSpec {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        ..AgentSpec::default()
    };
    if extras.autoscaler {
        kube.delete_and_wait::<HorizontalPodAutoscaler>(ns, name, dl).await?;
    }
    if extras.disruption_budget {
        kube.delete_and_wait::<PodDisruptionBudget>(ns, name, dl).await?;
    }
    kube.delete_and_wait::<Ingress>(ns, name, dl).await?;
    kube.delete_and_wait::<Service>(ns, name, dl).await?;
    kube.delete_with_dependents_and_wait::<Deployment>(ns, name, dl).await?;
    kube.delete_and_wait::<Secret>(ns, &names.secret_name(), dl).await?;
    kube.delete_and_wait::<ConfigMap>(ns, &names.config_map_name(), dl)
        .await?;
    kube.delete_and_wait::<PersistentVolumeClaim>(ns, &names.claim_name(), dl)
        .await?;
    tracing::info!(agent = %format!("{ns}/{name}"), "deleted the agent's objects");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_refusals_point_at_the_quantity() {
        let m = "pods \"big-1\" is forbidden: exceeded quota: agents-cpu, requested: limits.cpu=1, used: limits.cpu=0, limited: limits.cpu=500m";
        assert_eq!(quota_path(m).to_string(), "resources.cpu_limit");
        let m = "exceeded quota: q, requested: pods=1,requests.memory=1Gi, used: pods=3";
        assert_eq!(quota_path(m).to_string(), "resources.memory_request");
        assert_eq!(
            quota_path("exceeded quota: q, requested: pods=1, used: pods=3").to_string(),
            "resources"
        );
    }
}
