//! kubeadm's configuration files (API `kubeadm.k8s.io/v1beta4`), rendered
//! as JSON documents separated by `---`: kubeadm reads each document with a
//! YAML parser, and JSON is YAML, so no value is ever pasted into YAML text.

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::apiserver;
use super::spec::{ClusterSpec, ImageSource};
use crate::network::Hostname;

/// Where containerd's CRI socket is.
pub const CRI_SOCKET: &str = "unix:///run/containerd/containerd.sock";
/// Where the per-node kubelet patch lives (kubeadm `patches.directory`).
pub const PATCHES_DIR: &str = "/etc/kubeadm/patches";
/// The file of that patch.
pub const KUBELET_PATCH: &str = "/etc/kubeadm/patches/kubeletconfiguration+merge.json";

/// kubeadm's waits, longer than its defaults: right after it starts, the
/// API server of a small (or busy) VPS can take more than kubeadm's one
/// minute per API call, and a failed init must be rolled back.
fn timeouts() -> Value {
    json!({
        "controlPlaneComponentHealthCheck": "10m0s",
        "kubeletHealthCheck": "10m0s",
        "kubernetesAPICall": "5m0s",
        "etcdAPICall": "5m0s",
        "discovery": "10m0s",
        "tlsBootstrap": "10m0s",
    })
}

fn documents(docs: &[Value]) -> String {
    let mut out = String::new();
    for d in docs {
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(&d.to_string());
        out.push('\n');
    }
    out
}

fn node_registration(spec: &ClusterSpec, node: &Hostname) -> Value {
    let pull = match spec.images {
        ImageSource::Bundle => "Never",
        ImageSource::Registry => "IfNotPresent",
    };
    let mut reg = json!({
        "name": node.as_str(),
        "criSocket": CRI_SOCKET,
        "imagePullPolicy": pull,
    });
    if !spec.settings.ignore_preflight_errors.is_empty()
        && let Some(m) = reg.as_object_mut()
    {
        m.insert(
            "ignorePreflightErrors".into(),
            json!(spec.settings.ignore_preflight_errors),
        );
    }
    reg
}

fn merged(mut base: Map<String, Value>, extra: &std::collections::BTreeMap<String, Value>) -> Value {
    for (k, v) in extra {
        base.insert(k.clone(), v.clone());
    }
    Value::Object(base)
}

fn kubelet_configuration(spec: &ClusterSpec) -> Value {
    let mut base = Map::new();
    base.insert("apiVersion".into(), json!("kubelet.config.k8s.io/v1beta1"));
    base.insert("kind".into(), json!("KubeletConfiguration"));
    base.insert("cgroupDriver".into(), json!(spec.settings.cgroup_driver.as_str()));
    merged(base, &spec.settings.kubelet_extra)
}

/// `ClusterConfiguration.apiServer`: the endpoint as a certificate name,
/// and the flags and mounts of encryption at rest and the audit log.
fn api_server(spec: &ClusterSpec) -> Value {
    let mut api = json!({"certSANs": [spec.endpoint]});
    let args = apiserver::extra_args(&spec.api_server);
    if let Some(m) = api.as_object_mut()
        && !args.is_empty()
    {
        let args: Vec<Value> = args.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
        m.insert("extraArgs".into(), json!(args));
        m.insert("extraVolumes".into(), json!(apiserver::extra_volumes(&spec.api_server)));
    }
    api
}

