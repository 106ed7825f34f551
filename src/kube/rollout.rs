//! Whether a Deployment's rollout is done, still going, or stuck for a
//! reason waiting will not fix (a quota forbidding its pods, a progress
//! deadline passed). Pure: judges a Deployment as read.

use k8s_openapi::api::apps::v1::Deployment;

/// Where a rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Every replica runs the current template and is ready.
    Done,
    /// Still going; the text says what is awaited.
    Waiting(String),
    /// Its pods cannot be created (the ReplicaSet's failure message, e.g.
    /// `pods "x" is forbidden: exceeded quota: q, ...`).
    ReplicaFailure(String),
    /// The Deployment's progress deadline passed.
    Stalled(String),
}

/// Judge `d` as read from the API server.
pub fn rollout(d: &Deployment) -> Rollout {
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = d.status.as_ref() else {
        return Rollout::Waiting("no status yet".to_owned());
    };
    for c in status.conditions.iter().flatten() {
        let message = c.message.clone().unwrap_or_default();
        if c.type_ == "ReplicaFailure" && c.status == "True" {
            return Rollout::ReplicaFailure(message);
        }
        if c.type_ == "Progressing" && c.status == "False" && c.reason.as_deref() == Some("ProgressDeadlineExceeded") {
            return Rollout::Stalled(message);
        }
    }
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Waiting("the controller has not seen the new spec yet".to_owned());
    }
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        return Rollout::Waiting(format!("{updated} of {want} replicas updated"));
    }
    if total > updated {
        return Rollout::Waiting(format!("{} old replicas still running", total - updated));
    }
    if available < updated {
        return Rollout::Waiting(format!("{available} of {updated} updated replicas available"));
    }
    Rollout::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(v: serde_json::Value) -> Deployment {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn judged_like_kubectl_rollout_status() {
        let cases = [
            ("no status", json!({"metadata": {"generation": 1}}), false),
            (
                "old generation",
                json!({"metadata": {"generation": 2}, "spec": {"replicas": 1, "selector": {}, "template": {}},
                       "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}}),
                false,
            ),
            (
                "old replicas left",
                json!({"metadata": {"generation": 2}, "spec": {"replicas": 1, "selector": {}, "template": {}},
                       "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}}),
                false,
            ),
            (
                "not yet available",
                json!({"metadata": {"generation": 2}, "spec": {"replicas": 2, "selector": {}, "template": {}},
                       "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}}),
                false,
            ),
            (
                "done",
                json!({"metadata": {"generation": 2}, "spec": {"replicas": 2, "selector": {}, "template": {}},
                       "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}}),
                true,
            ),
            (
                "scaled to zero",
                json!({"metadata": {"generation": 3}, "spec": {"replicas": 0, "selector": {}, "template": {}},
                       "status": {"observedGeneration": 3}}),
                true,
            ),
        ];
        for (name, d, done) in cases {
            let r = rollout(&deployment(d));
            assert_eq!(r == Rollout::Done, done, "{name}: {r:?}");
        }
    }

    #[test]
    fn quota_refusals_and_deadlines_are_final() {
        let d = deployment(json!({"metadata": {"generation": 1},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "conditions": [
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated"},
                {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                 "message": "pods \"a-1\" is forbidden: exceeded quota: tight, requested: limits.cpu=1"}]}}));
        match rollout(&d) {
            Rollout::ReplicaFailure(m) => assert!(m.contains("exceeded quota: tight"), "{m}"),
            other => panic!("{other:?}"),
        }
        let d = deployment(json!({"metadata": {"generation": 1},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                 "message": "ReplicaSet \"a-1\" has timed out progressing."}]}}));
        assert!(matches!(rollout(&d), Rollout::Stalled(_)));
    }
}
