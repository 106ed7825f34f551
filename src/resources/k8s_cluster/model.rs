//! The typed model of `selfhost_k8s_cluster`: configuration → the cluster
//! layer's [`ClusterSpec`], and the stored state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::schema::{DEFAULT_POD_CIDR, DEFAULT_SERVICE_CIDR};
use crate::cluster::apiserver::{ApiServerSecurity, ObservedSecurity};
use crate::cluster::facts::{self, HostFacts};
use crate::cluster::spec::{ImageSource, Invalid};
use crate::cluster::{CgroupDriver, ClusterSpec, NodeSettings};
use crate::framework::AttributePath;
use crate::resources::vps_host::SshObject;

/// `install {}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct InstallModel {
    pub source: Option<String>,
    pub bundle: Option<String>,
    pub base_url: Option<String>,
    pub containerd_version: Option<String>,
    pub containerd_url: Option<String>,
    pub runc_version: Option<String>,
    pub runc_url: Option<String>,
    pub cni_plugins_version: Option<String>,
    pub cni_plugins_url: Option<String>,
    pub k3s_version: Option<String>,
    pub k3s_url: Option<String>,
    pub image_archives: Option<String>,
}

/// Which distribution bootstraps the cluster (`distribution`). Parsed once
/// when the plan or state is decoded: a value this provider does not know
/// fails the decode, it never falls back to kubeadm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distro {
    Kubeadm,
    K3s,
}

impl Distro {
    /// The attribute's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Distro::Kubeadm => "kubeadm",
            Distro::K3s => "k3s",
        }
    }
}

/// The pod network (`cni`), parsed once like [`Distro`]. Calico is not
/// offered: its manifest could not be pinned to a checksum nor its images
/// obtained where this provider is built and tested, and a value that is
/// always refused is noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cni {
    Flannel,
    None,
}

impl Cni {
    /// The attribute's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Cni::Flannel => "flannel",
            Cni::None => "none",
        }
    }
}

/// `node_settings {}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeSettingsModel {
    pub containerd_snapshotter: Option<String>,
    pub containerd_restrict_oom_score_adj: Option<bool>,
    pub containerd_oom_score_adjust: Option<i64>,
    pub kubelet_cgroup_driver: Option<String>,
    pub kubelet_cgroup_root: Option<String>,
    pub kubelet_extra_config: Option<String>,
    pub kube_proxy_extra_config: Option<String>,
    pub ignore_preflight_errors: Option<BTreeSet<String>>,
}

/// `ingress { acme {} }`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AcmeModel {
    pub email: String,
    pub server: Option<String>,
    pub staging: Option<bool>,
    pub ca_certificate: Option<String>,
}

/// `ingress {}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct IngressModel {
    pub node: Option<String>,
    pub acme: Option<AcmeModel>,
}

/// One `namespace {}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NamespaceModel {
    pub name: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub quota: Option<BTreeMap<String, String>>,
    pub default_request: Option<BTreeMap<String, String>>,
    pub default_limit: Option<BTreeMap<String, String>>,
    /// This namespace's Pod Security level, over the cluster's `pod_security`.
    #[serde(default)]
    pub pod_security: Option<String>,
    #[serde(default)]
    pub deployer: Option<DeployerModel>,
}

/// `namespace { deployer {} }`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DeployerModel {
    pub token_duration: Option<String>,
    pub long_lived_token: Option<bool>,
}

/// One element of `nodes`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeModel {
    pub name: String,
    pub host: String,
    pub role: String,
    pub ready: bool,
    pub version: String,
    pub status: String,
}

/// Node status that apply repairs (anything but these two is drift).
pub const STATUS_OK: &str = "ok";

impl NodeModel {
    /// Whether apply has something to repair on this node.
    pub fn needs_repair(&self) -> bool {
        self.status != STATUS_OK
    }
}

