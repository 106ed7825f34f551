//! An add-on's life on the API server: installed (every object applied,
//! then its workload awaited), observed (missing or drifted objects said
//! by name), removed (every object deleted, in reverse order).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};

use super::Addon;
use super::readiness::{PodProblem, Readiness, event_problem, judge, pod_problem, unready_pod};
use crate::kube::drift::drift_paths;
use crate::kube::{Deadline, Kube, KubeError};

/// How long a pod may stay stuck on the same kind of problem (an image
/// pull failing, a sandbox the CNI cannot set up, a crash loop) before the
/// apply gives up with the kubelet's message: its backoff has retried
/// several times by then, and an offline node without the image never
/// gets it.
pub const STUCK_GRACE: Duration = Duration::from_secs(120);

/// What the API server has of an add-on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Every object, as applied.
    Present,
    /// Objects that are gone ("DaemonSet kube-system/x").
    Missing(Vec<String>),
    /// Objects whose managed fields differ ("Deployment a/b: spec.replicas").
    Drifted(Vec<String>),
}

/// Apply every object of `addon`, then wait until its workload is ready.
///
/// # Errors
/// A refusal of an object; [`KubeError::PodsStuck`] when its pods cannot
/// start (an image neither pullable nor on the nodes); a timeout.
pub async fn install(kube: &Kube, addon: &Addon, dl: &Deadline) -> Result<(), KubeError> {
    tracing::info!(
        addon = addon.name,
        "add-on {}: applying {} objects",
        addon.name,
        addon.objects.len()
    );
    for item in &addon.objects {
        kube.apply_item(item, dl).await?;
    }
    wait_ready(kube, addon, dl).await
}

async fn wait_ready(kube: &Kube, addon: &Addon, dl: &Deadline) -> Result<(), KubeError> {
    let Some(workload) = addon.workload() else {
        return Ok(());
    };
    let what = format!("rollout of {}", workload.describe());
    let mut last = String::new();
    let mut stuck_since: Option<Instant> = None;
    let mut delay = Duration::from_millis(500);
    loop {
        let live = kube.get_item(workload, dl).await?;
        let state = match &live {
            Some(o) => judge(&workload.resource.kind, &serde_json::to_value(o).unwrap_or_default()),
            None => Readiness::Waiting("it is missing".to_owned()),
        };
        let waiting = match state {
            Readiness::Ready => {
                tracing::info!(
                    addon = addon.name,
                    "add-on {}: {} ready",
                    addon.name,
                    workload.describe()
                );
                return Ok(());
            }
            Readiness::Waiting(w) => w,
        };
        let problem = problem_of(kube, workload, dl).await?;
        match &problem {
            Some(p) if p.is_final() => {
                return Err(KubeError::PodsStuck {
                    what,
                    problem: p.to_string(),
                });
            }
            Some(p) => {
                let since = *stuck_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= STUCK_GRACE {
                    return Err(KubeError::PodsStuck {
                        what,
                        problem: p.to_string(),
                    });
                }
            }
            None => stuck_since = None,
        }
        let now = match &problem {
            Some(p) => format!("{waiting}; {p}"),
            None => waiting,
        };
        if now != last {
            tracing::info!(addon = addon.name, "add-on {}: waiting: {now}", addon.name);
            last = now;
        }
        dl.sleep_awaiting(delay, &what, &last).await?;
        delay = (delay * 2).min(Duration::from_secs(3));
    }
}

/// What holds the workload's pods back: a waiting container's reason, else
/// the latest Warning event of a pod that is not ready.
async fn problem_of(
    kube: &Kube,
    workload: &crate::kube::manifest::Item,
    dl: &Deadline,
) -> Result<Option<PodProblem>, KubeError> {
    let pods = pods_of(kube, workload, dl).await?;
    if let Some(p) = pod_problem(&pods) {
        return Ok(Some(p));
    }
    let Some((ns, name)) = unready_pod(&pods) else {
        return Ok(None);
    };
    let api: Api<Event> = Api::namespaced(kube.client.clone(), &ns);
    let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
    let what = format!("list of the events of pod {ns}/{name}");
    let events = kube.retrying(&what, dl, || api.list(&params)).await?.items;
    Ok(event_problem(&ns, &name, &events))
}

/// The pods of a Deployment or DaemonSet (by its selector's labels).
async fn pods_of(kube: &Kube, workload: &crate::kube::manifest::Item, dl: &Deadline) -> Result<Vec<Pod>, KubeError> {
    let Some(ns) = workload.namespace() else {
        return Ok(Vec::new());
    };
    let json = workload.json();
    let selector = json["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(kube.client.clone(), ns);
    let params = ListParams::default().labels(&selector);
    let what = format!("list of the pods of {}", workload.describe());
    Ok(kube.retrying(&what, dl, || api.list(&params)).await?.items)
}

/// Whether every object of `addon` is there as applied.
///
/// # Errors
/// When the API server cannot be read.
pub async fn observe(kube: &Kube, addon: &Addon, dl: &Deadline) -> Result<Observed, KubeError> {
    let mut missing = Vec::new();
    let mut drifted = Vec::new();
    for item in &addon.objects {
        match kube.get_item(item, dl).await? {
            None => missing.push(item.describe()),
            Some(live) if live.metadata.deletion_timestamp.is_some() => missing.push(item.describe()),
            Some(live) => {
                let mut desired = item.json();
                // identity and metadata other writers add are not ours to judge
                if let Some(m) = desired.as_object_mut() {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
                let paths = drift_paths(&desired, &serde_json::to_value(&live).unwrap_or_default());
                if !paths.is_empty() {
                    drifted.push(format!("{}: {}", item.describe(), paths.join(", ")));
                }
            }
        }
    }
    Ok(if !missing.is_empty() {
        Observed::Missing(missing)
    } else if !drifted.is_empty() {
        Observed::Drifted(drifted)
    } else {
        Observed::Present
    })
}

/// Delete every object of `addon` (last applied first) and wait until
/// each is gone; gone already is success.
///
/// # Errors
/// A refusal or a timeout.
pub async fn remove(kube: &Kube, addon: &Addon, dl: &Deadline) -> Result<(), KubeError> {
    tracing::info!(
        addon = addon.name,
        "add-on {}: removing {} objects",
        addon.name,
        addon.objects.len()
    );
    for item in addon.objects.iter().rev() {
        kube.delete_item_and_wait(item, dl).await?;
    }
    Ok(())
}
