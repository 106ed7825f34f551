//! The optional parts of an agent's pod and the objects beside it: probes,
//! persistent storage, tolerations, the Ingress, the autoscaler and the
//! disruption budget. Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    ExecAction, HTTPGetAction, PersistentVolumeClaim, PersistentVolumeClaimSpec, Probe as K8sProbe, TCPSocketAction,
    Toleration, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend,
    IngressSpec as K8sIngressSpec, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::agent_spec::{AgentSpec, Port};
pub use super::agent_spec::{
    AutoscalingSpec, DisruptionBudgetSpec, IngressSpec, PodCount, Probe, Storage, TolerationSpec,
};
// The names the cluster's traefik add-on is configured with: one place.
use super::addons::traefik::{RESOLVER, WEB, WEBSECURE};

/// Ingress annotation: the traefik entrypoints the Ingress's router listens on.
pub const ROUTER_ENTRYPOINTS_ANNOTATION: &str = "traefik.ingress.kubernetes.io/router.entrypoints";
/// Ingress annotation: the router terminates TLS (`"true"`).
pub const ROUTER_TLS_ANNOTATION: &str = "traefik.ingress.kubernetes.io/router.tls";
/// Ingress annotation: the certificate resolver that obtains the router's certificate.
pub const ROUTER_CERTRESOLVER_ANNOTATION: &str = "traefik.ingress.kubernetes.io/router.tls.certresolver";

impl Probe {
    /// The container probe; `ports` supply the default port.
    pub fn render(&self, ports: &[Port]) -> K8sProbe {
        let port = || {
            let p = self
                .port
                .clone()
                .or_else(|| ports.first().map(|p| p.name.clone()))
                .unwrap_or_default();
            match p.parse::<i32>() {
                Ok(n) => IntOrString::Int(n),
                Err(_) => IntOrString::String(p),
            }
        };
        let mut probe = K8sProbe {
            initial_delay_seconds: self.initial_delay_seconds,
            period_seconds: self.period_seconds,
            failure_threshold: self.failure_threshold,
            ..K8sProbe::default()
        };
        if !self.command.is_empty() {
            probe.exec = Some(ExecAction {
                command: Some(self.command.clone()),
            });
        } else if let Some(path) = &self.http_path {
            probe.http_get = Some(HTTPGetAction {
                path: Some(path.clone()),
                port: port(),
                ..HTTPGetAction::default()
            });
        } else {
            probe.tcp_socket = Some(TCPSocketAction {
                port: port(),
                ..TCPSocketAction::default()
            });
        }
        probe
    }
}

impl Storage {
    /// The claim (ReadWriteOnce) of `agent`.
    pub fn claim(&self, agent: &AgentSpec) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: agent.meta(agent.claim_name()),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                storage_class_name: self.storage_class.clone(),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(self.size.clone()))])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        }
    }
}

impl From<&TolerationSpec> for Toleration {
    fn from(t: &TolerationSpec) -> Self {
        Toleration {
            key: t.key.clone(),
            operator: t.operator.clone(),
            value: t.value.clone(),
            effect: t.effect.clone(),
            ..Toleration::default()
        }
    }
}

impl IngressSpec {
    /// The traefik router annotations: HTTPS on `websecure` with a
    /// certificate from the ACME resolver, or plain HTTP on `web`.
    fn annotations(&self) -> BTreeMap<String, String> {
        let a = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        if self.tls {
            BTreeMap::from([
                a(ROUTER_ENTRYPOINTS_ANNOTATION, WEBSECURE),
                a(ROUTER_TLS_ANNOTATION, "true"),
                a(ROUTER_CERTRESOLVER_ANNOTATION, RESOLVER),
            ])
        } else {
            BTreeMap::from([a(ROUTER_ENTRYPOINTS_ANNOTATION, WEB)])
        }
    }