/// The configuration's (and the state's) user-set attributes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClusterConfig {
    pub distribution: Option<Distro>,
    pub version: String,
    pub control_plane: SshObject,
    pub workers: Option<Vec<SshObject>>,
    pub pod_cidr: Option<String>,
    pub service_cidr: Option<String>,
    pub cni: Option<Cni>,
    pub install: Option<InstallModel>,
    pub node_settings: Option<NodeSettingsModel>,
    pub namespace: Option<Vec<NamespaceModel>>,
    #[serde(default)]
    pub network_policy_enforcement: Option<bool>,
    #[serde(default)]
    pub metrics_server: Option<bool>,
    #[serde(default)]
    pub ingress: Option<IngressModel>,
    #[serde(default)]
    pub secrets_encryption: Option<bool>,
    #[serde(default)]
    pub secrets_encryption_key_version: Option<i64>,
    #[serde(default)]
    pub audit_log: Option<bool>,
    #[serde(default)]
    pub pod_security: Option<String>,
}

/// What the cluster records of its configuration (kube-system ConfigMap
/// [`super::api::RECORD_NAME`]) for `terraform import`: the settings and
/// the `timeouts` as configured. No secret.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub config: ClusterConfig,
    pub timeouts: Option<BTreeMap<String, Option<String>>>,
}

/// The computed attributes (the state is these plus [`ClusterConfig`] and
/// the raw `timeouts`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Outputs {
    pub id: String,
    pub kubeconfig: String,
    pub api_server_url: String,
    pub ca_certificate: String,
    pub nodes: Vec<NodeModel>,
    pub running_version: String,
    /// Keyed by node host; `None` in a state an earlier version wrote.
    #[serde(default)]
    pub effective_node_settings: Option<BTreeMap<String, EffectiveSettings>>,
    /// Namespace → its Pod Security labels as found (null: no namespace).
    #[serde(default)]
    pub pod_security_labels: Option<BTreeMap<String, BTreeMap<String, String>>>,
    /// Namespace → its deployer objects as found ([`crate::kube::deployer::summary`]).
    #[serde(default)]
    pub deployer_rbac: Option<BTreeMap<String, Vec<String>>>,
    /// Namespace → its deployer's kubeconfig (sensitive).
    #[serde(default)]
    pub deployer_kubeconfigs: Option<BTreeMap<String, String>>,
    /// Namespace → when its deployer's short-lived token expires (RFC 3339).
    #[serde(default)]
    pub deployer_token_expiry: Option<BTreeMap<String, String>>,
}

/// One node's entry of `effective_node_settings`: the profile and facts
/// that chose the settings, and each setting as applied.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EffectiveSettings {
    pub profile: String,
    pub facts: BTreeMap<String, String>,
    pub containerd_snapshotter: String,
    pub containerd_restrict_oom_score_adj: Option<bool>,
    pub containerd_oom_score_adjust: Option<i64>,
    pub kubelet_cgroup_driver: String,
    pub kubelet_cgroup_root: Option<String>,
    pub kubelet_extra_config: Option<String>,
    pub kube_proxy_extra_config: Option<String>,
    pub ignore_preflight_errors: Option<BTreeSet<String>>,
}

impl EffectiveSettings {
    /// The entry of a node whose host has `facts` and gets `s`; with k3s
    /// the settings k3s does not take are null.
    pub fn new(facts: &HostFacts, s: &NodeSettings, distro: Distro) -> EffectiveSettings {
        let kubeadm = distro == Distro::Kubeadm;
        EffectiveSettings {
            profile: facts.profile(),
            facts: facts.summary(),
            containerd_snapshotter: s.snapshotter.clone(),
            containerd_restrict_oom_score_adj: kubeadm.then_some(s.restrict_oom_score_adj),
            containerd_oom_score_adjust: s.containerd_oom_score_adjust.filter(|_| kubeadm).map(i64::from),
            kubelet_cgroup_driver: s.cgroup_driver.as_str().to_owned(),
            kubelet_cgroup_root: s.cgroup_root.clone(),
            kubelet_extra_config: facts::json_text(&s.kubelet_extra),
            kube_proxy_extra_config: facts::json_text(&s.kube_proxy_extra).filter(|_| kubeadm),
            ignore_preflight_errors: (kubeadm && !s.ignore_preflight_errors.is_empty())
                .then(|| s.ignore_preflight_errors.clone()),
        }
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        format!(
            "{}: snapshotter {}, cgroup driver {}, cgroup root {}, restrict_oom_score_adj {}, kubelet extra {}, kube-proxy extra {}, ignored preflight checks {}",
            self.profile,
            self.containerd_snapshotter,
            self.kubelet_cgroup_driver,
            self.kubelet_cgroup_root.as_deref().unwrap_or("(default)"),
            self.containerd_restrict_oom_score_adj
                .map_or("(k3s)".to_owned(), |b| b.to_string()),
            self.kubelet_extra_config.as_deref().unwrap_or("{}"),
            self.kube_proxy_extra_config.as_deref().unwrap_or("{}"),
            self.ignore_preflight_errors.as_ref().map_or("none".to_owned(), |s| s
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(",")),
        )
    }
}

