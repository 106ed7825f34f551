//! The cluster as the provider will be asked for it, validated once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use crate::network as validate;
use crate::network::{Cidr, Hostname};

/// A Kubernetes release, `vMAJOR.MINOR.PATCH` (no pre-releases: the
/// provider installs published releases only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// The major version (1 for every current release).
    pub major: u32,
    /// The minor version, e.g. 36 in `v1.36.3`.
    pub minor: u32,
    /// The patch release, e.g. 3 in `v1.36.3`.
    pub patch: u32,
}

impl Version {
    /// Parse `vMAJOR.MINOR.PATCH`, e.g. "v1.36.3".
    ///
    /// # Errors
    /// A message quoting `s` when it is not such a version.
    pub fn parse(s: &str) -> Result<Version, String> {
        let bad = || format!("{s:?} is not a Kubernetes release version like \"v1.36.3\"");
        let rest = s.strip_prefix('v').ok_or_else(bad)?;
        let mut parts = rest.split('.');
        let mut next = || -> Result<u32, String> {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        let v = Version {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// How the kubelet and containerd manage cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupDriver {
    /// systemd owns the cgroup tree (kubeadm's default; every systemd VPS).
    Systemd,
    /// The kubelet writes cgroupfs itself (hosts whose systemd does not own
    /// the tree, such as the test bed's containers).
    Cgroupfs,
}

impl CgroupDriver {
    /// Parse "systemd" or "cgroupfs".
    ///
    /// # Errors
    /// A message quoting `s` when it is neither.
    pub fn parse(s: &str) -> Result<CgroupDriver, String> {
        match s {
            "systemd" => Ok(CgroupDriver::Systemd),
            "cgroupfs" => Ok(CgroupDriver::Cgroupfs),
            _ => Err(format!("{s:?} is not a cgroup driver: use \"systemd\" or \"cgroupfs\"")),
        }
    }

    /// The name kubelet and containerd configurations use for this driver.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupDriver::Systemd => "systemd",
            CgroupDriver::Cgroupfs => "cgroupfs",
        }
    }
}

/// Node settings. The defaults fit a real VPS; the test bed's hosts need
/// other values for some (testbed/README.md lists which and why).
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSettings {
    /// containerd snapshotter (`overlayfs`; `native` where the root
    /// filesystem is itself an overlay).
    pub snapshotter: String,
    /// containerd CRI `restrict_oom_score_adj` (true where no process may
    /// lower an oom_score_adj).
    pub restrict_oom_score_adj: bool,
    /// `OOMScoreAdjust=` for containerd.service; `None` keeps the unit's.
    pub containerd_oom_score_adjust: Option<i32>,
    /// How the kubelet and containerd manage cgroups.
    pub cgroup_driver: CgroupDriver,
    /// kubelet `cgroupRoot`; `{node}` stands for the node's name. `None`:
    /// the kubelet's default (`/`).
    pub cgroup_root: Option<String>,
    /// More KubeletConfiguration fields, merged over ours.
    pub kubelet_extra: BTreeMap<String, serde_json::Value>,
    /// More KubeProxyConfiguration fields.
    pub kube_proxy_extra: BTreeMap<String, serde_json::Value>,
    /// kubeadm preflight checks whose errors are ignored.
    pub ignore_preflight_errors: BTreeSet<String>,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            snapshotter: "overlayfs".into(),
            restrict_oom_score_adj: false,
            containerd_oom_score_adjust: None,
            cgroup_driver: CgroupDriver::Systemd,
            cgroup_root: None,
            kubelet_extra: BTreeMap::new(),
            kube_proxy_extra: BTreeMap::new(),
            ignore_preflight_errors: BTreeSet::new(),
        }
    }
}

/// How images reach the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// Imported from the bundle's archives: never pulled.
    Bundle,
    /// Pulled from their registries when missing.
    Registry,
}

