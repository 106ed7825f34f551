//! Taking Kubernetes off a node: `kubeadm reset`, then everything the
//! provider installed and everything kubeadm documents as left to the
//! admin (CNI configuration and interfaces, iptables rules), then a check
//! that nothing is left. Pure: the resource runs it over SSH.

use super::kubeadm::CRI_SOCKET;
use super::node::{BUNDLE_DIR, CGROUP_ROOT_SCRIPT, CONTAINERD_DROP_IN, MODULES_FILE, SYSCTL_FILE};

/// The reset script. It prints `clean` on success; otherwise it exits 1
/// and names what is left on stderr.
pub fn reset_script() -> String {
    format!(
        r#"set -u
if command -v kubeadm >/dev/null 2>&1; then
  kubeadm reset -f --cri-socket {cri} >/tmp/selfhost-kubeadm-reset.log 2>&1 || {{ tail -20 /tmp/selfhost-kubeadm-reset.log >&2; }}
  rm -f /tmp/selfhost-kubeadm-reset.log
fi
systemctl disable --now kubelet >/dev/null 2>&1 || true
# Containers the CRI still holds (kubeadm reset removes the pods' ones).
if command -v ctr >/dev/null 2>&1 && systemctl is-active --quiet containerd; then
  for c in $(ctr -n k8s.io c ls -q 2>/dev/null); do
    ctr -n k8s.io t kill -s SIGKILL "$c" >/dev/null 2>&1
    ctr -n k8s.io t rm -f "$c" >/dev/null 2>&1
    ctr -n k8s.io c rm "$c" >/dev/null 2>&1
  done
fi
systemctl disable --now containerd >/dev/null 2>&1 || true
# Shims outlive containerd; their containers are gone, so they end too.
pkill -x 'containerd-shim-runc-v2|containerd-shim-runc-v1|containerd-shim' 2>/dev/null || true
# Mounts kubelet and containerd left (deepest first).
awk '$2 ~ "^/(var/lib/kubelet|run/containerd|var/lib/containerd|run/netns)/" {{print $2}}' /proc/mounts | sort -r |
  while read -r m; do umount -l "$m" 2>/dev/null || true; done
# What kubeadm reset leaves to the admin: CNI configuration and interfaces, iptables rules.
for l in cni0 flannel.1 tunl0 vxlan.calico; do ip link delete "$l" >/dev/null 2>&1 || true; done
if command -v iptables >/dev/null 2>&1; then
  for t in filter nat mangle raw; do iptables -t "$t" -F 2>/dev/null; iptables -t "$t" -X 2>/dev/null; done
fi
if command -v nft >/dev/null 2>&1; then
  nft list tables 2>/dev/null | while read -r _ fam name; do
    case "$fam/$name" in ip/filter|ip/nat|ip/mangle|ip/raw|ip6/filter|ip6/nat|ip6/mangle|ip6/raw|ip/kube-proxy|ip6/kube-proxy|inet/kube-network-policies) nft delete table "$fam" "$name";; esac
  done
fi
# What the provider installed.
rm -rf /etc/kubernetes /var/lib/kubelet /var/lib/etcd /etc/kubeadm /var/log/kubernetes /etc/cni /opt/cni /var/lib/cni /run/flannel \
  /var/lib/selfhost/ingress-acme \
  /var/lib/containerd /run/containerd /etc/containerd {bundle} \
  /etc/systemd/system/kubelet.service /etc/systemd/system/kubelet.service.d \
  /etc/systemd/system/containerd.service {drop_in} {sysctl} {modules} {cgroup_script} \
  /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /usr/local/sbin/runc \
  /usr/local/bin/containerd /usr/local/bin/containerd-shim /usr/local/bin/containerd-shim-runc-v1 \
  /usr/local/bin/containerd-shim-runc-v2 /usr/local/bin/ctr
rmdir /etc/systemd/system/containerd.service.d /usr/local/lib/selfhost 2>/dev/null || true
systemctl daemon-reload
systemctl reset-failed kubelet.service containerd.service >/dev/null 2>&1 || true
# Check.
left=""
for f in /etc/kubernetes /var/log/kubernetes /var/lib/kubelet /var/lib/etcd /var/lib/containerd /etc/cni /usr/bin/kubelet /etc/systemd/system/kubelet.service; do
  [ ! -e "$f" ] || left="$left $f"
done
p=$(pgrep -x 'kubelet|kube-apiserver|etcd|kube-proxy|flanneld|coredns|kube-scheduler|kube-controller|containerd|pause' | tr '\n' ' ')
[ -z "$p" ] || left="$left processes($p)"
ip -o link show | grep -qE ' (cni0|flannel\.1|tunl0|vxlan\.calico)[:@]' && left="$left cni-interfaces"
if command -v nft >/dev/null 2>&1 && nft list ruleset 2>/dev/null | grep -qE 'KUBE|FLANNEL|cali-'; then left="$left iptables-rules"; fi
if [ -n "$left" ]; then echo "left on $(hostname):$left" >&2; exit 1; fi
echo clean
"#,
        cri = CRI_SOCKET,
        bundle = BUNDLE_DIR,
        drop_in = CONTAINERD_DROP_IN,
        sysctl = SYSCTL_FILE,
        modules = MODULES_FILE,
        cgroup_script = CGROUP_ROOT_SCRIPT,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reset_script_is_valid_sh() {
        crate::shell::assert_valid_sh(&super::reset_script());
    }
}