    /// The Ingress of `agent`, routed by the cluster's traefik; `None`
    /// without a port to route to. No `spec.tls`: traefik obtains and keeps
    /// the certificate itself (a `secretName` that does not exist would
    /// only make it log errors).
    pub fn render(&self, agent: &AgentSpec) -> Option<Ingress> {
        let port = agent.ports.first()?;
        let mut metadata = agent.meta(agent.name.clone());
        metadata.annotations = Some(self.annotations());
        Some(Ingress {
            metadata,
            spec: Some(K8sIngressSpec {
                ingress_class_name: self.class.clone(),
                rules: Some(vec![IngressRule {
                    host: Some(self.host.clone()),
                    http: Some(HTTPIngressRuleValue {
                        paths: vec![HTTPIngressPath {
                            path: Some(self.path.clone()),
                            path_type: "Prefix".to_owned(),
                            backend: IngressBackend {
                                service: Some(IngressServiceBackend {
                                    name: agent.name.clone(),
                                    port: Some(ServiceBackendPort {
                                        name: Some(port.name.clone()),
                                        number: None,
                                    }),
                                }),
                                resource: None,
                            },
                        }],
                    }),
                }]),
                ..K8sIngressSpec::default()
            }),
            ..Ingress::default()
        })
    }
}

impl AutoscalingSpec {
    /// The HorizontalPodAutoscaler `<name>` of `agent`, scaling its
    /// Deployment on average utilisation (CPU first, then memory).
    pub fn render(&self, agent: &AgentSpec) -> HorizontalPodAutoscaler {
        let utilization = |resource: &str, percent: i32| MetricSpec {
            type_: "Resource".to_owned(),
            resource: Some(ResourceMetricSource {
                name: resource.to_owned(),
                target: MetricTarget {
                    type_: "Utilization".to_owned(),
                    average_utilization: Some(percent),
                    ..MetricTarget::default()
                },
            }),
            ..MetricSpec::default()
        };
        let metrics: Vec<MetricSpec> = [("cpu", self.cpu_percent), ("memory", self.memory_percent)]
            .into_iter()
            .filter_map(|(r, p)| p.map(|p| utilization(r, p)))
            .collect();
        HorizontalPodAutoscaler {
            metadata: agent.meta(agent.name.clone()),
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".to_owned()),
                    kind: "Deployment".to_owned(),
                    name: agent.name.clone(),
                },
                min_replicas: Some(self.min_replicas),
                max_replicas: self.max_replicas,
                metrics: (!metrics.is_empty()).then_some(metrics),
                behavior: None,
            },
            status: None,
        }
    }
}

/// The budget's `unhealthyPodEvictionPolicy`: pods that are not Ready
/// serve nothing, so evicting them costs nothing; with the default
/// (`IfHealthyBudget`) a crash-looping agent would hold every drain.
pub const UNHEALTHY_POD_EVICTION_POLICY: &str = "AlwaysAllow";

impl From<PodCount> for IntOrString {
    fn from(c: PodCount) -> Self {
        match c {
            PodCount::Pods(n) => IntOrString::Int(n),
            PodCount::Percent(_) => IntOrString::String(c.to_string()),
        }
    }
}

impl DisruptionBudgetSpec {
    /// The PodDisruptionBudget `<name>` of `agent`, selecting exactly its
    /// pods (the Deployment's selector).
    pub fn render(&self, agent: &AgentSpec) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: agent.meta(agent.name.clone()),
            spec: Some(PodDisruptionBudgetSpec {
                selector: Some(LabelSelector {
                    match_labels: Some(agent.selector()),
                    ..LabelSelector::default()
                }),
                min_available: self.min_available.map(IntOrString::from),
                max_unavailable: self.max_unavailable.map(IntOrString::from),
                unhealthy_pod_eviction_policy: Some(UNHEALTHY_POD_EVICTION_POLICY.to_owned()),
            }),
            status: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> Vec<Port> {
        vec![Port {
            name: "http".into(),
            port: 8080,
            protocol: "TCP".into(),
        }]
    }

