//! The schema of `selfhost_k8s_cluster`: the canonical names of DESIGN.md,
//! the node settings a host may need, and the computed outputs.

use std::time::Duration;

use super::model::{Cni, Distro};
use crate::cluster::{apiserver, release};
use crate::framework::plan_modifier::{
    AttributePlanRequest, AttributePlanResponse, PlanModifier, RequiresReplace, UseStateForUnknown,
};
use crate::framework::timeouts::{self, Operation};
use crate::framework::validator::{Check, IntBetween, OneOf};
use crate::framework::{Attribute, Block, NestedBlock, Nesting, Schema, Type};
use crate::host::validate;
use crate::kube::pod_security;
use crate::resources::vps_host::ssh_object_type;

/// Default time limits: a first `kubeadm init` plus image imports on a
/// small VPS take several minutes.
pub const TIMEOUTS: [(Operation, Duration); 4] = [
    (Operation::Create, Duration::from_secs(30 * 60)),
    (Operation::Read, Duration::from_secs(5 * 60)),
    (Operation::Update, Duration::from_secs(30 * 60)),
    (Operation::Delete, Duration::from_secs(20 * 60)),
];

pub const DISTRIBUTIONS: &[&str] = &[Distro::Kubeadm.as_str(), Distro::K3s.as_str()];
pub const CNIS: &[&str] = &[Cni::Flannel.as_str(), Cni::None.as_str()];
pub const SOURCES: &[&str] = &["download", "bundle"];
pub const CGROUP_DRIVERS: &[&str] = &["systemd", "cgroupfs"];

pub const DEFAULT_POD_CIDR: &str = "10.244.0.0/16";
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";

fn cidr_check() -> Check {
    Check::values(
        "Invalid CIDR",
        "must be an IPv4 or IPv6 network such as \"10.244.0.0/16\"",
        |s| validate::cidr(s).map(drop),
    )
}

fn json_object_check() -> Check {
    Check::values(
        "Invalid JSON object",
        "must be a JSON object, e.g. jsonencode({ maxPods = 50 })",
        |s| match serde_json::from_str::<serde_json::Value>(s) {
            Ok(serde_json::Value::Object(_)) => Ok(()),
            Ok(_) => Err("not a JSON object".to_owned()),
            Err(e) => Err(format!("not JSON: {e}")),
        },
    )
}

fn version_attr(name: &str, default: &str, description: &'static str) -> Attribute {
    Attribute::string(name)
        .optional()
        .computed()
        .default_value(default)
        .validator(Check::values(
            "Invalid version",
            "a release version such as 1.7.1",
            |s| {
                let core = s.strip_prefix('v').unwrap_or(s);
                let ok = !core.is_empty()
                    && core.len() <= 40
                    && core.starts_with(|c: char| c.is_ascii_digit())
                    && core
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'));
                if ok {
                    Ok(())
                } else {
                    Err(format!("{s:?} is not a release version such as \"1.7.1\""))
                }
            },
        ))
        .description(description)
}

fn url_check() -> Check {
    Check::values("Invalid URL", "an http:// or https:// URL", |s| {
        let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
        match rest {
            Some(r)
                if !r.is_empty() && !r.starts_with('/') && !s.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                Ok(())
            }
            _ => Err(format!("{s:?} is not an http:// or https:// URL")),
        }
    })
}

fn url_attr(name: &str, default: &str, description: &'static str) -> Attribute {
    Attribute::string(name)
        .optional()
        .computed()
        .default_value(default)
        .validator(url_check())
        .description(description)
}

