//! The test bed's Kubernetes-capable hosts (`testbed up --k8s-hosts 3`) and
//! the air-gapped bundle, as the cluster tests see them: through
//! `testbed/testbed env` only, checked with plain OpenSSH and the real
//! kubectl. Also the cluster configuration those tests apply, with the node
//! settings the bed's container hosts need (testbed/README.md).

#![allow(dead_code)] // each test file uses a different part of this module

use super::bed::{Bed, Host, bed, bed_var, parse_hosts};
use super::kube::KubeBed;

/// The k8s hosts, the bundle and kubectl, or `None` after a loud SKIP.
pub struct K8sBed {
    pub bed: Bed,
    pub hosts: Vec<Host>,
    pub bundle: String,
    pub kubectl: String,
}

pub fn k8s_bed(test: &str) -> Option<K8sBed> {
    let bed = bed(test)?;
    let hosts = parse_hosts(&bed_var(test, "SELFHOST_TEST_K8S_HOSTS")?);
    let bundle = bed_var(test, "SELFHOST_TEST_K8S_BUNDLE")?;
    let kubectl = bed_var(test, "SELFHOST_TEST_KUBECTL")?;
    if hosts.len() < 3 {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: needs 3 k8s hosts (testbed up --k8s-hosts 3)"
        );
        eprintln!("\n*** SKIP {test}: needs 3 k8s hosts (testbed up --k8s-hosts 3) ***\n");
        return None;
    }
    Some(K8sBed {
        bed,
        hosts,
        bundle,
        kubectl,
    })
}

/// Leftovers of an earlier, interrupted run are removed with kubeadm's own
/// reset and the cleanup kubeadm documents, so the scenario starts from
/// hosts that never ran Kubernetes.
pub const FRESH_HOST: &str = r#"
command -v kubeadm >/dev/null 2>&1 && kubeadm reset -f >/dev/null 2>&1
systemctl disable --now kubelet containerd >/dev/null 2>&1
pkill -x 'containerd-shim-runc-v2' 2>/dev/null
awk '$2 ~ "^/(var/lib/kubelet|run/containerd|var/lib/containerd|run/netns)/" {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
rm -rf /etc/kubernetes /var/lib/kubelet /var/lib/etcd /etc/kubeadm /etc/cni /opt/cni /var/lib/cni /var/lib/containerd /run/containerd /etc/containerd /var/lib/selfhost \
  /etc/systemd/system/kubelet.service* /etc/systemd/system/containerd.service* /usr/bin/kube* /usr/local/bin/containerd* /usr/local/bin/ctr /usr/local/sbin/runc
ip link delete cni0 2>/dev/null; ip link delete flannel.1 2>/dev/null
systemctl daemon-reload
true
"#;

/// What must not be on a host after destroy or removal: checked with plain
/// shell, not with the provider's reset script.
pub const CLEAN_CHECK: &str = r#"
left=""
for f in /etc/kubernetes /var/lib/kubelet /var/lib/etcd /var/lib/containerd /run/containerd /etc/cni/net.d /var/lib/cni \
         /usr/bin/kubelet /usr/bin/kubeadm /usr/local/bin/containerd /etc/systemd/system/kubelet.service \
         /etc/systemd/system/containerd.service /var/lib/selfhost/k8s-bundle; do
  [ ! -e "$f" ] || left="$left $f"
done
for u in kubelet containerd; do systemctl cat "$u.service" >/dev/null 2>&1 && left="$left unit:$u"; done
for l in cni0 flannel.1; do ip link show "$l" >/dev/null 2>&1 && left="$left link:$l"; done
p=$(pgrep -x 'kubelet|containerd|kube-apiserver|etcd|kube-proxy|flanneld|pause' | tr '\n' ' ')
[ -z "$p" ] || left="$left processes:$p"
nft list ruleset 2>/dev/null | grep -qE 'KUBE-|FLANNEL' && left="$left kube-iptables-rules"
echo "left:$left"
"#;

pub fn assert_clean(k: &K8sBed, host: &Host) {
    let out = k.bed.sh(host, CLEAN_CHECK);
    assert_eq!(out.trim(), "left:", "{}: Kubernetes leftovers after reset", host.addr);
}

/// Hosts `cp` and the `workers` (names among w1, w2) and the cluster on
/// them with the bed's node settings, then `extra` (more resources).
pub fn cluster_config(k: &K8sBed, workers: &[&str], extra: &str) -> String {
    let install = format!(
        "  install {{\n    source = \"bundle\"\n    bundle = \"{}\"\n  }}",
        k.bundle
    );
    cluster_config_with(k, workers, &install, extra)
}

