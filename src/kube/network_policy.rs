//! A `networking.k8s.io/v1` NetworkPolicy from the vocabulary of agents:
//! which agents it isolates, default deny per direction, flows allowed
//! from/to agents, namespaces and CIDRs on ports, and DNS kept open. Pure:
//! no I/O.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::agent::AGENT_LABEL;
use super::objects::ownership_labels;
use crate::network::Cidr;
use crate::network::{cidr, port_range};

/// The label every namespace carries with its own name (set by the API server).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The annotation holding the last applied configuration (import reads it).
pub use super::LAST_APPLIED;

/// One allowed port or port range of one protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// "TCP", "UDP" or "SCTP".
    pub protocol: String,
    /// The port, or the first port of a range.
    pub port: u16,
    /// Last port of a range.
    pub end_port: Option<u16>,
}

/// Parse "8080/tcp", "53/udp", "8000-8100/tcp" or "443" (TCP).
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn parse_port(s: &str) -> Result<PortSpec, String> {
    let (ports, proto) = match s.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (s, "tcp"),
    };
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "tcp" => "TCP",
        "udp" => "UDP",
        "sctp" => "SCTP",
        other => {
            return Err(format!(
                "{s:?}: protocol {other:?} is not one of tcp, udp, sctp (write e.g. \"8080/tcp\" or \"53/udp\")"
            ));
        }
    };
    let range = port_range(ports)?;
    Ok(PortSpec {
        protocol: protocol.to_owned(),
        port: range.low,
        end_port: (range.high != range.low).then_some(range.high),
    })
}

/// Check a port as [`parse_port`] does (for validators).
///
/// # Errors
/// As [`parse_port`].
pub fn check_port(s: &str) -> Result<(), String> {
    parse_port(s).map(|_| ())
}

/// Check an IPv4/IPv6 CIDR.
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn check_cidr(s: &str) -> Result<(), String> {
    cidr(s).map(|_| ())
}

/// Allowed peers and ports of one direction's rule. Peers add up (any of
/// them may talk); no peer at all means any peer; no port means any port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSpec {
    /// Agents (by name) of the policy's namespace.
    pub agents: Vec<String>,
    /// Whole namespaces (by name).
    pub namespaces: Vec<String>,
    /// IP networks (CIDRs) allowed, typically addresses outside the cluster.
    pub cidrs: Vec<String>,
    /// Networks inside `cidrs` that are not allowed.
    pub except: Vec<String>,
    /// Allowed ports, as written: "8080/tcp", "53/udp", "8000-8100/tcp" or "443".
    pub ports: Vec<String>,
}

/// A policy as validated configuration.
#[derive(Clone, Debug, Default)]
pub struct PolicySpec {
    /// The namespace the NetworkPolicy lives in, with the agents it isolates.
    pub namespace: String,
    /// The NetworkPolicy's name.
    pub name: String,
    /// Agents it applies to, by name; with `agent_labels` empty too, every
    /// pod of the namespace.
    pub agents: Vec<String>,
    /// Pods it applies to, by label, in addition to `agents`.
    pub agent_labels: BTreeMap<String, String>,
    /// Isolate ingress even without `ingress` rules (then nothing may reach the pods).
    pub deny_ingress: bool,
    /// Isolate egress even without `egress` rules (then nothing may leave the pods).
    pub deny_egress: bool,
    /// Egress to the cluster DNS (kube-dns in kube-system, port 53) stays
    /// open whenever egress is restricted.
    pub allow_dns: bool,
    /// Rules for traffic allowed to reach the pods.
    pub ingress: Vec<RuleSpec>,
    /// Rules for traffic allowed to leave the pods.
    pub egress: Vec<RuleSpec>,
    /// The value of the [`LAST_APPLIED`] annotation.
    pub last_applied: Option<String>,
}