fn install_block() -> NestedBlock {
    let b = Block::new()
        .description("Where the binaries and images come from. Changing it after creation has no effect on existing nodes (new workers use it). With distribution = \"k3s\" the node gets the k3s binary (and the image archives, in k3s's air-gap images directory) instead of kubeadm, kubelet, containerd, runc and the CNI plugins.")
        .attribute(
            Attribute::string("source")
                .optional()
                .computed()
                .default_value("download")
                .validator(OneOf(SOURCES))
                .description("\"download\" (default): official release binaries at `version`, each checked against its published SHA-256 before use. \"bundle\": a local air-gapped bundle (binaries and OCI image archives, the layout `testbed/testbed bundle` writes, described under \"Air-gapped bundle layout\" below) uploaded over SSH; images are imported into containerd and never pulled."),
        )
        .attribute(
            Attribute::string("bundle")
                .optional()
                .description("Directory of the bundle on the machine running Terraform (source = \"bundle\")."),
        )
        .attribute(
            Attribute::string("base_url")
                .optional()
                .computed()
                .default_value(release::KUBERNETES_BASE)
                .validator(url_check())
                .description("Where kubeadm, kubelet and kubectl are fetched from (source = \"download\"): https://dl.k8s.io/release or a mirror with its layout (`v<version>/bin/linux/amd64/<name>` and `<name>.sha256`)."),
        )
        .attribute(version_attr("containerd_version", release::CONTAINERD_VERSION, "Pinned containerd release (source = \"download\")."))
        .attribute(url_attr("containerd_url", release::CONTAINERD_BASE, "Base URL of containerd's GitHub releases or a mirror with their layout (`v<v>/containerd-<v>-linux-amd64.tar.gz` and `.sha256sum`)."))
        .attribute(version_attr("runc_version", release::RUNC_VERSION, "Pinned runc release (source = \"download\")."))
        .attribute(url_attr("runc_url", release::RUNC_BASE, "Base URL of runc's GitHub releases or a mirror with their layout (`v<v>/runc.amd64` and `v<v>/runc.sha256sum`)."))
        .attribute(version_attr("cni_plugins_version", release::CNI_PLUGINS_VERSION, "Pinned containernetworking/plugins release (source = \"download\")."))
        .attribute(url_attr("cni_plugins_url", release::CNI_PLUGINS_BASE, "Base URL of containernetworking/plugins' GitHub releases or a mirror with their layout (`v<v>/cni-plugins-linux-amd64-v<v>.tgz` and `.sha256`)."))
        .attribute(
            Attribute::string("k3s_version")
                .optional()
                .validator(Check::values(
                    "Invalid version",
                    "a k3s release such as \"v1.36.3+k3s1\"",
                    |s| {
                        let ok = s.split_once("+k3s").is_some_and(|(k8s, n)| {
                            crate::cluster::Version::parse(k8s).is_ok()
                                && !n.is_empty()
                                && n.len() <= 3
                                && n.bytes().all(|b| b.is_ascii_digit())
                        });
                        if ok {
                            Ok(())
                        } else {
                            Err(format!("{s:?} is not a k3s release such as \"v1.36.3+k3s1\""))
                        }
                    },
                ))
                .description("distribution = \"k3s\": the k3s release of `version` (default `<version>+k3s1`); it must be a release of `version`."),
        )
        .attribute(url_attr("k3s_url", crate::cluster::k3s::RELEASE_BASE, "distribution = \"k3s\", source = \"download\": base URL of k3s's GitHub releases or a mirror with their layout (`<release, + as %2B>/k3s` and `sha256sum-amd64.txt`)."))
        .attribute(
            Attribute::string("image_archives")
                .optional()
                .description("source = \"download\": a directory on the machine running Terraform with OCI image archives and an `images.txt` (`reference<TAB>file` lines, the bundle's `images/` layout) imported into containerd on every node, for hosts that cannot reach the registries. Unset: kubeadm and the kubelet pull images from their registries."),
        );
    NestedBlock::new("install", Nesting::Single, b)
}

/// An unset node setting is chosen per node from the host's facts
/// (`effective_node_settings`), so it plans as unset; a value an earlier
/// provider version recorded (its defaults) is kept, so a cluster it made
/// plans no change.
pub struct DetectedWhenUnset;

impl PlanModifier for DetectedWhenUnset {
    fn description(&self) -> String {
        "Unset: chosen for each node from its host's facts (see `effective_node_settings`).".to_owned()
    }
    fn modify(&self, req: &AttributePlanRequest<'_>, resp: &mut AttributePlanResponse) {
        if req.config.is_null() {
            resp.plan = req.state.clone();
        }
    }
}