/// [`cluster_config`] with another `install {}` block.
pub fn cluster_config_with(k: &K8sBed, workers: &[&str], install: &str, extra: &str) -> String {
    let host = |name: &str, h: &Host| {
        format!(
            r#"
resource "selfhost_vps_host" "{name}" {{
  ssh_connection {{
    host = "{addr}"
    port = {port}
  }}
  sysctl = {{ "net.ipv4.ip_forward" = "1" }}
}}
"#,
            addr = h.addr,
            port = h.port
        )
    };
    let mut hcl = format!(
        r#"terraform {{
  required_providers {{
    selfhost = {{ source = "selfhost/selfhost" }}
  }}
}}

provider "selfhost" {{
  ssh {{
    user        = "{user}"
    private_key = file("{key}")
  }}
}}
"#,
        user = k.bed.user,
        key = k.bed.key
    );
    hcl.push_str(&host("cp", &k.hosts[0]));
    hcl.push_str(&host("w1", &k.hosts[1]));
    if workers.contains(&"w2") {
        hcl.push_str(&host("w2", &k.hosts[2]));
    }
    let workers: Vec<String> = workers.iter().map(|w| format!("selfhost_vps_host.{w}.ssh")).collect();
    hcl.push_str(&format!(
        r#"
resource "selfhost_k8s_cluster" "main" {{
  version       = "v1.36.3"
{install}
  control_plane = selfhost_vps_host.cp.ssh
  workers       = [{workers}]
  pod_cidr      = "10.244.0.0/16"
  service_cidr  = "10.96.0.0/12"
  cni           = "flannel"

  # The test bed's hosts are containers sharing one kernel (cgroup v1, an
  # overlay root, no module loading): the settings testbed/README.md lists.
  node_settings {{
    containerd_snapshotter            = "native"
    containerd_restrict_oom_score_adj = true
    containerd_oom_score_adjust       = 0
    kubelet_cgroup_driver             = "cgroupfs"
    kubelet_cgroup_root               = "/{{node}}"
    kubelet_extra_config = jsonencode({{
      failCgroupV1 = false
      # TESTBED: the hosts share this machine's disk with everything on it;
      # the kubelet's image GC (from 85% of that disk) would delete the
      # bundle's images, which an air-gapped node cannot pull again.
      imageGCHighThresholdPercent = 100
      imageGCLowThresholdPercent  = 99
      evictionHard = {{
        "memory.available"   = "100Mi"
        "nodefs.available"   = "2Gi"
        "nodefs.inodesFree"  = "5%"
        "imagefs.available"  = "2Gi"
        "imagefs.inodesFree" = "5%"
      }}
    }})
    kube_proxy_extra_config = jsonencode({{
      mode      = "iptables"
      conntrack = {{ maxPerCore = 0, min = 0, tcpEstablishedTimeout = "0s", tcpCloseWaitTimeout = "0s" }}
    }})
    ignore_preflight_errors = ["SystemVerification"]
  }}

  namespace {{
    name   = "agents"
    labels = {{ team = "platform" }}
    quota  = {{ pods = "20", "limits.memory" = "4Gi" }}
    default_request = {{ cpu = "50m", memory = "32Mi" }}
    default_limit   = {{ cpu = "500m", memory = "128Mi" }}
  }}

  timeouts {{
    create = "25m"
    update = "25m"
  }}
}}

output "kubeconfig" {{
  value     = selfhost_k8s_cluster.main.kubeconfig
  sensitive = true
}}
"#,
        workers = workers.join(", ")
    ));
    hcl.push_str(extra);
    hcl
}

/// The real kubectl with the `kubeconfig` output of `wd` (written to its
/// directory).
pub fn cluster_kubectl(k: &K8sBed, wd: &super::Workdir) -> KubeBed {
    let path = wd.path.join("kubeconfig");
    std::fs::write(&path, wd.ok(&["output", "-raw", "kubeconfig"]).stdout).expect("write kubeconfig");
    KubeBed {
        kubectl: k.kubectl.clone(),
        kubeconfig: path.display().to_string(),
    }
}

/// `(name, ready)` of each node, through the real kubectl.
pub fn ready_nodes(kc: &KubeBed) -> Vec<(String, bool)> {
    let out = kc.ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
    ]);
    out.lines()
        .filter_map(|l| l.split_once(' ').map(|(n, r)| (n.to_owned(), r == "True")))
        .collect()
}