/// The file for `kubeadm init --config` on the control-plane node `node`.
pub fn init_config(spec: &ClusterSpec, node: &Hostname) -> String {
    let mut init = json!({
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "InitConfiguration",
        "nodeRegistration": node_registration(spec, node),
        "patches": {"directory": PATCHES_DIR},
        "timeouts": timeouts(),
    });
    // An IP that Terraform reaches is the one the API server advertises;
    // for a DNS name kubeadm picks the default route's address.
    if let (Ok(ip), Some(m)) = (spec.endpoint.parse::<IpAddr>(), init.as_object_mut()) {
        m.insert(
            "localAPIEndpoint".into(),
            json!({"advertiseAddress": ip.to_string(), "bindPort": 6443}),
        );
    }
    let cluster = json!({
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "kubernetesVersion": spec.version.to_string(),
        "controlPlaneEndpoint": spec.control_plane_endpoint(),
        "apiServer": api_server(spec),
        "networking": {
            "podSubnet": spec.pod_cidr.to_string(),
            "serviceSubnet": spec.service_cidr.to_string(),
            "dnsDomain": "cluster.local",
        },
    });
    let mut docs = vec![init, cluster, kubelet_configuration(spec)];
    if !spec.settings.kube_proxy_extra.is_empty() {
        let mut base = Map::new();
        base.insert("apiVersion".into(), json!("kubeproxy.config.k8s.io/v1alpha1"));
        base.insert("kind".into(), json!("KubeProxyConfiguration"));
        docs.push(merged(base, &spec.settings.kube_proxy_extra));
    }
    documents(&docs)
}

/// A bootstrap token and the CA pin a joining node checks the control
/// plane against. Secret: goes to the node in a 0600 file over stdin.
pub struct JoinCredentials {
    /// `abcdef.0123456789abcdef`
    pub token: String,
    /// `sha256:<hex>`
    pub ca_cert_hash: String,
}

impl JoinCredentials {
    /// Parse the line `kubeadm token create --print-join-command` prints.
    pub fn from_join_command(line: &str) -> Result<JoinCredentials, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |flag: &str| {
            words
                .iter()
                .position(|w| *w == flag)
                .and_then(|i| words.get(i + 1))
                .map(|w| w.to_string())
        };
        let (Some(token), Some(hash)) = (after("--token"), after("--discovery-token-ca-cert-hash")) else {
            return Err("kubeadm's join command has no --token or --discovery-token-ca-cert-hash".into());
        };
        let token_ok = token.len() == 23
            && token.as_bytes().get(6) == Some(&b'.')
            && token
                .bytes()
                .enumerate()
                .all(|(i, b)| i == 6 || b.is_ascii_lowercase() || b.is_ascii_digit());
        let hash_ok = hash
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !token_ok || !hash_ok {
            return Err("kubeadm printed a join command this provider does not understand".into());
        }
        Ok(JoinCredentials {
            token,
            ca_cert_hash: hash,
        })
    }
}

/// The file for `kubeadm join --config` on worker `node`.
pub fn join_config(spec: &ClusterSpec, node: &Hostname, creds: &JoinCredentials) -> String {
    documents(&[json!({
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "JoinConfiguration",
        "discovery": {"bootstrapToken": {
            "apiServerEndpoint": spec.control_plane_endpoint(),
            "token": creds.token,
            "caCertHashes": [creds.ca_cert_hash],
        }},
        "nodeRegistration": node_registration(spec, node),
        "patches": {"directory": PATCHES_DIR},
        "timeouts": timeouts(),
    })])
}

/// The file for `kubeadm upgrade plan|apply|node --config` (an
/// `UpgradeConfiguration`): the target release, the node's preflight
/// errors to ignore, and the patch directory, so the kubelet patch of
/// each node and the API server's annotation survive the upgrade (kubeadm
/// rewrites `/var/lib/kubelet/config.yaml` and the static pods from the
/// cluster's ConfigMaps, which keep every other setting). Certificates
/// are renewed as kubeadm does by default.
pub fn upgrade_config(spec: &ClusterSpec) -> String {
    let pull = match spec.images {
        ImageSource::Bundle => "Never",
        ImageSource::Registry => "IfNotPresent",
    };
    let ignore = &spec.settings.ignore_preflight_errors;
    let patches = json!({"directory": PATCHES_DIR});
    let version = spec.version.to_string();
    documents(&[json!({
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "UpgradeConfiguration",
        "apply": {
            "kubernetesVersion": version,
            "ignorePreflightErrors": ignore,
            "patches": patches,
            "imagePullPolicy": pull,
        },
        "node": {
            "ignorePreflightErrors": ignore,
            "patches": patches,
            "imagePullPolicy": pull,
        },
        "plan": {
            "kubernetesVersion": version,
            "ignorePreflightErrors": ignore,
        },
        "timeouts": timeouts(),
    })])
}

