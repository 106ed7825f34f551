//! The test bed's Kubernetes-capable hosts (`testbed up --k8s-hosts 3`) and
//! the air-gapped bundle, as the cluster tests see them: through
//! `testbed/testbed env` only, checked with plain OpenSSH and the real
//! kubectl. Also the cluster configuration those tests apply: no node
//! settings for kubeadm (the provider detects what the bed's container
//! hosts need), one explicit override for k3s.

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

/// Leftovers of an earlier, interrupted run (kubeadm's or k3s's) are
/// removed with kubeadm's own reset and plain shell, so the scenario starts
/// from hosts that never ran Kubernetes.
pub const FRESH_HOST: &str = r#"
command -v kubeadm >/dev/null 2>&1 && kubeadm reset -f >/dev/null 2>&1
# stop, then disable: `disable --now` stops nothing when a unit has no
# [Install] section (a hand-written one), and its socket would be removed
# below with the daemon still running.
systemctl stop k3s k3s-agent kubelet containerd >/dev/null 2>&1
systemctl disable k3s k3s-agent kubelet containerd >/dev/null 2>&1
# k3s's processes, the shims, and every pod process (its cgroup says kubepods).
for d in /proc/[0-9]*; do
  case "$(readlink "$d/exe" 2>/dev/null)" in /var/lib/rancher/k3s/data/*|/usr/local/bin/k3s|*containerd-shim*) kill -9 "${d#/proc/}" 2>/dev/null;; esac
  grep -q '/kubepods' "$d/cgroup" 2>/dev/null && kill -9 "${d#/proc/}" 2>/dev/null
done
sleep 1
awk '$2 ~ "^/(run/k3s|var/lib/rancher|var/lib/kubelet|run/containerd|var/lib/containerd|run/netns)/" {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
rm -rf /etc/rancher /var/lib/rancher /run/k3s /run/flannel /usr/local/bin/k3s /etc/systemd/system/k3s*.service* \
  /etc/kubernetes /var/lib/kubelet /var/lib/etcd /etc/kubeadm /etc/cni /opt/cni /var/lib/cni /var/lib/containerd /run/containerd \
  /etc/containerd /var/lib/selfhost /etc/systemd/system/kubelet.service* /etc/systemd/system/containerd.service* /usr/bin/kube* \
  /usr/local/bin/containerd* /usr/local/bin/ctr /usr/local/sbin/runc
ip link delete cni0 2>/dev/null; ip link delete flannel.1 2>/dev/null
systemctl daemon-reload
true
"#;

/// What must not be on a host after destroy or removal: checked with plain
/// shell, not with the provider's reset script.
pub const CLEAN_CHECK: &str = r#"
left=""
for f in /etc/kubernetes /var/log/kubernetes /var/lib/kubelet /var/lib/etcd /var/lib/containerd /run/containerd /etc/cni/net.d /var/lib/cni \
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
/// them, its node settings left to the provider's detection, then `extra`
/// (more resources).
pub fn cluster_config(k: &K8sBed, workers: &[&str], extra: &str) -> String {
    cluster_config_with(k, workers, &bundle_install(k), extra)
}

/// `install {}` from the bed's bundle.
fn bundle_install(k: &K8sBed) -> String {
    let install = format!(
        "  install {{\n    source = \"bundle\"\n    bundle = \"{}\"\n  }}",
        k.bundle
    );
    install
}

/// [`cluster_config`] with another `install {}` block.
pub fn cluster_config_with(k: &K8sBed, workers: &[&str], install: &str, extra: &str) -> String {
    cluster_config_of(k, workers, "", install, "", extra)
}

/// A k3s cluster from the bundle (its `k3s/k3s` is the bed's STAND-IN,
/// testbed/README.md), with one explicit node setting ([`K3S_OVERRIDE`]).
pub fn k3s_cluster_config(k: &K8sBed, workers: &[&str], extra: &str) -> String {
    k3s_cluster_config_with(k, workers, &bundle_install(k), extra)
}

/// [`k3s_cluster_config`] with another `install {}` block.
pub fn k3s_cluster_config_with(k: &K8sBed, workers: &[&str], install: &str, extra: &str) -> String {
    cluster_config_of(k, workers, "  distribution  = \"k3s\"\n", install, K3S_OVERRIDE, extra)
}

/// The cluster configuration: hosts `cp` and `workers`, the cluster with
/// `distribution` (a line, or ""), `install` and `settings` (blocks).
fn cluster_config_of(
    k: &K8sBed,
    workers: &[&str],
    distribution: &str,
    install: &str,
    settings: &str,
    extra: &str,
) -> String {
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
    let mut hcl = k.bed.provider_block();
    hcl.push_str(&host("cp", &k.hosts[0]));
    hcl.push_str(&host("w1", &k.hosts[1]));
    if workers.contains(&"w2") {
        hcl.push_str(&host("w2", &k.hosts[2]));
    }
    let workers: Vec<String> = workers.iter().map(|w| format!("selfhost_vps_host.{w}.ssh")).collect();
    hcl.push_str(&format!(
        r#"
resource "selfhost_k8s_cluster" "main" {{
{distribution}  version       = "v1.36.3"
{install}
  control_plane = selfhost_vps_host.cp.ssh
  workers       = [{workers}]
  pod_cidr      = "10.244.0.0/16"
  service_cidr  = "10.96.0.0/12"
  cni           = "flannel"

{settings}
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

/// The one explicit node setting of the k3s scenario: a kubelet field
/// the detection does not choose, merged over the detected ones (the
/// provider chooses the bed's settings from the hosts' facts; this proves
/// a configured value still overrides).
pub const K3S_OVERRIDE: &str = r#"  node_settings {
    kubelet_extra_config = jsonencode({ maxPods = 42 })
  }
"#;

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

/// A pod's securityContext (YAML flow) passing the "restricted" Pod
/// Security level, which the cluster's namespaces enforce by default.
pub const RESTRICTED_POD: &str = "{runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}";
/// A container's securityContext passing "restricted".
pub const RESTRICTED_CONTAINER: &str = "{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}";

/// The echo image's Deployment on `worker`, its Service, and a client pod
/// on the control plane fetching it through the Service's DNS name, both
/// following the "restricted" Pod Security rules of the `agents` namespace.
pub fn echo_through_service_dns(kc: &KubeBed, worker: &str, cp: &str) {
    let manifest = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: echo, namespace: agents}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: echo}}}}
  template:
    metadata: {{labels: {{app: echo}}}}
    spec:
      nodeSelector: {{kubernetes.io/hostname: {worker}}}
      securityContext: {RESTRICTED_POD}
      containers:
      - name: echo
        image: selfhost.test/echo:1
        imagePullPolicy: Never
        securityContext: {RESTRICTED_CONTAINER}
        ports: [{{containerPort: 8080}}]
        env:
        - name: POD_NAME
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
        readinessProbe: {{httpGet: {{path: /ready, port: 8080}}, periodSeconds: 2}}
---
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: agents}}
spec:
  selector: {{app: echo}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: agents}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {cp}}}
  tolerations: [{{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}}]
  securityContext: {RESTRICTED_POD}
  containers:
  - name: client
    image: selfhost.test/client:1
    imagePullPolicy: Never
    securityContext: {RESTRICTED_CONTAINER}
    command: [sleep, "3600"]
"#
    );
    kc.apply(&manifest);
    kc.ok(&["-n", "agents", "rollout", "status", "deployment/echo", "--timeout=180s"]);
    kc.ok(&[
        "-n",
        "agents",
        "wait",
        "--for=condition=Ready",
        "pod/client",
        "--timeout=180s",
    ]);
    let epod = kc.ok(&[
        "-n",
        "agents",
        "get",
        "pods",
        "-l",
        "app=echo",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let enode = kc.ok(&[
        "-n",
        "agents",
        "get",
        "pods",
        "-l",
        "app=echo",
        "-o",
        "jsonpath={.items[0].spec.nodeName}",
    ]);
    assert_eq!(enode, worker, "the echo pod runs on the worker");
    let mut answer = String::new();
    for _ in 0..30 {
        let (ok, out, err) = kc.run(
            &[
                "-n",
                "agents",
                "exec",
                "client",
                "--",
                "fetch",
                "http://echo.agents.svc.cluster.local/acceptance",
            ],
            None,
        );
        answer = format!("{}{}", out.trim(), err.trim());
        if ok {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    assert_eq!(answer, format!("echo from {epod}: GET /acceptance"));
}

/// `terraform import` of the cluster round-trips: it is removed from the
/// state, imported back with the control plane's SSH object as the ID
/// (what `jsonencode(selfhost_vps_host.cp.ssh)` gives an import block), and
/// the plan after is empty.
pub fn import_round_trip(wd: &super::Workdir) {
    let state = wd.show_json(None);
    let ssh = super::state_values(&state, "selfhost_vps_host.cp")["ssh"].clone();
    let id = serde_json::to_string(&ssh).expect("json");
    let kubeconfig_before = wd.ok(&["output", "-raw", "kubeconfig"]).stdout;
    wd.ok(&["state", "rm", "selfhost_k8s_cluster.main"]);
    // An ID of another form is refused with the expected one.
    let o = wd.run(&[
        "import",
        "-input=false",
        "-no-color",
        "selfhost_k8s_cluster.main",
        "root@10.0.0.1",
    ]);
    assert_ne!(o.code, Some(0), "{o}");
    assert!(o.output().contains("Invalid import ID"), "{o}");
    assert!(o.output().contains("jsonencode(selfhost_vps_host.cp.ssh)"), "{o}");
    let o = wd.ok(&["import", "-input=false", "-no-color", "selfhost_k8s_cluster.main", &id]);
    assert!(o.stdout.contains("Import successful"), "{o}");
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "the plan after an import must be empty\n{o}");
    let state = wd.show_json(None);
    let v = super::state_values(&state, "selfhost_k8s_cluster.main");
    assert_eq!(v["control_plane"], ssh);
    assert!(
        v["nodes"].as_array().is_some_and(|n| !n.is_empty()),
        "the nodes were read after the import: {v}"
    );
    let kubeconfig_after = wd.ok(&["output", "-raw", "kubeconfig"]).stdout;
    assert_eq!(
        kubeconfig_after, kubeconfig_before,
        "the imported kubeconfig is the cluster's admin kubeconfig"
    );
}

/// Destroy the cluster with the provider's INFO logs on, and check from
/// them the order destroy promises: every worker is clean before the
/// control plane's removal starts (`cp_removal` is the step's log message,
/// "kubeadm reset" or "removing k3s").
pub fn destroy_workers_first(k: &K8sBed, wd: &super::Workdir, cp: &Host, workers: &[&Host], cp_removal: &str) {
    let log = std::env::temp_dir().join(format!("selfhost-destroy-{}.log", std::process::id()));
    let log_path = log.to_string_lossy().into_owned();
    let o = wd.run_env(
        &["destroy", "-auto-approve", "-input=false", "-no-color"],
        &[("TF_LOG_PROVIDER", "INFO"), ("TF_LOG_PATH", &log_path)],
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert_eq!(o.code, Some(0), "destroy failed: {o}");
    let label = |h: &Host| format!("{}@{}:{}", k.bed.user, h.addr, h.port);
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in the provider's destroy log:\n{text}"))
    };
    let cp_starts = at(&format!("{}: {cp_removal}", label(cp)));
    for w in workers {
        let clean = at(&format!("{}: clean", label(w)));
        assert!(
            clean < cp_starts,
            "worker {} must be clean before the control plane's removal starts",
            w.addr
        );
    }
}