    #[test]
    fn probes_pick_their_handler() {
        let exec = Probe {
            command: vec!["true".into()],
            ..Probe::default()
        }
        .render(&http());
        assert!(exec.exec.is_some() && exec.http_get.is_none());
        let get = Probe {
            http_path: Some("/healthz".into()),
            period_seconds: Some(5),
            ..Probe::default()
        }
        .render(&http());
        let g = get.http_get.unwrap();
        assert_eq!(g.port, IntOrString::String("http".into()), "the first port by default");
        assert_eq!(get.period_seconds, Some(5));
        let tcp = Probe {
            port: Some("9000".into()),
            ..Probe::default()
        }
        .render(&http());
        assert_eq!(tcp.tcp_socket.unwrap().port, IntOrString::Int(9000));
    }

    fn research() -> AgentSpec {
        AgentSpec {
            namespace: "agents".into(),
            name: "research".into(),
            ports: http(),
            ..AgentSpec::default()
        }
    }

    #[test]
    fn ingress_routes_to_the_first_port_over_https_with_a_certificate_from_acme() {
        let agent = research();
        let spec = IngressSpec {
            host: "research.example.com".into(),
            path: "/".into(),
            tls: true,
            class: None,
        };
        let j = serde_json::to_value(spec.render(&agent).unwrap()).unwrap();
        assert_eq!(
            j["metadata"]["annotations"],
            serde_json::json!({
                "traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
                "traefik.ingress.kubernetes.io/router.tls": "true",
                "traefik.ingress.kubernetes.io/router.tls.certresolver": "acme",
            })
        );
        assert!(
            j["spec"].get("tls").is_none(),
            "traefik keeps the certificate: no secretName"
        );
        assert!(!j.to_string().contains("secretName"), "{j}");
        assert!(
            j["spec"].get("ingressClassName").is_none(),
            "unset class: the cluster's default (traefik)"
        );
        assert_eq!(j["spec"]["rules"][0]["host"], "research.example.com");
        let path = &j["spec"]["rules"][0]["http"]["paths"][0];
        assert_eq!(path["path"], "/");
        assert_eq!(path["pathType"], "Prefix");
        assert_eq!(path["backend"]["service"]["name"], "research");
        assert_eq!(path["backend"]["service"]["port"]["name"], "http");
        let portless = AgentSpec {
            ports: vec![],
            ..research()
        };
        assert!(spec.render(&portless).is_none());
    }

    #[test]
    fn ingress_without_tls_is_plain_http_on_web() {
        let spec = IngressSpec {
            host: "research.example.com".into(),
            path: "/api".into(),
            tls: false,
            class: Some("other".into()),
        };
        let j = serde_json::to_value(spec.render(&research()).unwrap()).unwrap();
        assert_eq!(
            j["metadata"]["annotations"],
            serde_json::json!({"traefik.ingress.kubernetes.io/router.entrypoints": "web"})
        );
        assert!(j["spec"].get("tls").is_none());
        assert_eq!(j["spec"]["ingressClassName"], "other");
        assert_eq!(j["spec"]["rules"][0]["http"]["paths"][0]["path"], "/api");
    }