/// The per-node kubelet patch (kubeadm applies it over the cluster's
/// KubeletConfiguration at init and join): the node's own cgroup driver,
/// `cgroupRoot` and extra fields, so each node gets the settings chosen
/// for its host even when the control plane's differ.
pub fn kubelet_patch(spec: &ClusterSpec, node: &Hostname) -> String {
    let mut m = Map::new();
    m.insert("cgroupDriver".into(), json!(spec.settings.cgroup_driver.as_str()));
    if let Some(root) = spec.cgroup_root_for(node) {
        m.insert("cgroupRoot".into(), json!(root));
    }
    merged(m, &spec.settings.kubelet_extra).to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::spec::{CgroupDriver, NodeSettings};
    use crate::network as validate;

    fn docs(text: &str) -> Vec<Value> {
        text.split("---\n")
            .map(|d| serde_json::from_str(d).expect("each document is JSON"))
            .collect()
    }

    fn bed_like() -> ClusterSpec {
        ClusterSpec::new(
            "v1.36.3",
            "10.77.0.101",
            "10.244.0.0/16",
            "10.96.0.0/12",
            ImageSource::Bundle,
            NodeSettings {
                snapshotter: "native".into(),
                restrict_oom_score_adj: true,
                containerd_oom_score_adjust: Some(0),
                cgroup_driver: CgroupDriver::Cgroupfs,
                cgroup_root: Some("/{node}".into()),
                kubelet_extra: [("failCgroupV1".to_string(), json!(false))].into(),
                kube_proxy_extra: [("conntrack".to_string(), json!({"maxPerCore": 0, "min": 0}))].into(),
                ignore_preflight_errors: ["SystemVerification".to_string()].into(),
            },
        )
        .expect("valid")
    }

    #[test]
    fn init_config_matches_what_the_bed_selftest_proves() {
        let node = validate::hostname("tb-k8s1").expect("name");
        let d = docs(&init_config(&bed_like(), &node));
        assert_eq!(d.len(), 4);
        assert_eq!(d[0]["kind"], "InitConfiguration");
        assert_eq!(d[0]["localAPIEndpoint"]["advertiseAddress"], "10.77.0.101");
        assert_eq!(d[0]["nodeRegistration"]["imagePullPolicy"], "Never");
        assert_eq!(d[0]["nodeRegistration"]["name"], "tb-k8s1");
        assert_eq!(
            d[0]["nodeRegistration"]["ignorePreflightErrors"],
            json!(["SystemVerification"])
        );
        assert_eq!(d[1]["kubernetesVersion"], "v1.36.3");
        assert_eq!(d[1]["controlPlaneEndpoint"], "10.77.0.101:6443");
        assert_eq!(d[1]["apiServer"]["certSANs"], json!(["10.77.0.101"]));
        assert_eq!(d[1]["networking"]["podSubnet"], "10.244.0.0/16");
        assert_eq!(d[2]["cgroupDriver"], "cgroupfs");
        assert_eq!(d[2]["failCgroupV1"], false);
        assert_eq!(d[3]["conntrack"]["maxPerCore"], 0);
        assert_eq!(
            kubelet_patch(&bed_like(), &node),
            "{\"cgroupDriver\":\"cgroupfs\",\"cgroupRoot\":\"/tb-k8s1\",\"failCgroupV1\":false}\n"
        );
    }

    #[test]
    fn a_real_vps_gets_kubeadm_defaults_and_a_dns_endpoint_is_a_san() {
        let s = ClusterSpec::new(
            "v1.36.3",
            "k8s.example.com",
            "10.42.0.0/16",
            "10.43.0.0/16",
            ImageSource::Registry,
            NodeSettings::default(),
        )
        .expect("valid");
        let node = validate::hostname("cp-1").expect("name");
        let d = docs(&init_config(&s, &node));
        assert_eq!(d.len(), 3, "no KubeProxyConfiguration without extra settings");
        assert!(d[0].get("localAPIEndpoint").is_none());
        assert!(d[0]["nodeRegistration"].get("ignorePreflightErrors").is_none());
        assert_eq!(d[0]["nodeRegistration"]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(d[1]["apiServer"]["certSANs"], json!(["k8s.example.com"]));
        assert_eq!(d[2]["cgroupDriver"], "systemd");
        assert_eq!(kubelet_patch(&s, &node), "{\"cgroupDriver\":\"systemd\"}\n");
    }

    #[test]
    fn the_api_server_gets_the_security_flags_and_mounts_only_when_asked() {
        let node = validate::hostname("cp-1").expect("name");
        let mut s = bed_like();
        assert!(docs(&init_config(&s, &node))[1]["apiServer"].get("extraArgs").is_none());
        s.api_server = apiserver::ApiServerSecurity {
            encryption: Some(2),
            audit_log: true,
        };
        let api = docs(&init_config(&s, &node))[1]["apiServer"].clone();
        assert_eq!(
            api["extraArgs"][0],
            json!({"name": "encryption-provider-config", "value": apiserver::ENCRYPTION_CONFIG})
        );
        assert_eq!(
            api["extraArgs"][2],
            json!({"name": "audit-log-path", "value": apiserver::AUDIT_LOG})
        );
        assert_eq!(api["extraVolumes"][0]["readOnly"], true);
        assert_eq!(api["extraVolumes"][1]["hostPath"], apiserver::AUDIT_LOG_DIR);
        assert_eq!(api["certSANs"], json!(["10.77.0.101"]));
    }

    #[test]
    fn the_upgrade_configuration_keeps_the_nodes_patches_and_preflight_choices() {
        let d = docs(&upgrade_config(&bed_like()));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0]["kind"], "UpgradeConfiguration");
        assert_eq!(d[0]["apply"]["kubernetesVersion"], "v1.36.3");
        assert_eq!(d[0]["plan"]["kubernetesVersion"], "v1.36.3");
        for part in ["apply", "node"] {
            assert_eq!(d[0][part]["patches"]["directory"], PATCHES_DIR);
            assert_eq!(d[0][part]["ignorePreflightErrors"], json!(["SystemVerification"]));
            assert_eq!(d[0][part]["imagePullPolicy"], "Never");
        }
        assert!(
            d[0]["node"].get("kubernetesVersion").is_none(),
            "a node takes the cluster's version"
        );
    }

    #[test]
    fn join_credentials_come_only_from_a_well_formed_join_command() {
        let line = "kubeadm join 10.77.0.101:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:8c2bbd6e04ed8a57ba3a0e2f0ea2a6a3c4bb9d2d6e51f0a4f8e1c1f7d5c3b2a1 ";
        let c = JoinCredentials::from_join_command(line).expect("parsed");
        let node = validate::hostname("tb-k8s2").expect("name");
        let d = docs(&join_config(&bed_like(), &node, &c));
        assert_eq!(d[0]["discovery"]["bootstrapToken"]["token"], "abcdef.0123456789abcdef");
        assert_eq!(
            d[0]["discovery"]["bootstrapToken"]["apiServerEndpoint"],
            "10.77.0.101:6443"
        );
        for bad in [
            "kubeadm join x --token abc --discovery-token-ca-cert-hash sha256:00",
            "kubeadm join x --token abcdef.0123456789abcdef",
            "error: could not connect",
        ] {
            assert!(JoinCredentials::from_join_command(bad).is_err(), "{bad}");
        }
    }
}