impl ClusterConfig {
    pub fn workers(&self) -> &[SshObject] {
        self.workers.as_deref().unwrap_or_default()
    }

    pub fn namespaces(&self) -> &[NamespaceModel] {
        self.namespace.as_deref().unwrap_or_default()
    }

    pub fn install(&self) -> InstallModel {
        self.install.clone().unwrap_or_default()
    }

    /// `distribution`, or its default.
    pub fn distro(&self) -> Distro {
        self.distribution.unwrap_or(Distro::Kubeadm)
    }

    /// `cni`, or its default.
    pub fn cni(&self) -> Cni {
        self.cni.unwrap_or(Cni::Flannel)
    }

    /// The k3s release to install: `install.k3s_version`, or `<version>+k3s1`.
    pub fn k3s_release(&self) -> String {
        self.install()
            .k3s_version
            .unwrap_or_else(|| format!("{}+k3s1", self.version))
    }

    pub fn uses_bundle(&self) -> bool {
        self.install().source.as_deref() == Some("bundle")
    }

    /// The validated cluster, or every problem with its attribute path.
    /// Its settings are the configured ones over the VPS defaults; each
    /// node gets [`ClusterConfig::node_spec`].
    pub fn to_spec(&self) -> Result<ClusterSpec, Vec<(AttributePath, String)>> {
        let mut bad: Vec<(AttributePath, String)> = Vec::new();
        let settings = settings_over(self.node_settings.as_ref(), NodeSettings::default(), &mut bad);
        let images = if self.uses_bundle() {
            ImageSource::Bundle
        } else {
            ImageSource::Registry
        };
        let spec = ClusterSpec::new(
            &self.version,
            &self.control_plane.host,
            self.pod_cidr.as_deref().unwrap_or(DEFAULT_POD_CIDR),
            self.service_cidr.as_deref().unwrap_or(DEFAULT_SERVICE_CIDR),
            images,
            settings,
        );
        match spec {
            Ok(mut spec) if bad.is_empty() => {
                spec.api_server = self.api_server_security();
                Ok(spec)
            }
            Ok(_) => Err(bad),
            Err(invalid) => {
                bad.extend(invalid.into_iter().map(|(steps, m): Invalid| at_setting(&steps, m)));
                Err(bad)
            }
        }
    }

    /// Encryption at rest and the audit log as configured (with the
    /// schema's defaults: both on, key version 1).
    pub fn api_server_security(&self) -> ApiServerSecurity {
        let version = self
            .secrets_encryption_key_version
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(1);
        ApiServerSecurity {
            encryption: self.secrets_encryption.unwrap_or(true).then_some(version),
            audit_log: self.audit_log.unwrap_or(true),
        }
    }

    /// Record in `self` (a state) the API server's settings as `seen` on
    /// the control plane: what the plan compares with the configuration.
    pub fn observe_api_server(&mut self, seen: &ObservedSecurity) {
        self.secrets_encryption = Some(seen.encryption_on());
        if let Some(v) = seen.key_version().filter(|_| seen.encryption_on()) {
            self.secrets_encryption_key_version = Some(i64::from(v));
        }
        self.audit_log = Some(seen.audit_on());
    }

    /// The settings of a node whose host has `facts`: the configured ones
    /// over the detected ones, attribute by attribute.
    pub fn node_settings_for(&self, facts: &HostFacts) -> NodeSettings {
        node_settings_for(self.node_settings.as_ref(), facts)
    }

    /// `spec` (from [`ClusterConfig::to_spec`]) with the settings of a node
    /// whose host has `facts`.
    pub fn node_spec(&self, spec: &ClusterSpec, facts: &HostFacts) -> ClusterSpec {
        ClusterSpec {
            settings: self.node_settings_for(facts),
            ..spec.clone()
        }
    }

