//! What each node needs, decided from its probe alone (no I/O): the
//! convergence ([`super::converge`]) runs these decisions through the
//! distribution's operations, so each rule is written, and tested, once
//! for kubeadm and k3s.

use std::collections::BTreeMap;

use super::api::NodeInfo;
use crate::cluster::node::Probe;

/// A node lacks the binaries of `version`, or never joined: prepare it.
pub fn needs_prepare(probe: &Probe, version: &str) -> bool {
    probe.installed_version != version || !probe.joined
}

/// What the control plane needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlPlaneStep {
    /// No cluster yet: bring one up.
    Init,
    /// A service is stopped or the API server does not answer /readyz.
    Restart,
    /// Running as it should.
    Keep,
}

pub fn control_plane_step(probe: &Probe) -> ControlPlaneStep {
    if !probe.initialized {
        ControlPlaneStep::Init
    } else if !probe.kubelet_active || !probe.containerd_active || !probe.api_ready {
        // A restarted kubelet restarts the control plane's static pods.
        ControlPlaneStep::Restart
    } else {
        ControlPlaneStep::Keep
    }
}

/// What a worker needs, given the Nodes the API server lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerStep {
    Join,
    /// A service is stopped or its Node is gone: a restarted kubelet
    /// registers it again.
    Restart,
    Keep,
}

pub fn worker_step(probe: &Probe, name: &str, registered: &BTreeMap<String, NodeInfo>) -> WorkerStep {
    if !probe.joined {
        WorkerStep::Join
    } else if !probe.kubelet_active || !probe.containerd_active || !registered.contains_key(name) {
        WorkerStep::Restart
    } else {
        WorkerStep::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> Probe {
        Probe {
            hostname: "w1".into(),
            containerd_active: true,
            kubelet_active: true,
            joined: true,
            initialized: true,
            installed_version: "v1.36.3".into(),
            k3s_unit: String::new(),
            api_ready: true,
            facts: Default::default(),
            security: Default::default(),
        }
    }

    fn listed(names: &[&str]) -> BTreeMap<String, NodeInfo> {
        names
            .iter()
            .map(|n| {
                (
                    (*n).to_owned(),
                    NodeInfo {
                        ready: true,
                        version: "v1.36.3".into(),
                        cordoned_by_upgrade: false,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_running_node_is_left_alone() {
        let p = running();
        assert!(!needs_prepare(&p, "v1.36.3"));
        assert_eq!(control_plane_step(&p), ControlPlaneStep::Keep);
        assert_eq!(worker_step(&p, "w1", &listed(&["cp", "w1"])), WorkerStep::Keep);
    }

    #[test]
    fn another_version_or_no_join_means_prepare() {
        assert!(needs_prepare(&running(), "v1.37.0"));
        let p = Probe {
            joined: false,
            ..running()
        };
        assert!(needs_prepare(&p, "v1.36.3"));
        assert_eq!(worker_step(&p, "w1", &listed(&["w1"])), WorkerStep::Join);
    }

    #[test]
    fn the_control_plane_is_initialised_once_and_restarted_when_down() {
        let fresh = Probe {
            initialized: false,
            ..running()
        };
        assert_eq!(control_plane_step(&fresh), ControlPlaneStep::Init);
        for down in [
            Probe {
                kubelet_active: false,
                ..running()
            },
            Probe {
                containerd_active: false,
                ..running()
            },
            Probe {
                api_ready: false,
                ..running()
            },
        ] {
            assert_eq!(control_plane_step(&down), ControlPlaneStep::Restart, "{down:?}");
        }
    }

    #[test]
    fn a_worker_missing_from_the_api_is_restarted_only_when_missing() {
        assert_eq!(worker_step(&running(), "w1", &listed(&["cp"])), WorkerStep::Restart);
        let stopped = Probe {
            kubelet_active: false,
            ..running()
        };
        assert_eq!(worker_step(&stopped, "w1", &listed(&["w1"])), WorkerStep::Restart);
    }
}
