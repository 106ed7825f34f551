//! k3s on a node, as k3s documents it: the binary at `/usr/local/bin/k3s`,
//! `/etc/rancher/k3s/config.yaml` (keys = its CLI flags), kubelet drop-ins
//! in `/etc/rancher/k3s/kubelet.conf.d/` (k3s v1.32+), air-gap images in
//! `/var/lib/rancher/k3s/agent/images/`, the units the install script
//! writes (`k3s.service`, `k3s-agent.service`, `Type=notify`), the server
//! token in `/var/lib/rancher/k3s/server/node-token` and the admin
//! kubeconfig in `/etc/rancher/k3s/k3s.yaml`. Removal does what
//! `k3s-killall.sh` and `k3s-uninstall.sh` do. Pure: the resource runs
//! these over SSH.
//!
//! The configuration file is YAML whose keys are fixed here and whose every
//! value is validated first and written as a JSON string (a YAML
//! double-quoted scalar), never pasted as plain text.

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::bundle::layout;
use super::spec::{ClusterSpec, Version, api_endpoint};
use crate::network::Hostname;
use crate::shell::quote;

/// Where the k3s binary is installed.
pub const BINARY: &str = "/usr/local/bin/k3s";
/// k3s's configuration file; its keys are k3s's CLI flags.
pub const CONFIG: &str = "/etc/rancher/k3s/config.yaml";
/// The kubelet drop-in that carries the cluster's kubelet settings.
pub const KUBELET_DROP_IN: &str = "/etc/rancher/k3s/kubelet.conf.d/50-selfhost.conf";
/// The admin kubeconfig the k3s server writes.
pub const KUBECONFIG: &str = "/etc/rancher/k3s/k3s.yaml";
/// The server's join token, read to join the other nodes.
pub const NODE_TOKEN: &str = "/var/lib/rancher/k3s/server/node-token";
/// Where air-gap image archives are placed for k3s to import at start.
pub const IMAGES_DIR: &str = "/var/lib/rancher/k3s/agent/images";
/// The address k3s writes into its kubeconfig; the provider hands out the
/// control plane's reachable address instead.
pub const LOCAL_SERVER: &str = "https://127.0.0.1:6443";
/// Where the binary is in the bundle (the k3s release asset's name), and
/// the release's checksum file.
pub const BUNDLE_BINARY: &str = layout::K3S;
/// The checksum file published with each k3s release (`<sha256>  k3s` lines).
pub const RELEASE_SUMS: &str = "sha256sum-amd64.txt";
/// Official release base (`<base>/<release, '+' as %2B>/k3s`).
pub const RELEASE_BASE: &str = "https://github.com/k3s-io/k3s/releases/download";

/// The k3s server's state directory (k3s makes it at its first start).
pub const SERVER_DIR: &str = "/var/lib/rancher/k3s/server";
/// The audit policy on a k3s server (k3s's server directory, as its CIS
/// hardening guide places it).
pub const AUDIT_POLICY: &str = "/var/lib/rancher/k3s/server/audit-policy.json";
/// The audit log on a k3s server.
pub const AUDIT_LOG: &str = "/var/lib/rancher/k3s/server/logs/audit.log";
/// The key version the provider last rotated k3s's encryption key to (k3s
/// names its keys by date; this file ties them to
/// `secrets_encryption_key_version`).
pub const KEY_VERSION_FILE: &str = "/var/lib/rancher/k3s/server/selfhost-encryption-key-version";
/// k3s's own encryption configuration (k3s writes and rotates it).
pub const ENCRYPTION_CONFIG: &str = "/var/lib/rancher/k3s/server/cred/encryption-config.json";

/// What a k3s node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum K3sRole {
    /// Runs the control plane (`k3s server`).
    Server,
    /// Runs workloads only and joins a server (`k3s agent`).
    Agent,
}