    /// The `effective_node_settings` entry of a node whose host has `facts`.
    pub fn effective(&self, facts: &HostFacts) -> EffectiveSettings {
        EffectiveSettings::new(facts, &self.node_settings_for(facts), self.distro())
    }
}

/// The settings of a node whose host has `facts`, given `node_settings`
/// (validated already: a value that does not parse keeps the detected one).
pub fn node_settings_for(model: Option<&NodeSettingsModel>, facts: &HostFacts) -> NodeSettings {
    settings_over(model, facts.node_settings(), &mut Vec::new())
}

/// `model`'s set attributes over `base`: each set attribute replaces its
/// value, the JSON objects are merged key by key.
fn settings_over(
    model: Option<&NodeSettingsModel>,
    base: NodeSettings,
    bad: &mut Vec<(AttributePath, String)>,
) -> NodeSettings {
    let s = model.cloned().unwrap_or_default();
    let at = |attr: &str| AttributePath::root("node_settings").attr(attr);
    let json_object = |text: &Option<String>,
                       attr: &str,
                       mut into: BTreeMap<String, serde_json::Value>,
                       bad: &mut Vec<(AttributePath, String)>| {
        match text.as_deref().map(serde_json::from_str::<serde_json::Value>) {
            None => {}
            Some(Ok(serde_json::Value::Object(m))) => into.extend(m),
            Some(_) => bad.push((at(attr), "must be a JSON object".to_owned())),
        }
        into
    };
    let cgroup_driver = match s.kubelet_cgroup_driver.as_deref().map(CgroupDriver::parse) {
        None => base.cgroup_driver,
        Some(Ok(d)) => d,
        Some(Err(m)) => {
            bad.push((at("kubelet_cgroup_driver"), m));
            base.cgroup_driver
        }
    };
    let oom = match s.containerd_oom_score_adjust.map(i32::try_from) {
        None => base.containerd_oom_score_adjust,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            bad.push((at("containerd_oom_score_adjust"), "is outside -1000..1000".to_owned()));
            base.containerd_oom_score_adjust
        }
    };
    let kubelet_extra = json_object(&s.kubelet_extra_config, "kubelet_extra_config", base.kubelet_extra, bad);
    let kube_proxy_extra = json_object(
        &s.kube_proxy_extra_config,
        "kube_proxy_extra_config",
        base.kube_proxy_extra,
        bad,
    );
    NodeSettings {
        snapshotter: s.containerd_snapshotter.clone().unwrap_or(base.snapshotter),
        restrict_oom_score_adj: s
            .containerd_restrict_oom_score_adj
            .unwrap_or(base.restrict_oom_score_adj),
        containerd_oom_score_adjust: oom,
        cgroup_driver,
        cgroup_root: s.kubelet_cgroup_root.clone().or(base.cgroup_root),
        kubelet_extra,
        kube_proxy_extra,
        ignore_preflight_errors: s
            .ignore_preflight_errors
            .clone()
            .unwrap_or(base.ignore_preflight_errors),
    }
}

/// `["node_settings", "x"]` → `node_settings.x`.
/// The attribute path of a cluster setting, and its message. A field of
/// the `control_plane` object is reported at the attribute (Terraform
/// cannot point inside an object expression) and named in the message.
fn at_setting(steps: &[String], message: String) -> (AttributePath, String) {
    match steps {
        [object, field] if object == "control_plane" => {
            (AttributePath::root(object), format!("control_plane.{field}: {message}"))
        }
        _ => (path_of(steps), message),
    }
}