fn node_settings_block() -> NestedBlock {
    let replace = |a: Attribute| a.plan_modifier(RequiresReplace);
    let detected = |a: Attribute| a.optional().computed().plan_modifier(DetectedWhenUnset);
    let b = Block::new()
        .description("Settings of every node's container runtime and kubelet. Each one left unset is chosen for each node from its host's facts, read over SSH at plan time (one exec): a VM or physical host gets the VPS defaults (overlayfs, systemd cgroup driver, the kubelet's and kube-proxy's defaults); a container-based host (systemd-nspawn, LXC, OpenVZ: `systemd-detect-virt -c`) gets what such hosts need, each value following from one fact — see `effective_node_settings`, which shows the choice in the plan. A value set here overrides the detected one on every node (the JSON objects are merged over the detected fields, key by key). Changing one replaces the cluster: kubeadm writes them into the cluster at init; removing one that was set keeps it as applied (so does a value an earlier provider version recorded as its default).")
        .attribute(replace(detected(
            Attribute::string("containerd_snapshotter")
                .description("containerd snapshotter: \"overlayfs\" (detected on most hosts); \"native\" where the root file system is itself an overlay (detected from the root's file system type)."),
        )))
        .attribute(replace(detected(
            Attribute::bool("containerd_restrict_oom_score_adj")
                .description("containerd CRI `restrict_oom_score_adj`: true where no process may lower its OOM score (detected: a subshell cannot lower its own oom_score_adj, i.e. no CAP_SYS_RESOURCE)."),
        )))
        .attribute(replace(
            Attribute::number("containerd_oom_score_adjust")
                .optional()
                .description("`OOMScoreAdjust=` of containerd.service (a drop-in); unset: 0 where the OOM score cannot be lowered (systemd would not start the unit), else the unit's -999."),
        ))
        .attribute(replace(detected(
            Attribute::string("kubelet_cgroup_driver")
                .validator(OneOf(CGROUP_DRIVERS))
                .description("\"systemd\" (containerd gets `SystemdCgroup = true`) or \"cgroupfs\"; unset: \"cgroupfs\" where the host's systemd does not own the cgroup tree (PID 1 is not systemd, or its cgroup lies outside the mounted tree: a tree shared with other hosts), else \"systemd\"."),
        )))
        .attribute(replace(
            Attribute::string("kubelet_cgroup_root")
                .optional()
                .description("kubelet `cgroupRoot`; `{node}` stands for the node's name. Unset: \"/{node}\" where the host shares its cgroup tree with other hosts (they would all use /kubepods), else the kubelet's default."),
        ))
        .attribute(replace(
            Attribute::string("kubelet_extra_config")
                .optional()
                .validator(json_object_check())
                .description("More KubeletConfiguration fields as a JSON object (`jsonencode({...})`), merged key by key over the provider's and the detected ones (`failCgroupV1 = false` on cgroup v1; on a container-based host absolute eviction thresholds and image GC at 100/99%: a container shares its machine's disk, so percentages of it say nothing about this node)."),
        ))
        .attribute(replace(
            Attribute::string("kube_proxy_extra_config")
                .optional()
                .validator(json_object_check())
                .description("KubeProxyConfiguration fields as a JSON object (`jsonencode({...})`), merged key by key over the detected ones (conntrack limits and timeouts zeroed, i.e. left to the kernel, where /proc/sys is read-only). kube-proxy has one configuration for the cluster: the control plane's host decides the detected part."),
        ))
        .attribute(replace(
            Attribute::of_type("ignore_preflight_errors", Type::set(Type::String))
                .optional()
                .description("kubeadm preflight checks whose errors are ignored; unset: [\"SystemVerification\"] on cgroup v1 (kubeadm >= 1.35 asks for it to be skipped explicitly) or where no kernel configuration is readable, else none."),
        ));
    NestedBlock::new("node_settings", Nesting::Single, b)
}

/// The type of each value of `effective_node_settings`.
pub fn effective_type() -> Type {
    Type::object([
        ("profile".to_owned(), Type::String),
        ("facts".to_owned(), Type::map(Type::String)),
        ("containerd_snapshotter".to_owned(), Type::String),
        ("containerd_restrict_oom_score_adj".to_owned(), Type::Bool),
        ("containerd_oom_score_adjust".to_owned(), Type::Number),
        ("kubelet_cgroup_driver".to_owned(), Type::String),
        ("kubelet_cgroup_root".to_owned(), Type::String),
        ("kubelet_extra_config".to_owned(), Type::String),
        ("kube_proxy_extra_config".to_owned(), Type::String),
        ("ignore_preflight_errors".to_owned(), Type::set(Type::String)),
    ])
}