impl K3sRole {
    /// The systemd unit's name: `k3s` or `k3s-agent`.
    pub fn unit_name(self) -> &'static str {
        match self {
            K3sRole::Server => "k3s",
            K3sRole::Agent => "k3s-agent",
        }
    }

    /// Where the unit file is written, as the install script does.
    pub fn unit_path(self) -> &'static str {
        match self {
            K3sRole::Server => "/etc/systemd/system/k3s.service",
            K3sRole::Agent => "/etc/systemd/system/k3s-agent.service",
        }
    }

    fn subcommand(self) -> &'static str {
        match self {
            K3sRole::Server => "server",
            K3sRole::Agent => "agent",
        }
    }
}

/// The k3s release for Kubernetes `version` with release suffix `k3sN`
/// (`v1.36.3+k3s1`).
pub fn release(version: &Version, k3s_release: u32) -> String {
    format!("{version}+k3s{k3s_release}")
}

/// The release's URL of `file` under `base` (the `+` of the tag escaped as
/// GitHub's release URLs have it).
pub fn release_url(base: &str, release: &str, file: &str) -> String {
    format!("{}/{}/{file}", base.trim_end_matches('/'), release.replace('+', "%2B"))
}

/// The unit as k3s's install script writes it.
pub fn unit(role: K3sRole) -> String {
    format!(
        r#"# Written by terraform-provider-selfhost (selfhost_k8s_cluster), as k3s's install script writes it.
[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-/etc/systemd/system/{name}.service.env
KillMode=process
Delegate=yes
User=root
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart={BINARY} {sub}
"#,
        name = role.unit_name(),
        sub = role.subcommand()
    )
}

/// A YAML document of `key: value` lines; every scalar is a JSON string
/// (a YAML double-quoted scalar), lists are block sequences of them.
fn yaml(entries: &[(&str, Value)]) -> String {
    let mut out = String::from("# Written by terraform-provider-selfhost (selfhost_k8s_cluster).\n");
    for (k, v) in entries {
        match v {
            Value::Array(items) => {
                out.push_str(&format!("{k}:\n"));
                for i in items {
                    out.push_str(&format!("  - {i}\n"));
                }
            }
            other => out.push_str(&format!("{k}: {other}\n")),
        }
    }
    out
}

/// What every node's config has: its name, its address when the SSH host
/// is one, the snapshotter.
fn node_entries(spec: &ClusterSpec, node: &Hostname, address: &str) -> Vec<(&'static str, Value)> {
    let mut e = vec![("node-name", json!(node.as_str()))];
    if let Ok(ip) = address.parse::<IpAddr>() {
        e.push(("node-ip", json!(ip.to_string())));
    }
    e.push(("snapshotter", json!(spec.settings.snapshotter)));
    e
}

/// `config.yaml` of the server `node` reached at `address`; `flannel`
/// false for `cni = "none"`.
pub fn server_config(spec: &ClusterSpec, node: &Hostname, address: &str, flannel: bool) -> String {
    let mut e = node_entries(spec, node, address);
    e.push(("cluster-cidr", json!(spec.pod_cidr.to_string())));
    e.push(("service-cidr", json!(spec.service_cidr.to_string())));
    e.push(("tls-san", json!([spec.endpoint])));
    e.push(("write-kubeconfig-mode", json!("0600")));
    // the cluster's add-ons (its ingress and metrics-server) are this
    // provider's, the same as with kubeadm, not k3s's packaged ones
    e.push(("disable", json!(["traefik", "metrics-server"])));
    if !flannel {
        e.push(("flannel-backend", json!("none")));
        e.push(("disable-network-policy", json!(true)));
    }
    if spec.api_server.encryption.is_some() {
        e.push(("secrets-encryption", json!(true)));
        e.push(("secrets-encryption-provider", json!("secretbox")));
    }
    if spec.api_server.audit_log {
        e.push((
            "kube-apiserver-arg",
            json!([
                format!("audit-policy-file={AUDIT_POLICY}"),
                format!("audit-log-path={AUDIT_LOG}"),
                format!("audit-log-maxsize={}", super::apiserver::AUDIT_MAX_SIZE_MB),
                format!("audit-log-maxbackup={}", super::apiserver::AUDIT_MAX_BACKUPS),
            ]),
        ));
    }
    yaml(&e)
}

/// `config.yaml` of the agent `node`: the server and its token (secret:
/// the file is 0600 and goes over stdin).
pub fn agent_config(spec: &ClusterSpec, node: &Hostname, address: &str, token: &NodeToken) -> String {
    let mut e = vec![
        ("server", json!(format!("https://{}", spec.control_plane_endpoint()))),
        ("token", json!(token.0)),
    ];
    e.extend(node_entries(spec, node, address));
    yaml(&e)
}

/// The kubelet drop-in: the cgroup settings and the extra fields.
pub fn kubelet_drop_in(spec: &ClusterSpec, node: &Hostname) -> String {
    let mut m = Map::new();
    m.insert("apiVersion".into(), json!("kubelet.config.k8s.io/v1beta1"));
    m.insert("kind".into(), json!("KubeletConfiguration"));
    m.insert("cgroupDriver".into(), json!(spec.settings.cgroup_driver.as_str()));
    if let Some(root) = spec.cgroup_root_for(node) {
        m.insert("cgroupRoot".into(), json!(root));
    }
    for (k, v) in &spec.settings.kubelet_extra {
        m.insert(k.clone(), v.clone());
    }
    format!("{}\n", Value::Object(m))
}

/// The server's join token, `K10<sha256 of the cluster CA>::server:<secret>`.
/// Secret: never logged, never in argv.
pub struct NodeToken(String);

impl NodeToken {
    /// Parse the contents of the server's `node-token` file.
    ///
    /// # Errors
    /// A message (never quoting the token) when it is not `K10<sha256>::server:<secret>`.
    pub fn parse(text: &str) -> Result<NodeToken, String> {
        let t = text.trim();
        let bad = || "the server's node-token is not `K10<sha256>::server:<secret>`".to_owned();
        let rest = t.strip_prefix("K10").ok_or_else(bad)?;
        let (hash, secret) = rest.split_once("::server:").ok_or_else(bad)?;
        let ok = hash.len() == 64
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
            && !secret.is_empty()
            && secret.len() <= 256
            && secret.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if ok { Ok(NodeToken(t.to_owned())) } else { Err(bad()) }
    }
}

/// The admin kubeconfig k3s wrote, pointed at `endpoint` (the address
/// Terraform reaches) instead of 127.0.0.1: each `server:` line (block
/// style, as k3s writes it) naming the local server is rewritten, and the
/// local address anywhere else is refused. A blind text replacement put an
/// IPv6 endpoint's brackets into whatever held the address, e.g. a YAML
/// flow mapping, where they broke the YAML (found by fuzz/kubeconfig).
pub fn kubeconfig_for(local: &str, endpoint: &str) -> Result<String, String> {
    let server = format!("https://{}", api_endpoint(endpoint));
    let mut out = String::with_capacity(local.len() + server.len());
    let mut rewritten = false;
    for line in local.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let rest = body.trim_start();
        let item = if rest.starts_with("- ") { 2 } else { 0 };
        if rest[item..].strip_prefix("server:").map(str::trim) == Some(LOCAL_SERVER) {
            out.push_str(&body[..body.len() - rest.len() + item]);
            out.push_str("server: ");
            out.push_str(&server);
            out.push_str(&line[body.len()..]);
            rewritten = true;
        } else {
            out.push_str(line);
        }
    }
    if !rewritten {
        return Err(format!("{KUBECONFIG} does not name the server {LOCAL_SERVER}"));
    }
    if out.contains(LOCAL_SERVER) {
        return Err(format!(
            "{KUBECONFIG} names {LOCAL_SERVER} outside a `server:` line; it is not the file k3s writes"
        ));
    }
    Ok(out)
}

