//! Whether an add-on's workload runs, and what its pods are stuck on.
//! Pure: judges objects as read.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Event, Pod};

use crate::kube::rollout::{Rollout, rollout};

/// Where a workload stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Every pod it wants runs the current template and is ready.
    Ready,
    /// Still going; the text says what is awaited.
    Waiting(String),
}

/// Judge a Deployment or DaemonSet (as JSON, any other kind is ready).
pub fn judge(kind: &str, live: &serde_json::Value) -> Readiness {
    match kind {
        "Deployment" => match serde_json::from_value::<Deployment>(live.clone()) {
            Ok(d) => match rollout(&d) {
                Rollout::Done => Readiness::Ready,
                Rollout::Waiting(w) => Readiness::Waiting(w),
                Rollout::ReplicaFailure(m) => Readiness::Waiting(format!("its pods cannot be created: {m}")),
                Rollout::Stalled(m) => Readiness::Waiting(format!("progress deadline exceeded: {m}")),
            },
            Err(e) => Readiness::Waiting(format!("unreadable Deployment: {e}")),
        },
        "DaemonSet" => match serde_json::from_value::<DaemonSet>(live.clone()) {
            Ok(d) => daemon_set(&d),
            Err(e) => Readiness::Waiting(format!("unreadable DaemonSet: {e}")),
        },
        _ => Readiness::Ready,
    }
}

fn daemon_set(d: &DaemonSet) -> Readiness {
    let Some(s) = &d.status else {
        return Readiness::Waiting("no status yet".to_owned());
    };
    if s.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
        return Readiness::Waiting("the controller has not seen the new spec yet".to_owned());
    }
    let want = s.desired_number_scheduled;
    let updated = s.updated_number_scheduled.unwrap_or(0);
    if want == 0 {
        return Readiness::Waiting("no node is scheduled to run it".to_owned());
    }
    if updated < want {
        return Readiness::Waiting(format!("{updated} of {want} pods updated"));
    }
    if s.number_ready < want {
        return Readiness::Waiting(format!("{} of {want} pods ready", s.number_ready));
    }
    Readiness::Ready
}

/// What holds a pod back, as its container statuses say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodProblem {
    /// "kube-system/metrics-server-5d9f-x2x8z".
    pub pod: String,
    /// The waiting reason, e.g. "ImagePullBackOff".
    pub reason: String,
    /// The kubelet's message (the pull error's text).
    pub message: String,
}

impl PodProblem {
    /// A reason waiting cannot fix: the image is not there (offline, not
    /// in the bundle, misspelt) or the pod cannot be configured.
    pub fn is_final(&self) -> bool {
        matches!(
            self.reason.as_str(),
            "ErrImageNeverPull" | "InvalidImageName" | "CreateContainerConfigError"
        )
    }

    /// A failing image pull (retried by the kubelet with backoff).
    pub fn is_pull(&self) -> bool {
        matches!(self.reason.as_str(), "ImagePullBackOff" | "ErrImagePull")
    }
}

impl std::fmt::Display for PodProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pod {}: {}", self.pod, self.reason)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// The first pod that is not ready, by name ("namespace/name").
pub fn unready_pod(pods: &[Pod]) -> Option<(String, String)> {
    pods.iter().find_map(|p| {
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        (!ready).then(|| {
            (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
            )
        })
    })
}

/// The latest Warning event of pod `namespace/name` among `events` (what
/// `kubectl describe pod` shows last, e.g. a sandbox the CNI could not
/// set up), as a problem.
pub fn event_problem(namespace: &str, name: &str, events: &[Event]) -> Option<PodProblem> {
    events
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning") && e.involved_object.name.as_deref() == Some(name))
        // a failing probe is a pod still starting; waiting may fix it
        .filter(|e| e.reason.as_deref() != Some("Unhealthy"))
        .max_by_key(|e| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0))
        })
        .map(|e| PodProblem {
            pod: format!("{namespace}/{name}"),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
        })
}