    #[test]
    fn autoscaler_scales_the_deployment_on_utilisation() {
        let hpa = AutoscalingSpec {
            min_replicas: 2,
            max_replicas: 5,
            cpu_percent: Some(70),
            memory_percent: Some(80),
        }
        .render(&research());
        let j = serde_json::to_value(&hpa).unwrap();
        assert_eq!(j["metadata"]["name"], "research");
        assert_eq!(j["metadata"]["namespace"], "agents");
        assert_eq!(j["metadata"]["labels"]["selfhost.dev/agent"], "research");
        assert_eq!(
            j["spec"]["scaleTargetRef"],
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "research"})
        );
        assert_eq!(j["spec"]["minReplicas"], 2);
        assert_eq!(j["spec"]["maxReplicas"], 5);
        assert_eq!(
            j["spec"]["metrics"],
            serde_json::json!([
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}},
            ])
        );
        assert!(j["spec"].get("behavior").is_none(), "the server's default behaviour");

        let memory_only = AutoscalingSpec {
            min_replicas: 1,
            max_replicas: 3,
            cpu_percent: None,
            memory_percent: Some(60),
        }
        .render(&research());
        let j = serde_json::to_value(&memory_only).unwrap();
        let metrics = j["spec"]["metrics"].as_array().unwrap();
        assert_eq!(metrics.len(), 1);
        assert_eq!(metrics[0]["resource"]["name"], "memory");
    }

    #[test]
    fn disruption_budget_selects_exactly_the_deployments_pods() {
        let agent = research();
        let deployment = serde_json::to_value(agent.render().deployment).unwrap();
        let budget = DisruptionBudgetSpec {
            min_available: Some(PodCount::Pods(1)),
            max_unavailable: None,
        };
        let j = serde_json::to_value(budget.render(&agent)).unwrap();
        assert_eq!(j["metadata"]["name"], "research");
        assert_eq!(j["metadata"]["namespace"], "agents");
        assert_eq!(
            j["metadata"]["labels"][super::super::objects::MANAGED_BY],
            super::super::FIELD_MANAGER
        );
        assert_eq!(j["spec"]["selector"], deployment["spec"]["selector"]);
        assert_eq!(
            j["spec"]["selector"],
            serde_json::json!({"matchLabels": {"selfhost.dev/agent": "research"}})
        );
        assert_eq!(j["spec"]["minAvailable"], 1, "a number, not the string \"1\"");
        assert!(j["spec"].get("maxUnavailable").is_none());
        assert_eq!(j["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow");

        let percent = DisruptionBudgetSpec {
            min_available: None,
            max_unavailable: Some(PodCount::Percent(50)),
        };
        let j = serde_json::to_value(percent.render(&agent)).unwrap();
        assert_eq!(j["spec"]["maxUnavailable"], "50%");
        assert!(j["spec"].get("minAvailable").is_none());

        let mut with = agent.clone();
        with.disruption_budget = Some(budget);
        assert!(with.render().disruption_budget.is_some());
        assert!(agent.render().disruption_budget.is_none());
    }

    #[test]
    fn pod_counts_parse_and_scale_as_kubernetes_does() {
        for (s, want) in [
            ("1", PodCount::Pods(1)),
            ("0", PodCount::Pods(0)),
            ("50%", PodCount::Percent(50)),
            ("100%", PodCount::Percent(100)),
            ("0%", PodCount::Percent(0)),
        ] {
            assert_eq!(PodCount::parse(s), Ok(want), "{s}");
            assert_eq!(want.to_string(), s);
        }
        for bad in [
            "",
            "%",
            "-1",
            "+1",
            "1.5",
            " 1",
            "1 ",
            "50 %",
            "101%",
            "one",
            "99999999999",
        ] {
            assert!(PodCount::parse(bad).is_err(), "{bad:?} must be refused");
        }
        // Percentages round up (both fields), as the disruption controller does.
        assert_eq!(PodCount::Percent(50).of(3), 2);
        assert_eq!(PodCount::Percent(10).of(1), 1);
        assert_eq!(PodCount::Percent(0).of(5), 0);
        assert_eq!(PodCount::Pods(2).of(5), 2);

        let min = |c| DisruptionBudgetSpec {
            min_available: Some(c),
            max_unavailable: None,
        };
        let max = |c| DisruptionBudgetSpec {
            min_available: None,
            max_unavailable: Some(c),
        };
        assert_eq!(min(PodCount::Pods(1)).evictions_allowed(2), 1);
        assert_eq!(min(PodCount::Pods(2)).evictions_allowed(2), 0);
        assert_eq!(min(PodCount::Pods(1)).evictions_allowed(1), 0);
        assert_eq!(
            min(PodCount::Percent(50)).evictions_allowed(1),
            0,
            "50% of 1 rounds up to 1"
        );
        assert_eq!(min(PodCount::Percent(50)).evictions_allowed(4), 2);
        assert_eq!(max(PodCount::Pods(1)).evictions_allowed(3), 1);
        assert_eq!(max(PodCount::Pods(0)).evictions_allowed(3), 0);
        assert_eq!(
            max(PodCount::Percent(10)).evictions_allowed(1),
            1,
            "10% of 1 rounds up to 1"
        );
        assert_eq!(max(PodCount::Pods(5)).evictions_allowed(2), 2);
    }
}