/// Which network of `cidrs` each exception belongs to (Kubernetes wants
/// each `except` strictly inside its `cidr`).
///
/// # Errors
/// Which exception is not strictly inside any of the networks, or which
/// value is not a CIDR.
pub fn assign_exceptions(cidrs: &[String], except: &[String]) -> Result<Vec<(String, Vec<String>)>, String> {
    let nets = cidrs
        .iter()
        .map(|c| cidr(c).map(|n| (c.clone(), n)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out: Vec<(String, Vec<String>)> = nets.iter().map(|(c, _)| (c.clone(), Vec::new())).collect();
    for e in except {
        let inner = cidr(e)?;
        let Some(i) = nets.iter().position(|(_, n)| strictly_inside(&inner, n)) else {
            return Err(format!(
                "except {e:?} is not inside any of the CIDRs {cidrs:?} (each exception must be a smaller network within one of them)"
            ));
        };
        out[i].1.push(e.clone());
    }
    Ok(out)
}

fn strictly_inside(inner: &Cidr, outer: &Cidr) -> bool {
    if inner.prefix <= outer.prefix {
        return false;
    }
    match (inner.addr, outer.addr) {
        (IpAddr::V4(i), IpAddr::V4(o)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(outer.prefix)).unwrap_or(0);
            u32::from(i) & mask == u32::from(o)
        }
        (IpAddr::V6(i), IpAddr::V6(o)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(outer.prefix)).unwrap_or(0);
            u128::from(i) & mask == u128::from(o)
        }
        _ => false,
    }
}

fn agents_selector(names: &[String]) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: AGENT_LABEL.to_owned(),
            operator: "In".to_owned(),
            values: Some(names.to_vec()),
        }]),
        ..LabelSelector::default()
    }
}

impl RuleSpec {
    fn peers(&self) -> Result<Option<Vec<NetworkPolicyPeer>>, String> {
        let mut peers = Vec::new();
        if !self.agents.is_empty() {
            peers.push(NetworkPolicyPeer {
                pod_selector: Some(agents_selector(&self.agents)),
                ..NetworkPolicyPeer::default()
            });
        }
        if !self.namespaces.is_empty() {
            peers.push(NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector {
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: NAMESPACE_NAME_LABEL.to_owned(),
                        operator: "In".to_owned(),
                        values: Some(self.namespaces.clone()),
                    }]),
                    ..LabelSelector::default()
                }),
                ..NetworkPolicyPeer::default()
            });
        }
        for (c, except) in assign_exceptions(&self.cidrs, &self.except)? {
            peers.push(NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: c,
                    except: (!except.is_empty()).then_some(except),
                }),
                ..NetworkPolicyPeer::default()
            });
        }
        Ok((!peers.is_empty()).then_some(peers))
    }

    fn ports(&self) -> Result<Option<Vec<NetworkPolicyPort>>, String> {
        let ports = self
            .ports
            .iter()
            .map(|p| parse_port(p).map(|p| render_port(&p)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((!ports.is_empty()).then_some(ports))
    }
}

fn render_port(p: &PortSpec) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(p.protocol.clone()),
        port: Some(IntOrString::Int(i32::from(p.port))),
        end_port: p.end_port.map(i32::from),
    }
}

/// The egress rule that keeps the cluster DNS reachable.
fn dns_rule() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    NAMESPACE_NAME_LABEL.to_owned(),
                    "kube-system".to_owned(),
                )])),
                ..LabelSelector::default()
            }),
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())])),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(
            ["UDP", "TCP"]
                .into_iter()
                .map(|protocol| {
                    render_port(&PortSpec {
                        protocol: protocol.to_owned(),
                        port: 53,
                        end_port: None,
                    })
                })
                .collect(),
        ),
    }
}

impl PolicySpec {
    /// The pods the policy applies to.
    fn pod_selector(&self) -> LabelSelector {
        let mut s = LabelSelector::default();
        if !self.agents.is_empty() {
            s = agents_selector(&self.agents);
        }
        if !self.agent_labels.is_empty() {
            s.match_labels = Some(self.agent_labels.clone());
        }
        s
    }