/// The ACME account's contact: one address, no display name.
fn check_email(s: &str) -> Result<(), String> {
    let Some((local, domain)) = s.split_once('@') else {
        return Err(format!("{s:?} has no '@'"));
    };
    if local.is_empty()
        || local.len() > 64
        || local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>(),;:\\\"[]@".contains(c))
    {
        return Err(format!("{s:?} is not a plain email address"));
    }
    crate::kube::names::check_subdomain(&domain.to_ascii_lowercase()).map_err(|m| format!("{s:?}: the domain {m}"))?;
    if !domain.contains('.') {
        return Err(format!("{s:?}: the domain has no dot"));
    }
    Ok(())
}

/// An ACME directory: https only (RFC 8555 §6.1).
fn check_acme_server(s: &str) -> Result<(), String> {
    match s.strip_prefix("https://") {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !s.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Ok(())
        }
        _ => Err(format!(
            "{s:?} is not an https:// URL (ACME directories are served over HTTPS)"
        )),
    }
}

/// One or more PEM certificates, each of which decodes.
pub fn check_pem_bundle(s: &str) -> Result<(), String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut n = 0;
    for c in CertificateDer::pem_slice_iter(s.as_bytes()) {
        c.map_err(|e| format!("a certificate in it does not decode: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
    }
    Ok(())
}

fn ingress_block() -> NestedBlock {
    let acme = Block::new()
        .description("traefik's ACME certificate resolver (HTTP-01 on port 80): every agent with `ingress { tls = true }` gets a certificate for its host, ordered once and kept on the ingress node across restarts.")
        .attribute(
            Attribute::string("email")
                .required()
                .validator(Check::values("Invalid email", "a plain email address", check_email))
                .description("Contact address of the ACME account (Let's Encrypt sends expiry notices there)."),
        )
        .attribute(
            Attribute::string("server")
                .optional()
                .validator(Check::values("Invalid ACME server", "an https:// ACME directory URL", check_acme_server))
                .description("ACME directory URL. Default: Let's Encrypt production (https://acme-v02.api.letsencrypt.org/directory), or its staging directory with `staging = true`. Any ACME server works (a private one needs `ca_certificate`)."),
        )
        .attribute(
            Attribute::bool("staging")
                .optional()
                .computed()
                .default_value(false)
                .description("Use Let's Encrypt's staging directory (untrusted certificates, generous rate limits) when `server` is unset."),
        )
        .attribute(
            Attribute::string("ca_certificate")
                .optional()
                .validator(Check::values("Invalid CA certificate", "PEM certificates", check_pem_bundle))
                .description("PEM bundle of the CA(s) that sign the ACME server's own HTTPS certificate, for a private ACME server (traefik trusts it for the ACME API only)."),
        );
    let b = Block::new()
        .description("HTTPS ingress: traefik v3.6.12 as the cluster's default IngressClass `traefik`, listening on one node's ports 80 and 443 in the node's network (open them with `firewall { allow { port = \"80\" } allow { port = \"443\" } }` on that host's `selfhost_vps_host`; its health check listens on 8082), running as root with only NET_BIND_SERVICE, HTTP redirected to HTTPS, certificates from ACME (`acme {}`). One replica on one node: open-source traefik keeps its ACME account and certificates in a file per instance (`/var/lib/selfhost/ingress-acme/acme.json` on that node), so a second instance would order them again. Removing the block removes traefik, its RBAC, namespace and that directory.")
        .attribute(
            Attribute::string("node")
                .optional()
                .description("The `host` of the node traefik runs on (the control plane's or a worker's); point the sites' DNS names at it. Default: the control plane. Moving it orders the certificates again on the new node."),
        )
        .block(NestedBlock::new("acme", Nesting::Single, acme));
    NestedBlock::new("ingress", Nesting::Single, b)
}

fn namespace_block() -> NestedBlock {
    let b = Block::new()
        .description("A namespace the cluster provides, with its ResourceQuota and LimitRange. Removing a block deletes the namespace and everything in it.")
        .attribute(
            Attribute::string("name")
                .required()
                .validator(Check::values(
                    "Invalid namespace name",
                    "must be an RFC 1123 label (lower case letters, digits and '-', at most 63 characters)",
                    crate::kube::names::check_label,
                ))
                .description("Namespace name (RFC 1123 label)."),
        )
        .attribute(
            Attribute::of_type("labels", Type::map(Type::String))
                .optional()
                .description("Labels of the namespace (besides the provider's ownership labels)."),
        )
        .attribute(
            Attribute::of_type("quota", Type::map(Type::String))
                .optional()
                .description("ResourceQuota `hard` limits, e.g. { cpu = \"8\", memory = \"16Gi\", pods = \"50\" } (ResourceQuota `selfhost-quota`)."),
        )
        .attribute(
            Attribute::of_type("default_request", Type::map(Type::String))
                .optional()
                .description("LimitRange default requests of a container, e.g. { cpu = \"100m\", memory = \"128Mi\" } (LimitRange `selfhost-limits`)."),
        )
        .attribute(
            Attribute::of_type("default_limit", Type::map(Type::String))
                .optional()
                .description("LimitRange default limits of a container, e.g. { cpu = \"1\", memory = \"512Mi\" }."),
        )
        .attribute(
            Attribute::string("pod_security")
                .optional()
                .validator(OneOf(pod_security::LEVELS))
                .description("This namespace's Pod Security level, over the cluster's `pod_security`: \"restricted\", \"baseline\" or \"privileged\"."),
        )
        .block(super::deployer::block());
    NestedBlock::new("namespace", Nesting::List, b)
}

fn node_type() -> Type {
    Type::object([
        ("name".to_owned(), Type::String),
        ("host".to_owned(), Type::String),
        ("role".to_owned(), Type::String),
        ("ready".to_owned(), Type::Bool),
        ("version".to_owned(), Type::String),
        ("status".to_owned(), Type::String),
    ])
}

fn output(a: Attribute, description: &str) -> Attribute {
    a.computed().description(description).plan_modifier(UseStateForUnknown)
}

/// The resource schema.
pub fn schema() -> Schema {
    let block = Block::new()
        .description("A Kubernetes cluster bootstrapped over SSH on hosts prepared by `selfhost_vps_host`: containerd, kubelet, `kubeadm init` on the control plane, a CNI, `kubeadm join` for the workers (or, with distribution = \"k3s\", the k3s server and agents). Its `kubeconfig` feeds the workload resources in the same apply. Adding or removing a worker is an in-place update; a stopped kubelet, containerd or k3s unit, or a node missing from the API, shows as drift that apply repairs. Import: `id = jsonencode(selfhost_vps_host.<control plane>.ssh)`.")
        .attribute(output(
            Attribute::string("id"),
            "The cluster's identity: the UID of its kube-system namespace.",
        ))
        .attribute(
            Attribute::string("distribution")
                .optional()
                .computed()
                .default_value("kubeadm")
                .validator(OneOf(DISTRIBUTIONS))
                .plan_modifier(RequiresReplace)
                .description("\"kubeadm\" (default) or \"k3s\": the k3s binary, `/etc/rancher/k3s/config.yaml`, `k3s.service` on the control plane and `k3s-agent.service` joined with the server's node-token on the workers; k3s runs its own containerd, flannel and network-policy controller. With k3s, `node_settings` takes only the snapshotter and the kubelet settings (k3s writes containerd's configuration and has no preflight checks or kube-proxy configuration file)."),
        )
        .attribute(
            Attribute::string("version")
                .required()
                .description("Kubernetes release, e.g. \"v1.36.3\". Raising it by one minor or any patch upgrades the cluster in place, node by node (kubeadm: stage, `kubeadm upgrade apply` on the control plane, then each node drained, upgraded and uncordoned; k3s: the binary and a restart per node); a downgrade, a skipped minor or a release the bundle does not hold is refused at plan time. An upgrade that stops half-way keeps the old value in state and resumes on the next apply."),
        )
        .attribute(
            Attribute::of_type("control_plane", ssh_object_type())
                .required()
                .plan_modifier(RequiresReplace)
                .description("The control-plane host: `selfhost_vps_host.<name>.ssh`, or an object { host, port, user, host_key } written by hand. The SSH key comes from the provider's `ssh {}` block. Terraform reaches the API server at `host`:6443."),
        )
        .attribute(
            Attribute::of_type("workers", Type::list(ssh_object_type()))
                .optional()
                .description("Worker hosts, like `control_plane`. Adding one joins it; removing one drains it, deletes its Node and resets the host."),
        )
        .attribute(
            Attribute::string("pod_cidr")
                .optional()
                .computed()
                .default_value(DEFAULT_POD_CIDR)
                .validator(cidr_check())
                .plan_modifier(RequiresReplace)
                .description("Pod network (default 10.244.0.0/16)."),
        )
        .attribute(
            Attribute::string("service_cidr")
                .optional()
                .computed()
                .default_value(DEFAULT_SERVICE_CIDR)
                .validator(cidr_check())
                .plan_modifier(RequiresReplace)
                .description("Service network (default 10.96.0.0/12)."),
        )
        .attribute(
            Attribute::string("cni")
                .optional()
                .computed()
                .default_value("flannel")
                .validator(OneOf(CNIS))
                .plan_modifier(RequiresReplace)
                .description("\"flannel\" (default) or \"none\" (no pod network: bring your own). With k3s: \"flannel\" is k3s's built-in flannel, \"none\" sets `flannel-backend: none` and disables its network-policy controller. Calico is not offered: its manifest could not be pinned to a checksum nor its images obtained and tested where this provider is built. Flannel alone does not enforce NetworkPolicy objects (k3s's controller does)."),
        )
        .attribute(
            Attribute::string("kubeconfig")
                .computed()
                .sensitive()
                .plan_modifier(UseStateForUnknown)
                .description("Admin kubeconfig; its server is https://<control_plane.host>:6443. Pass it to the workload resources."),
        )
        .attribute(output(
            Attribute::string("api_server_url"),
            "https://<control_plane.host>:6443",
        ))
        .attribute(output(
            Attribute::string("ca_certificate"),
            "The cluster CA certificate (PEM).",
        ))
        .attribute(output(
            Attribute::of_type("nodes", Type::list(node_type())),
            "Each node: name, host, role (\"control-plane\" or \"worker\"), ready, kubelet version, status (\"ok\", or what is wrong, which the next apply repairs: \"kubelet stopped\", \"containerd stopped\", \"k3s stopped\", \"not joined\", \"not registered\", \"api server not ready\", \"unreachable\").",
        ))
        .attribute(
            Attribute::of_type("effective_node_settings", Type::map(effective_type()))
                .computed()
                .description("The node settings each node gets, keyed by its `host`: `profile` (\"container (systemd-nspawn)\", \"vm (kvm)\", \"physical\"), the `facts` read from the host that chose them (container, vm, cgroup version, root file system, whether /proc/sys is writable, whether the OOM score can be lowered, whether a kernel configuration is visible, whether the cgroup tree is shared), and each `node_settings` attribute as applied: the detected value, or the configured one where set. Planned from the hosts' facts when their connections are known (else known after apply); the same choice is logged at INFO. With k3s the settings k3s does not take are null. kubeadm's cluster-wide parts (KubeProxyConfiguration, the cluster's KubeletConfiguration before each node's own patch) follow the control plane's entry."),
        )
        .attribute(output(
            Attribute::string("running_version"),
            "The Kubernetes version the API server reports.",
        ))
        .attribute(
            Attribute::bool("network_policy_enforcement")
                .optional()
                .computed()
                .default_value(true)
                .description("Enforce NetworkPolicy objects (every `selfhost_network_policy`): kube-network-policies v0.8.0, the Kubernetes network SIG's enforcer (nftables + nfqueue), as a privileged hostNetwork DaemonSet in kube-system. Flannel alone does not enforce them. With k3s, k3s's own network-policy controller enforces them and nothing is installed (it cannot be turned off here)."),
        )
        .attribute(
            Attribute::bool("metrics_server")
                .optional()
                .computed()
                .default_value(true)
                .description("metrics-server v0.8.0 in kube-system, so `kubectl top` works and HorizontalPodAutoscalers (`selfhost_agent`'s `autoscaling`) get numbers. It reads kubelets with `--kubelet-insecure-tls`: kubeadm's kubelets serve self-signed certificates no cluster CA can verify."),
        )
        .attribute(
            Attribute::bool("secrets_encryption")
                .optional()
                .computed()
                .default_value(true)
                .description("Encrypt Secrets at rest in etcd. kubeadm: an EncryptionConfiguration (secretbox, a 32-byte key the provider generates) in /etc/kubernetes/selfhost/encryption-config.json (0600, directory 0700) passed to the API server; the key never leaves the control plane: it is not in Terraform's state, a log or a command line (back the file up with etcd's snapshots: they are unreadable without it). Turning it on rewrites every existing Secret encrypted; turning it off rewrites them unencrypted and removes the file. k3s: `secrets-encryption: true` and k3s's own key file and commands. Read back from the API server's flags and the file's key names: a change by hand shows in the plan."),
        )
        .attribute(
            Attribute::number("secrets_encryption_key_version")
                .optional()
                .computed()
                .default_value(1)
                .validator(IntBetween { min: 1, max: apiserver::MAX_KEY_VERSION })
                .description("The encryption key's version (default 1). Raising it rotates the key the documented way: a new key `key<N>` is added first, the API server restarted, every Secret rewritten with it, then the old key removed. A rotation that stopped half-way shows as a change in the next plan and apply finishes it. With k3s: `k3s secrets-encrypt rotate-keys`."),
        )
        .attribute(
            Attribute::bool("audit_log")
                .optional()
                .computed()
                .default_value(true)
                .description("The API server's audit log: /var/log/kubernetes/audit/audit.log on the control plane (k3s: /var/lib/rancher/k3s/server/logs/audit.log), rotated at 100 MB with 5 old files kept. The policy logs the metadata (user, verb, object name — never the body) of every access to Secrets, service-account tokens, token reviews and certificate requests, the request body of workload writes (pods, services, config maps, namespaces, apps, batch, autoscaling, policy, networking, RBAC), the metadata of other writes, and nothing for health checks, events, leases and other reads. Turning it off removes the flags and the policy; the log files stay."),
        )
        .attribute(
            Attribute::string("pod_security")
                .optional()
                .computed()
                .default_value(pod_security::Level::Restricted.as_str())
                .validator(OneOf(pod_security::LEVELS))
                .description("Pod Security Standard enforced in every `namespace {}` (a block's own `pod_security` overrides it): \"restricted\" (default), \"baseline\" or \"privileged\". Written as the namespace labels `pod-security.kubernetes.io/{enforce,warn,audit}` = level and `…-version` = the cluster's minor (e.g. \"v1.36\"); `labels` cannot set them. Add-on namespaces are not affected: kube-system is left as kubeadm makes it, traefik's `selfhost-ingress` is \"privileged\" (host network)."),
        )
        .attribute(
            Attribute::of_type("pod_security_labels", Type::map(Type::map(Type::String)))
                .computed()
                .description("The Pod Security labels of each `namespace {}` as found in the cluster, by namespace name: a label changed or removed by hand shows here in the plan, and apply restores it."),
        )
        .attribute(
            Attribute::of_type("deployer_rbac", Type::map(Type::list(Type::String)))
                .computed()
                .description("The deployer objects of each namespace with `deployer {}` as found in the cluster (ServiceAccount, one line per Role rule, RoleBinding): one changed or deleted by hand shows here in the plan, and apply restores it."),
        )
        .attribute(
            Attribute::of_type("deployer_kubeconfigs", Type::map(Type::String))
                .computed()
                .sensitive()
                .description("Kubeconfig of each namespace's deployer (`namespace { deployer {} }`), by namespace name: `api_server_url`, the cluster CA, the deployer's token, the namespace as its context's default. A short-lived token is renewed by the first plan and apply once less than a third of its `token_duration` is left."),
        )
        .attribute(
            Attribute::of_type("deployer_token_expiry", Type::map(Type::String))
                .computed()
                .description("When each namespace's short-lived deployer token expires (RFC 3339), by namespace name; long-lived tokens have no entry."),
        )
        .block(ingress_block())
        .block(install_block())
        .block(node_settings_block())
        .block(namespace_block())
        .block(timeouts::block(&TIMEOUTS));
    Schema::new(0, block)
}