fn path_of(steps: &[String]) -> AttributePath {
    let mut it = steps.iter();
    let Some(first) = it.next() else {
        return AttributePath::default();
    };
    it.fold(AttributePath::root(first), |p, s| p.attr(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::k8s_cluster::schema::{CNIS, DISTRIBUTIONS};

    /// The schema's accepted values are the enums' spellings, and serde
    /// reads each back as itself; anything else fails the decode.
    #[test]
    fn settings_parse_into_their_enums_or_fail() {
        for name in DISTRIBUTIONS {
            let d: Distro = serde_json::from_value(serde_json::json!(name)).expect("a distribution");
            assert_eq!(d.as_str(), *name);
        }
        for name in CNIS {
            let c: Cni = serde_json::from_value(serde_json::json!(name)).expect("a CNI");
            assert_eq!(c.as_str(), *name);
        }
        let mut v = serde_json::to_value(config()).expect("encode");
        v["distribution"] = serde_json::json!("rke2");
        assert!(
            serde_json::from_value::<ClusterConfig>(v).is_err(),
            "an unknown distribution is not kubeadm"
        );
    }

    fn config() -> ClusterConfig {
        ClusterConfig {
            distribution: None,
            version: "v1.36.3".into(),
            control_plane: SshObject {
                host: "10.0.0.1".into(),
                port: 22,
                user: "root".into(),
                host_key: "ssh-ed25519 AAAA".into(),
            },
            workers: None,
            pod_cidr: None,
            service_cidr: None,
            cni: None,
            install: None,
            node_settings: None,
            namespace: None,
            network_policy_enforcement: None,
            metrics_server: None,
            ingress: None,
            secrets_encryption: None,
            secrets_encryption_key_version: None,
            audit_log: None,
            pod_security: None,
        }
    }

    #[test]
    fn defaults_make_a_valid_spec() {
        let spec = config().to_spec().expect("valid");
        assert_eq!(spec.pod_cidr.to_string(), DEFAULT_POD_CIDR);
        assert_eq!(spec.images, ImageSource::Registry);
    }

    #[test]
    fn problems_name_their_attribute() {
        let mut c = config();
        c.version = "latest".into();
        c.node_settings = Some(NodeSettingsModel {
            kubelet_extra_config: Some("[1]".into()),
            kubelet_cgroup_root: Some("relative".into()),
            ..Default::default()
        });
        let errs = c.to_spec().expect_err("invalid");
        let paths: Vec<String> = errs.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            paths,
            [
                "node_settings.kubelet_extra_config",
                "version",
                "node_settings.kubelet_cgroup_root"
            ]
        );
    }

    /// Unset attributes take the detected values; each set one overrides
    /// its own, and the JSON objects merge key by key.
    #[test]
    fn explicit_settings_override_the_detected_ones_attribute_by_attribute() {
        let bed = HostFacts::parse(crate::cluster::facts::BED_HOST_FIXTURE);
        let vm = HostFacts::parse(crate::cluster::facts::KVM_VPS_FIXTURE);
        let mut c = config();
        assert_eq!(c.node_settings_for(&vm), NodeSettings::default());
        assert_eq!(c.node_settings_for(&bed), bed.node_settings());
        c.node_settings = Some(NodeSettingsModel {
            containerd_snapshotter: Some("overlayfs".into()),
            kubelet_cgroup_driver: Some("systemd".into()),
            kubelet_extra_config: Some(r#"{"failCgroupV1": true, "maxPods": 50}"#.into()),
            ignore_preflight_errors: Some(BTreeSet::new()),
            ..Default::default()
        });
        let s = c.node_settings_for(&bed);
        assert_eq!(s.snapshotter, "overlayfs");
        assert_eq!(s.cgroup_driver, CgroupDriver::Systemd);
        assert!(s.ignore_preflight_errors.is_empty());
        assert_eq!(s.kubelet_extra["failCgroupV1"], serde_json::json!(true));
        assert_eq!(s.kubelet_extra["maxPods"], serde_json::json!(50));
        assert!(s.kubelet_extra.contains_key("evictionHard"), "detected keys stay");
        // the rest is still detected
        assert!(s.restrict_oom_score_adj);
        assert_eq!(s.cgroup_root.as_deref(), Some("/{node}"));
        let e = c.effective(&bed);
        assert_eq!(e.profile, "container (systemd-nspawn)");
        assert_eq!(e.containerd_snapshotter, "overlayfs");
        assert_eq!(e.ignore_preflight_errors, None);
        // k3s: what k3s does not take is null
        c.distribution = Some(Distro::K3s);
        let e = c.effective(&bed);
        assert_eq!(e.containerd_restrict_oom_score_adj, None);
        assert_eq!(e.kube_proxy_extra_config, None);
        assert_eq!(e.kubelet_cgroup_driver, "systemd");
    }
}