/// A validated kubeadm cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSpec {
    /// The Kubernetes release to install.
    pub version: Version,
    /// The API server address Terraform reaches: an IP or a DNS name.
    pub endpoint: String,
    /// The pod network (`podSubnet`); the CNI hands out pod addresses from it.
    pub pod_cidr: Cidr,
    /// The network Service cluster IPs come from (`serviceSubnet`).
    pub service_cidr: Cidr,
    /// Where the nodes get the control-plane and CNI images from.
    pub images: ImageSource,
    /// Node-level settings for containerd and the kubelet.
    pub settings: NodeSettings,
    /// The API server's encryption at rest and audit log.
    pub api_server: super::apiserver::ApiServerSecurity,
}

/// An invalid value and the attribute it came from.
pub type Invalid = (Vec<String>, String);

fn word_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl ClusterSpec {
    /// Validate every field, reporting all problems with their attribute
    /// paths (`settings` paths are under `node_settings`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        version: &str,
        endpoint: &str,
        pod_cidr: &str,
        service_cidr: &str,
        images: ImageSource,
        settings: NodeSettings,
    ) -> Result<ClusterSpec, Vec<Invalid>> {
        let mut bad: Vec<Invalid> = Vec::new();
        let mut at = |path: &[&str], r: Result<(), String>| {
            if let Err(m) = r {
                bad.push((path.iter().map(|s| s.to_string()).collect(), m));
            }
        };
        let v = Version::parse(version);
        at(&["version"], v.as_ref().map(|_| ()).map_err(Clone::clone));
        at(&["control_plane", "host"], endpoint_ok(endpoint));
        let pod = validate::cidr(pod_cidr);
        at(&["pod_cidr"], pod.as_ref().map(|_| ()).map_err(Clone::clone));
        let svc = validate::cidr(service_cidr);
        at(&["service_cidr"], svc.as_ref().map(|_| ()).map_err(Clone::clone));
        if let (Ok(p), Ok(s)) = (&pod, &svc)
            && (p.contains(s.addr) || s.contains(p.addr))
        {
            at(
                &["service_cidr"],
                Err(format!(
                    "{s} overlaps pod_cidr {p}: pods and Services need separate ranges"
                )),
            );
        }
        let s = &settings;
        at(
            &["node_settings", "containerd_snapshotter"],
            if word_ok(&s.snapshotter) {
                Ok(())
            } else {
                Err(format!("{:?} is not a containerd snapshotter name", s.snapshotter))
            },
        );
        if let Some(adj) = s.containerd_oom_score_adjust {
            at(
                &["node_settings", "containerd_oom_score_adjust"],
                if (-1000..=1000).contains(&adj) {
                    Ok(())
                } else {
                    Err(format!("{adj} is outside -1000..1000"))
                },
            );
        }
        if let Some(root) = &s.cgroup_root {
            at(&["node_settings", "kubelet_cgroup_root"], cgroup_root_ok(root));
        }
        for name in &s.ignore_preflight_errors {
            at(
                &["node_settings", "ignore_preflight_errors"],
                if word_ok(name) {
                    Ok(())
                } else {
                    Err(format!("{name:?} is not a kubeadm preflight check name"))
                },
            );
        }
        match (v, pod, svc) {
            (Ok(version), Ok(pod_cidr), Ok(service_cidr)) if bad.is_empty() => Ok(ClusterSpec {
                version,
                endpoint: endpoint.to_owned(),
                pod_cidr,
                service_cidr,
                images,
                settings,
                api_server: Default::default(),
            }),
            _ => Err(bad),
        }
    }

    /// `host:6443`, bracketed for IPv6.
    pub fn control_plane_endpoint(&self) -> String {
        api_endpoint(&self.endpoint)
    }

    /// The kubelet `cgroupRoot` for `node`, if one is set.
    pub fn cgroup_root_for(&self, node: &Hostname) -> Option<String> {
        self.settings
            .cgroup_root
            .as_ref()
            .map(|r| r.replace("{node}", node.as_str()))
    }
}

