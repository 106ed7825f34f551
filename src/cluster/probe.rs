//! What one exec tells about a node, for both distributions: the probe's
//! `key=value` lines and their parser. The scripts that print them live
//! with their distribution ([`super::node`], [`super::k3s`]); both use
//! [`readyz_probe`], and neither depends on the other.

use super::apiserver::ObservedSecurity;
use super::facts::HostFacts;
use super::spec::Version;

/// What a refresh learns about a node in one exec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    /// The node's hostname as it reports it.
    pub hostname: String,
    /// Whether containerd runs: containerd.service, or under k3s its k3s unit.
    pub containerd_active: bool,
    /// Whether the kubelet runs: kubelet.service, or under k3s its k3s unit.
    pub kubelet_active: bool,
    /// kubeadm joined (or initialised) this node: it has kubelet.conf.
    pub joined: bool,
    /// The control plane's admin kubeconfig exists (kubeadm init ran).
    pub initialized: bool,
    /// The Kubernetes version installed (`kubeadm version -o short`, or
    /// k3s's without its `+k3sN`), empty when none is.
    pub installed_version: String,
    /// The k3s unit the node runs (`k3s`, `k3s-agent`); empty for kubeadm.
    pub k3s_unit: String,
    /// The API server's `/readyz` answered "ok" (control plane only).
    pub api_ready: bool,
    /// What the host is ([`super::facts::SCRIPT`], part of every probe).
    pub facts: HostFacts,
    /// The API server's encryption and audit settings (control plane).
    pub security: ObservedSecurity,
}

/// The probe's `readyz=` line, asked with `kubectl` (a command prefix). A
/// busy API server may miss one answer: three tries before "not ready".
pub fn readyz_probe(kubectl: &str) -> String {
    format!(
        r#"  for i in 1 2 3; do
    r=$({kubectl} --request-timeout=5s get --raw /readyz 2>/dev/null || true)
    [ "$r" = ok ] && break
    sleep 2
  done
  echo "readyz=$r"
"#
    )
}

/// Read a probe script's output ([`super::node::probe_script`],
/// [`super::k3s::probe_script`]).
pub fn parse_probe(stdout: &str) -> Probe {
    let mut p = Probe {
        facts: HostFacts::parse(stdout),
        ..Probe::default()
    };
    for line in stdout.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim();
        match k {
            "hostname" => p.hostname = v.to_owned(),
            "containerd" => p.containerd_active = v == "active",
            "kubelet" => p.kubelet_active = v == "active",
            "joined" => p.joined = v == "yes",
            "initialized" => p.initialized = v == "yes",
            "readyz" => p.api_ready = v == "ok",
            "kubeadm" => p.installed_version = v.to_owned(),
            "k3s" => p.installed_version = k3s_kubernetes_version(v).unwrap_or_default(),
            "service" => p.k3s_unit = v.to_owned(),
            _ => p.security.read_line(k, v),
        }
    }
    p
}

/// The Kubernetes version of `k3s --version`'s first line
/// (`k3s version v1.36.3+k3s1 (abcdef12)` → `v1.36.3`).
pub fn k3s_kubernetes_version(line: &str) -> Option<String> {
    let v = line.split_whitespace().nth(2)?;
    let (k8s, _) = v.split_once("+k3s")?;
    Version::parse(k8s).ok().map(|v| v.to_string())
}