/// Install the binary and the image archives from the payload at `dir`
/// after checking every file, write nothing else. Idempotent.
pub fn install_script(dir: &str) -> String {
    format!(
        r#"set -eu
cd {dir}
sha256sum -c --quiet {sums}
install -m 0755 {bin} {BINARY}
mkdir -p {IMAGES_DIR} /etc/rancher/k3s/kubelet.conf.d
if [ -d {images} ]; then
  for f in {images}/*.tar; do
    [ -e "$f" ] || continue
    ln -f "$f" {IMAGES_DIR}/ 2>/dev/null || cp -f "$f" {IMAGES_DIR}/
  done
fi
"#,
        dir = quote(dir),
        sums = layout::SHA256SUMS,
        bin = BUNDLE_BINARY,
        images = layout::IMAGES,
    )
}

/// Enable and start `role`'s unit; `systemctl` returns once k3s reports
/// ready (`Type=notify`). On failure, the unit's last log lines.
pub fn start_script(role: K3sRole) -> String {
    let u = role.unit_name();
    format!(
        "systemctl daemon-reload\nif ! systemctl enable --now {u}.service >/dev/null 2>&1 || ! systemctl is-active --quiet {u}.service; then\n  journalctl -u {u}.service -n 20 --no-pager >&2 || true\n  exit 1\nfi\n"
    )
}

/// Restart `role`'s unit (a repair: stopped by hand, or after a reboot).
pub fn restart_script(role: K3sRole) -> String {
    let u = role.unit_name();
    format!(
        "systemctl daemon-reload\nsystemctl enable {u}.service >/dev/null 2>&1\nif ! systemctl restart {u}.service; then\n  journalctl -u {u}.service -n 20 --no-pager >&2 || true\n  exit 1\nfi\n"
    )
}

/// One exec that tells a k3s node's state in the `key=value` lines of
/// [`super::probe::parse_probe`]: k3s runs containerd and the kubelet
/// itself, so both follow its unit.
pub fn probe_script() -> String {
    format!(
        r#"set -u
echo "hostname=$(hostname)"
unit=""
[ -e {agent_unit} ] && unit=k3s-agent
[ -e {server_unit} ] && unit=k3s
if [ -n "$unit" ] && systemctl is-active --quiet "$unit"; then s=active; else s=inactive; fi
echo "containerd=$s"; echo "kubelet=$s"; echo "service=$unit"
if [ -n "$unit" ] && systemctl is-enabled --quiet "$unit" 2>/dev/null; then echo joined=yes; else echo joined=no; fi
if [ -e {token} ]; then
  echo initialized=yes
{readyz}else
  echo initialized=no
fi
if [ -x {BINARY} ]; then echo "k3s=$({BINARY} --version 2>/dev/null | head -n 1)"; else echo k3s=; fi
if [ "$unit" = k3s ] && [ -e {CONFIG} ]; then
  grep -q '^secrets-encryption: true' {CONFIG} && echo apiserver_encryption=yes || echo apiserver_encryption=no
  grep -q 'audit-policy-file=' {CONFIG} && echo apiserver_audit=yes || echo apiserver_audit=no
  if timeout 30 {BINARY} secrets-encrypt status 2>/dev/null | grep -q '^Encryption Status: Enabled'; then
    v=$(cat {KEY_VERSION_FILE} 2>/dev/null | tr -cd 0-9)
    echo "encryption_layout=secretbox:key${{v:-0}};identity"
  fi
  [ -e {AUDIT_POLICY} ] && echo "audit_policy=$(sha256sum {AUDIT_POLICY} | cut -d' ' -f1)"
fi
{facts}"#,
        facts = super::facts::SCRIPT,
        agent_unit = K3sRole::Agent.unit_path(),
        server_unit = K3sRole::Server.unit_path(),
        token = NODE_TOKEN,
        readyz = super::probe::readyz_probe(&format!("{BINARY} kubectl")),
    )
}

/// Whether `k3s secrets-encrypt status` says Secrets are encrypted
/// (`Encryption Status: Enabled`); `None` when it printed no status.
pub fn encryption_enabled(status: &str) -> Option<bool> {
    let line = status
        .lines()
        .find_map(|l| l.trim().strip_prefix("Encryption Status:"))?;
    Some(line.trim() == "Enabled")
}

/// `k3s secrets-encrypt <command>` on the server (it rewrites Secrets
/// through the API server itself; nothing secret is printed).
pub fn secrets_encrypt_script(command: &str) -> String {
    format!(
        "set -e
{BINARY} secrets-encrypt {}
",
        quote(command)
    )
}

/// `k3s kubectl` (the admin kubeconfig k3s wrote), arguments quoted.
pub fn kubectl(args: &[&str]) -> String {
    let mut s = format!("{BINARY} kubectl");
    for a in args {
        s.push(' ');
        s.push_str(&quote(a));
    }
    s.push('\n');
    s
}

/// What `k3s-killall.sh` and `k3s-uninstall.sh` do, plus the payload the
/// provider staged in `staging`; prints `clean`, or exits 1 naming what is
/// left.
pub fn uninstall_script(staging: &str) -> String {
    format!(
        r#"set -u
for u in k3s k3s-agent; do systemctl disable --now "$u.service" >/dev/null 2>&1 || true; done
# k3s-killall.sh: the shims and their containers, and anything still
# running from k3s's data directory (KillMode=process leaves them).
roots=""
for d in /proc/[0-9]*; do
  exe=$(readlink "$d/exe" 2>/dev/null) || continue
  case "$exe" in /var/lib/rancher/k3s/data/*|{BINARY}) roots="$roots ${{d#/proc/}}";; esac
done
all=""
while [ -n "$(echo $roots)" ]; do
  all="$all $roots"
  kids=""
  for p in $roots; do kids="$kids $(ps -o pid= --ppid "$p" 2>/dev/null)"; done
  roots=$(echo $kids)
done
# Pod processes whose shim is already gone (the kubelet's cgroups say so).
for d in /proc/[0-9]*; do
  grep -q '/kubepods' "$d/cgroup" 2>/dev/null && all="$all ${{d#/proc/}}"
done
if [ -n "$(echo $all)" ]; then
  kill -9 $all 2>/dev/null || true
  i=0
  while [ $i -lt 50 ]; do
    alive=""
    for p in $all; do [ ! -d "/proc/$p" ] || alive="$alive $p"; done
    [ -n "$alive" ] || break
    i=$((i + 1)); sleep 0.2
  done
fi
awk '$2 ~ "^/(run/k3s|var/lib/rancher/k3s|var/lib/kubelet|run/netns/cni-)" {{print $2}}' /proc/mounts | sort -r |
  while read -r m; do umount -l "$m" 2>/dev/null || true; done
rm -f /run/netns/cni-*
for l in cni0 flannel.1 flannel-v6.1 kube-ipvs0 flannel-wg flannel-wg-v6; do ip link delete "$l" >/dev/null 2>&1 || true; done
for t in iptables ip6tables; do
  if command -v "$t-save" >/dev/null 2>&1; then
    "$t-save" 2>/dev/null | grep -v KUBE- | grep -v CNI- | grep -iv flannel | "$t-restore" 2>/dev/null || true
  fi
done
# Hosts without the iptables tools: the iptables-nft tables holding those
# rules, and kube-proxy's own (the firewall's inet table is not touched).
if command -v nft >/dev/null 2>&1; then
  nft list tables 2>/dev/null | while read -r _ fam name; do
    case "$fam/$name" in
      ip/kube-proxy|ip6/kube-proxy) nft delete table "$fam" "$name" 2>/dev/null;;
      ip/filter|ip/nat|ip/mangle|ip/raw|ip6/filter|ip6/nat|ip6/mangle|ip6/raw)
        nft list table "$fam" "$name" 2>/dev/null | grep -qiE 'KUBE-|CNI-|FLANNEL' && nft delete table "$fam" "$name" 2>/dev/null;;
    esac
  done
fi
# k3s-uninstall.sh
rm -rf /etc/rancher/k3s /run/k3s /run/flannel /var/lib/rancher/k3s /var/lib/kubelet /var/lib/cni \
  /var/lib/selfhost/ingress-acme \
  {BINARY} {server_unit} {agent_unit} /etc/systemd/system/k3s.service.env /etc/systemd/system/k3s-agent.service.env \
  /var/log/pods /var/log/containers {staging}
# containerd keeps its shims' sockets under /run/containerd/s whatever its
# state directory, and a killed shim leaves its socket: the ones nothing
# listens on go (another containerd's live ones stay), then the directory
# if empty.
if [ -d /run/containerd/s ]; then
  live=$(ss -xlH 2>/dev/null | awk '{{print $5}}')
  for f in /run/containerd/s/*; do
    [ -S "$f" ] || continue
    printf '%s\n' "$live" | grep -qxF "$f" || rm -f "$f"
  done
fi
rmdir /etc/rancher /var/lib/rancher /run/containerd/s /run/containerd 2>/dev/null || true
systemctl daemon-reload
systemctl reset-failed k3s.service k3s-agent.service >/dev/null 2>&1 || true
# Check.
left=""
for f in /etc/rancher/k3s /var/lib/rancher/k3s /var/lib/kubelet /run/k3s {BINARY} {server_unit} {agent_unit}; do
  [ ! -e "$f" ] || left="$left $f"
done
p=""
for n in k3s k3s-server k3s-agent kubelet kube-apiserver etcd kube-proxy flanneld coredns kube-scheduler kube-controller pause; do
  p="$p$(pgrep -x "$n" | tr '\n' ' ')"
done
# containerd only when it is k3s's own (run from k3s's data directory): the
# host's own containerd (`container_runtime = "containerd"`) keeps running.
for d in /proc/[0-9]*; do
  exe=$(readlink "$d/exe" 2>/dev/null) || continue
  case "$exe" in /var/lib/rancher/k3s/data/*|{BINARY}*) p="$p${{d#/proc/}} ";; esac
done
[ -z "$p" ] || left="$left processes($p)"
ip -o link show 2>/dev/null | grep -qE ' (cni0|flannel\.1)[:@]' && left="$left cni-interfaces"
if command -v nft >/dev/null 2>&1 && nft list ruleset 2>/dev/null | grep -qiE 'KUBE-|FLANNEL'; then left="$left iptables-rules"; fi
if [ -n "$left" ]; then echo "left on $(hostname):$left" >&2; exit 1; fi
echo clean
"#,
        server_unit = K3sRole::Server.unit_path(),
        agent_unit = K3sRole::Agent.unit_path(),
        staging = quote(staging),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::spec::{ImageSource, NodeSettings};
    use crate::network as validate;

    fn spec(settings: NodeSettings) -> ClusterSpec {
        ClusterSpec::new(
            "v1.36.3",
            "10.77.0.20",
            "10.244.0.0/16",
            "10.96.0.0/12",
            ImageSource::Bundle,
            settings,
        )
        .expect("valid")
    }

    #[test]
    fn configs_are_yaml_with_every_value_quoted() {
        let node = validate::hostname("tb-k8s1").expect("name");
        let s = spec(NodeSettings {
            snapshotter: "native".into(),
            ..NodeSettings::default()
        });
        assert_eq!(
            server_config(&s, &node, "10.77.0.20", true),
            "# Written by terraform-provider-selfhost (selfhost_k8s_cluster).\n\
             node-name: \"tb-k8s1\"\nnode-ip: \"10.77.0.20\"\nsnapshotter: \"native\"\n\
             cluster-cidr: \"10.244.0.0/16\"\nservice-cidr: \"10.96.0.0/12\"\n\
             tls-san:\n  - \"10.77.0.20\"\nwrite-kubeconfig-mode: \"0600\"\n\
             disable:\n  - \"traefik\"\n  - \"metrics-server\"\n"
        );
        assert!(server_config(&s, &node, "vps.example.com", false).contains("flannel-backend: \"none\"\n"));
        assert!(!server_config(&s, &node, "vps.example.com", true).contains("node-ip"));
        let worker = validate::hostname("tb-k8s2").expect("name");
        let token = NodeToken::parse(&format!("K10{}::server:s3cr3t\n", "ab".repeat(32))).expect("token");
        let a = agent_config(&s, &worker, "10.77.0.21", &token);
        assert!(a.starts_with(&format!(
            "# Written by terraform-provider-selfhost (selfhost_k8s_cluster).\nserver: \"https://10.77.0.20:6443\"\ntoken: \"K10{}::server:s3cr3t\"\nnode-name: \"tb-k8s2\"\n",
            "ab".repeat(32)
        )), "{a}");
    }

    #[test]
    fn tokens_are_checked_before_they_reach_a_file() {
        let hash = "0f".repeat(32);
        assert!(NodeToken::parse(&format!("K10{hash}::server:abc")).is_ok());
        for bad in [
            "".to_owned(),
            "K10abc::server:x".to_owned(),
            format!("K10{hash}::node:abc"),
            format!("K10{hash}::server:"),
            format!("K10{hash}::server:a\"b"),
            format!("K10{hash}::server:a b"),
        ] {
            assert!(NodeToken::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_kubelet_drop_in_has_the_settings_and_the_node_root() {
        let node = validate::hostname("n1").expect("name");
        let mut extra = std::collections::BTreeMap::new();
        extra.insert("failCgroupV1".to_owned(), json!(false));
        let s = spec(NodeSettings {
            cgroup_driver: crate::cluster::CgroupDriver::Cgroupfs,
            cgroup_root: Some("/{node}".into()),
            kubelet_extra: extra,
            ..NodeSettings::default()
        });
        let v: Value = serde_json::from_str(&kubelet_drop_in(&s, &node)).expect("json");
        assert_eq!(
            v,
            json!({"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                   "cgroupDriver": "cgroupfs", "cgroupRoot": "/n1", "failCgroupV1": false})
        );
    }

    #[test]
    fn versions_urls_and_kubeconfig() {
        let v = Version::parse("v1.36.3").expect("v");
        assert_eq!(release(&v, 1), "v1.36.3+k3s1");
        assert_eq!(
            release_url(RELEASE_BASE, "v1.36.3+k3s1", "k3s"),
            "https://github.com/k3s-io/k3s/releases/download/v1.36.3%2Bk3s1/k3s"
        );
        assert_eq!(
            crate::cluster::probe::k3s_kubernetes_version("k3s version v1.36.3+k3s1 (0123abcd)").as_deref(),
            Some("v1.36.3")
        );
        assert_eq!(
            crate::cluster::probe::k3s_kubernetes_version("k3s version v1.36.3 (x)"),
            None
        );
        assert_eq!(crate::cluster::probe::k3s_kubernetes_version(""), None);
        let kc = "clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n";
        assert_eq!(
            kubeconfig_for(kc, "fd00::1").expect("rewritten"),
            "clusters:\n- cluster:\n    server: https://[fd00::1]:6443\n"
        );
        assert!(kubeconfig_for("server: https://10.0.0.1:6443", "x").is_err());
        // fuzz/kubeconfig's find: the address inside a flow mapping is
        // refused, not rewritten into YAML that no longer parses
        let flow = "clusters:\n- cluster: {server: https://127.0.0.1:6443}\n";
        assert!(kubeconfig_for(flow, "fd00::1").is_err());
        let both = format!("{kc}users:\n- name: {{x: https://127.0.0.1:6443 u}}\n");
        assert!(kubeconfig_for(&both, "10.0.0.1").is_err());
        // a real k3s.yaml keeps every other byte
        let real = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: AAAA\n    server: https://127.0.0.1:6443\r\n  name: default\n";
        assert_eq!(
            kubeconfig_for(real, "192.0.2.7").expect("rewritten"),
            real.replace("127.0.0.1", "192.0.2.7")
        );
    }

    #[test]
    fn scripts_are_valid_sh() {
        for s in [
            install_script("/var/lib/selfhost/k8s-bundle"),
            start_script(K3sRole::Server),
            restart_script(K3sRole::Agent),
            probe_script(),
            uninstall_script("/var/lib/selfhost/k8s-bundle"),
            kubectl(&["get", "nodes"]),
        ] {
            crate::shell::assert_valid_sh(&s);
        }
        assert!(unit(K3sRole::Agent).contains("\nExecStart=/usr/local/bin/k3s agent\n"));
        assert!(unit(K3sRole::Server).contains("\nType=notify\n"));
    }
}