/// The API server's `host:6443` for the control-plane address `host`
/// (an IPv6 address in brackets).
pub fn api_endpoint(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(a)) => format!("[{a}]:6443"),
        _ => format!("{host}:6443"),
    }
}

/// The control plane's address: where to connect (`network::address`, the
/// rule of every host address) and a name in the API server's certificate
/// (kubeadm's certSANs, k3s's tls-san), where a DNS name is letters, digits
/// and '-' only.
fn endpoint_ok(s: &str) -> Result<(), String> {
    crate::network::address(s)?;
    if s.parse::<IpAddr>().is_err() && (s.contains('_') || s.ends_with('.')) {
        return Err(format!(
            "{s:?} is also the API server certificate's name, where a DNS name has neither '_' nor a trailing dot"
        ));
    }
    Ok(())
}

fn cgroup_root_ok(s: &str) -> Result<(), String> {
    let ok = s.starts_with('/')
        && s.len() <= 255
        && !s.contains("..")
        && s.replace("{node}", "n")
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a cgroup path: an absolute path of letters, digits, '-', '_', '.', with {{node}} for the node's name"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(settings: NodeSettings) -> Result<ClusterSpec, Vec<Invalid>> {
        ClusterSpec::new(
            "v1.36.3",
            "203.0.113.10",
            "10.244.0.0/16",
            "10.96.0.0/12",
            ImageSource::Bundle,
            settings,
        )
    }

    #[test]
    fn versions_are_releases_only() {
        assert_eq!(Version::parse("v1.36.3").map(|v| v.to_string()), Ok("v1.36.3".into()));
        for bad in [
            "1.36.3",
            "v1.36",
            "v1.36.3-rc.1",
            "v1.36.3.1",
            "v1..3",
            "v1.36.3; reboot",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let settings = NodeSettings {
            snapshotter: "overlay fs".into(),
            cgroup_root: Some("relative/{node}".into()),
            ignore_preflight_errors: ["Swap; rm -rf /".to_string()].into(),
            containerd_oom_score_adjust: Some(-5000),
            ..NodeSettings::default()
        };
        let errs = ClusterSpec::new(
            "latest",
            "bad host!",
            "10.244.0.0/16",
            "10.244.0.0/24",
            ImageSource::Bundle,
            settings,
        )
        .expect_err("invalid");
        let paths: Vec<String> = errs.iter().map(|(p, _)| p.join(".")).collect();
        assert_eq!(
            paths,
            [
                "version",
                "control_plane.host",
                "service_cidr",
                "node_settings.containerd_snapshotter",
                "node_settings.containerd_oom_score_adjust",
                "node_settings.kubelet_cgroup_root",
                "node_settings.ignore_preflight_errors",
            ]
        );
    }

    #[test]
    fn endpoints_and_cgroup_roots() {
        let s = spec(NodeSettings {
            cgroup_root: Some("/{node}".into()),
            ..NodeSettings::default()
        })
        .expect("valid");
        assert_eq!(s.control_plane_endpoint(), "203.0.113.10:6443");
        let node = validate::hostname("tb-k8s1").expect("name");
        assert_eq!(s.cgroup_root_for(&node).as_deref(), Some("/tb-k8s1"));
        let v6 = ClusterSpec::new(
            "v1.36.3",
            "2001:db8::1",
            "10.244.0.0/16",
            "10.96.0.0/12",
            ImageSource::Registry,
            NodeSettings::default(),
        )
        .expect("valid");
        assert_eq!(v6.control_plane_endpoint(), "[2001:db8::1]:6443");
        for bad in ["api_1.example.com", "api.example.com.", "api.example.com;id"] {
            let errs = ClusterSpec::new(
                "v1.36.3",
                bad,
                "10.244.0.0/16",
                "10.96.0.0/12",
                ImageSource::Registry,
                NodeSettings::default(),
            )
            .expect_err(bad);
            assert_eq!(errs[0].0, ["control_plane", "host"], "{bad}: {errs:?}");
        }
        assert!(spec(NodeSettings::default()).is_ok());
    }
}