    /// The NetworkPolicy. A direction is isolated when it is denied by
    /// default or has allow rules (as Kubernetes defines it: once isolated,
    /// only the listed flows pass).
    ///
    /// # Errors
    /// A bad port, CIDR or exception (validation catches these at plan time).
    pub fn render(&self) -> Result<NetworkPolicy, String> {
        let isolate_ingress = self.deny_ingress || !self.ingress.is_empty();
        let isolate_egress = self.deny_egress || !self.egress.is_empty();
        let mut policy_types = Vec::new();
        if isolate_ingress {
            policy_types.push("Ingress".to_owned());
        }
        if isolate_egress {
            policy_types.push("Egress".to_owned());
        }
        let ingress = self
            .ingress
            .iter()
            .map(|r| {
                Ok(NetworkPolicyIngressRule {
                    from: r.peers()?,
                    ports: r.ports()?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut egress = self
            .egress
            .iter()
            .map(|r| {
                Ok(NetworkPolicyEgressRule {
                    to: r.peers()?,
                    ports: r.ports()?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if isolate_egress && self.allow_dns {
            egress.push(dns_rule());
        }
        Ok(NetworkPolicy {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(ownership_labels("network_policy")),
                annotations: self
                    .last_applied
                    .as_ref()
                    .map(|a| BTreeMap::from([(LAST_APPLIED.to_owned(), a.clone())])),
                ..ObjectMeta::default()
            },
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(self.pod_selector()),
                policy_types: (!policy_types.is_empty()).then_some(policy_types),
                ingress: isolate_ingress.then_some(ingress),
                egress: isolate_egress.then_some(egress),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports() {
        assert_eq!(
            parse_port("8080/tcp"),
            Ok(PortSpec {
                protocol: "TCP".into(),
                port: 8080,
                end_port: None
            })
        );
        assert_eq!(parse_port("53/UDP").map(|p| p.protocol), Ok("UDP".into()));
        assert_eq!(parse_port("443").map(|p| p.protocol), Ok("TCP".into()));
        assert_eq!(parse_port("8000-8100/tcp").map(|p| p.end_port), Ok(Some(8100)));
        for bad in ["", "x/tcp", "80/icmp", "0/tcp", "70000", "90-80/tcp"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exceptions_go_to_their_network() {
        let cidrs = vec!["0.0.0.0/0".to_owned(), "fd00::/8".to_owned()];
        let got = assign_exceptions(&cidrs, &["10.0.0.0/8".into(), "fd00:1::/32".into()]).unwrap();
        assert_eq!(got[0].1, vec!["10.0.0.0/8".to_owned()]);
        assert_eq!(got[1].1, vec!["fd00:1::/32".to_owned()]);
        assert!(assign_exceptions(&["10.0.0.0/8".into()], &["10.0.0.0/8".into()]).is_err());
        assert!(assign_exceptions(&["10.0.0.0/8".into()], &["192.168.0.0/16".into()]).is_err());
    }

    #[test]
    fn canonical_policy() {
        let spec = PolicySpec {
            namespace: "agents".into(),
            name: "research-isolation".into(),
            agents: vec!["research".into()],
            deny_ingress: true,
            deny_egress: true,
            allow_dns: true,
            ingress: vec![RuleSpec {
                agents: vec!["gateway".into()],
                ports: vec!["8080/tcp".into()],
                ..RuleSpec::default()
            }],
            egress: vec![RuleSpec {
                cidrs: vec!["0.0.0.0/0".into()],
                except: vec!["10.0.0.0/8".into()],
                ports: vec!["443/tcp".into()],
                ..RuleSpec::default()
            }],
            ..PolicySpec::default()
        };
        let p = serde_json::to_value(spec.render().unwrap()).unwrap();
        assert_eq!(p["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(
            p["spec"]["podSelector"]["matchExpressions"][0],
            json!({"key": AGENT_LABEL, "operator": "In", "values": ["research"]})
        );
        assert_eq!(
            p["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"],
            json!(["gateway"])
        );
        assert_eq!(
            p["spec"]["ingress"][0]["ports"][0],
            json!({"protocol": "TCP", "port": 8080})
        );
        assert_eq!(
            p["spec"]["egress"][0]["to"][0]["ipBlock"],
            json!({"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]})
        );
        assert_eq!(p["spec"]["egress"][1]["ports"][0]["port"], 53, "DNS kept open");
    }

    #[test]
    fn deny_without_rules_and_dns_optional() {
        let spec = PolicySpec {
            namespace: "a".into(),
            name: "deny".into(),
            deny_ingress: true,
            deny_egress: true,
            allow_dns: false,
            ..PolicySpec::default()
        };
        let p = serde_json::to_value(spec.render().unwrap()).unwrap();
        assert_eq!(p["spec"]["podSelector"], json!({}), "every pod");
        assert_eq!(p["spec"]["ingress"], json!([]));
        assert_eq!(p["spec"]["egress"], json!([]), "no DNS either");
        let open = PolicySpec {
            deny_egress: false,
            allow_dns: true,
            ..spec
        };
        let p = serde_json::to_value(open.render().unwrap()).unwrap();
        assert_eq!(p["spec"]["policyTypes"], json!(["Ingress"]));
        assert!(
            p["spec"].get("egress").is_none(),
            "egress not restricted: no DNS rule needed"
        );
    }
}