/// The first waiting container of the first pod that has one (init
/// containers first), or a pod the scheduler could not place.
pub fn pod_problem(pods: &[Pod]) -> Option<PodProblem> {
    pods.iter().find_map(|p| {
        let name = format!(
            "{}/{}",
            p.metadata.namespace.as_deref().unwrap_or_default(),
            p.metadata.name.as_deref().unwrap_or_default()
        );
        let status = p.status.as_ref()?;
        let waiting = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
            .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
            .find(|w| {
                w.reason
                    .as_deref()
                    .is_some_and(|r| r != "ContainerCreating" && r != "PodInitializing")
            });
        if let Some(w) = waiting {
            return Some(PodProblem {
                pod: name,
                reason: w.reason.clone().unwrap_or_default(),
                message: w.message.clone().unwrap_or_default(),
            });
        }
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .map(|c| PodProblem {
                pod: name,
                reason: c.reason.clone().unwrap_or_else(|| "Unschedulable".to_owned()),
                message: c.message.clone().unwrap_or_default(),
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_daemon_set_is_ready_when_every_scheduled_pod_is() {
        let ds = |generation: i64, observed: i64, want: i32, updated: i32, ready: i32| {
            json!({"metadata": {"generation": generation}, "spec": {"selector": {}, "template": {}},
                   "status": {"observedGeneration": observed, "desiredNumberScheduled": want,
                              "updatedNumberScheduled": updated, "numberReady": ready,
                              "currentNumberScheduled": want, "numberMisscheduled": 0}})
        };
        assert_eq!(judge("DaemonSet", &ds(2, 2, 3, 3, 3)), Readiness::Ready);
        assert!(matches!(judge("DaemonSet", &ds(2, 1, 3, 3, 3)), Readiness::Waiting(_)));
        assert!(matches!(judge("DaemonSet", &ds(1, 1, 3, 2, 3)), Readiness::Waiting(_)));
        assert!(matches!(judge("DaemonSet", &ds(1, 1, 3, 3, 2)), Readiness::Waiting(_)));
        assert!(matches!(judge("DaemonSet", &ds(1, 1, 0, 0, 0)), Readiness::Waiting(_)));
        assert_eq!(judge("ClusterRole", &json!({})), Readiness::Ready);
    }

    #[test]
    fn a_pull_failure_names_the_pod_and_the_kubelets_message() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "metrics-server-abc", "namespace": "kube-system"},
            "status": {"containerStatuses": [{"name": "metrics-server", "image": "x", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff",
                    "message": "Back-off pulling image \"registry.k8s.io/metrics-server/metrics-server:v0.8.0\""}}}]}
        }))
        .expect("pod");
        let p = pod_problem(&[pod]).expect("a problem");
        assert!(p.is_pull() && !p.is_final());
        let text = p.to_string();
        assert!(
            text.starts_with("pod kube-system/metrics-server-abc: ImagePullBackOff: Back-off pulling image"),
            "{text}"
        );
        let never: Pod = serde_json::from_value(json!({
            "metadata": {"name": "t", "namespace": "n"},
            "status": {"containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ErrImageNeverPull"}}}]}
        }))
        .expect("pod");
        assert!(pod_problem(&[never]).expect("problem").is_final());
        let creating: Pod = serde_json::from_value(json!({
            "metadata": {"name": "t", "namespace": "n"},
            "status": {"containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}
        }))
        .expect("pod");
        assert_eq!(pod_problem(std::slice::from_ref(&creating)), None);
        assert_eq!(unready_pod(&[creating]), Some(("n".to_owned(), "t".to_owned())));
    }

    #[test]
    fn a_sandbox_the_cni_cannot_set_up_is_read_from_the_pods_latest_warning() {
        let events: Vec<Event> = serde_json::from_value(json!([
            {"metadata": {"name": "e1"}, "involvedObject": {"name": "traefik-x"}, "type": "Normal",
             "reason": "Scheduled", "message": "assigned", "lastTimestamp": "2026-12-06T21:00:00Z"},
            {"metadata": {"name": "e2"}, "involvedObject": {"name": "traefik-x"}, "type": "Warning",
             "reason": "FailedCreatePodSandBox",
             "message": "plugin type=\"portmap\" failed (add): failed to open iptables",
             "lastTimestamp": "2026-12-06T21:00:05Z"},
            {"metadata": {"name": "e3"}, "involvedObject": {"name": "other"}, "type": "Warning",
             "reason": "BackOff", "message": "x", "lastTimestamp": "2026-12-06T21:00:09Z"}
        ]))
        .expect("events");
        let p = event_problem("selfhost-ingress", "traefik-x", &events).expect("a problem");
        assert_eq!(p.reason, "FailedCreatePodSandBox");
        assert!(
            p.to_string()
                .starts_with("pod selfhost-ingress/traefik-x: FailedCreatePodSandBox: plugin"),
            "{p}"
        );
        assert_eq!(event_problem("selfhost-ingress", "nope", &events), None);
    }
}
