//! The Kubernetes calls of `selfhost_backup_schedule`: apply the
//! ServiceAccount, Secret and CronJob (server-side, under the provider's
//! field manager), read them back for drift and status, delete them.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use serde::Serialize;

use crate::backup::cronjob::{BackupObjects, CONFIG_ANNOTATION, LEGACY_CONFIG_ANNOTATION, render, secret_name};
use crate::framework::resource::Context;
use crate::kube::client::{Namespaced, describe};
use crate::kube::drift::drift_paths;
use crate::kube::{Deadline, Kube, KubeError};
use crate::resources::state::kube_clients;

use super::model::{Config, Rendered};

/// What the CronJob reports about its runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub last_schedule_time: Option<String>,
    pub last_successful_time: Option<String>,
}

/// The objects of a configuration, with the import annotation.
pub fn objects(config: &Config, rendered: &Rendered) -> BackupObjects {
    render(&rendered.spec, &rendered.job, &rendered.secrets, &config.public_json())
}

async fn client(ctx: &Context, config: &Config) -> Result<Kube, KubeError> {
    kube_clients(ctx).client(&config.kubeconfig).await
}

/// Apply every object; the CronJob last, so it never runs without its
/// Secret and ServiceAccount. Returns the CronJob's status.
pub async fn apply(ctx: &Context, config: &Config, objs: &BackupObjects, dl: &Deadline) -> Result<Status, KubeError> {
    let kube = client(ctx, config).await?;
    kube.apply(&objs.service_account, dl).await?;
    kube.apply(&objs.secret, dl).await?;
    let cj = kube.apply(&objs.cronjob, dl).await?;
    tracing::info!(namespace = %config.namespace, name = %config.name, "applied the backup CronJob, its Secret and ServiceAccount");
    Ok(status(&cj))
}

fn time_string<T: Serialize>(t: Option<&T>) -> Option<String> {
    serde_json::to_value(t?).ok()?.as_str().map(str::to_owned)
}

fn status(cj: &CronJob) -> Status {
    let s = cj.status.as_ref();
    Status {
        last_schedule_time: time_string(s.and_then(|s| s.last_schedule_time.as_ref())),
        last_successful_time: time_string(s.and_then(|s| s.last_successful_time.as_ref())),
    }
}

/// What a read finds: `None` when the CronJob is gone (the resource then
/// leaves state and the plan creates it again).
pub struct Observed {
    pub status: Status,
    /// "CronJob spec.suspend", "Secret data.RESTIC_PASSWORD", "ServiceAccount: missing".
    pub drift: Vec<String>,
}

fn compare<K: Namespaced>(desired: &K, live: Option<&K>, out: &mut Vec<String>) {
    let kind = K::kind(&());
    let Some(live) = live else {
        out.push(format!("{kind}: missing"));
        return;
    };
    match (serde_json::to_value(desired), serde_json::to_value(live)) {
        (Ok(d), Ok(l)) => out.extend(drift_paths(&d, &l).into_iter().map(|p| format!("{kind} {p}"))),
        _ => out.push(format!("{kind}: unreadable")),
    }
}

/// Read the objects back and compare their managed fields with `objs`.
pub async fn observe(
    ctx: &Context,
    config: &Config,
    objs: &BackupObjects,
    dl: &Deadline,
) -> Result<Option<Observed>, KubeError> {
    let kube = client(ctx, config).await?;
    let Some(cj) = kube.get::<CronJob>(&config.namespace, &config.name, dl).await? else {
        return Ok(None);
    };
    let sa_secret = secret_name(&config.name);
    let secret = kube.get::<Secret>(&config.namespace, &sa_secret, dl).await?;
    let sa = kube.get::<ServiceAccount>(&config.namespace, &sa_secret, dl).await?;
    let mut drift = Vec::new();
    compare(&objs.cronjob, Some(&cj), &mut drift);
    compare(&objs.secret, secret.as_ref(), &mut drift);
    compare(&objs.service_account, sa.as_ref(), &mut drift);
    if !drift.is_empty() {
        tracing::info!(namespace = %config.namespace, name = %config.name, drift = ?drift, "the backup objects differ from state (drift): the plan repairs them");
    }
    Ok(Some(Observed {
        status: status(&cj),
        drift,
    }))
}

/// Delete the CronJob (its Jobs and pods go with it), then the Secret and
/// the ServiceAccount, waiting until each is gone.
pub async fn remove(ctx: &Context, config: &Config, dl: &Deadline) -> Result<(), KubeError> {
    let kube = client(ctx, config).await?;
    let other = secret_name(&config.name);
    kube.delete_and_wait::<CronJob>(&config.namespace, &config.name, dl)
        .await?;
    kube.delete_and_wait::<Secret>(&config.namespace, &other, dl).await?;
    kube.delete_and_wait::<ServiceAccount>(&config.namespace, &other, dl)
        .await?;
    tracing::info!(namespace = %config.namespace, name = %config.name, "deleted the backup CronJob, its Secret and ServiceAccount");
    Ok(())
}

/// Why an import found nothing to adopt.
pub enum ImportError {
    Kube(KubeError),
    NotFound(String),
    NotOurs(String),
}

impl From<KubeError> for ImportError {
    fn from(e: KubeError) -> Self {
        ImportError::Kube(e)
    }
}

/// The configuration of an existing schedule, rebuilt from its CronJob's
/// annotation and its Secret.
pub async fn adopt(
    ctx: &Context,
    kubeconfig: String,
    namespace: &str,
    name: &str,
    dl: &Deadline,
) -> Result<Config, ImportError> {
    let kube = kube_clients(ctx).client(&kubeconfig).await?;
    let Some(cj) = kube.get::<CronJob>(namespace, name, dl).await? else {
        return Err(ImportError::NotFound(describe::<CronJob>(namespace, name)));
    };
    let annotation = cj
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONFIG_ANNOTATION).or_else(|| a.get(LEGACY_CONFIG_ANNOTATION)));
    let Some(config) = annotation.and_then(|a| serde_json::from_str::<Config>(a).ok()) else {
        return Err(ImportError::NotOurs(format!(
            "{} has no readable {CONFIG_ANNOTATION} annotation: it was not made by selfhost_backup_schedule",
            describe::<CronJob>(namespace, name)
        )));
    };
    let secret_obj = secret_name(name);
    let secrets: BTreeMap<String, String> = kube
        .get::<Secret>(namespace, &secret_obj, dl)
        .await?
        .and_then(|s| s.data)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| String::from_utf8(v.0).ok().map(|v| (k, v)))
        .collect();
    Ok(config.with_secrets(kubeconfig, &secrets))
}
