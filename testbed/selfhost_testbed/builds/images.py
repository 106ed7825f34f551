"""The container images of the bundle: their references and what each is made of."""
from __future__ import annotations

import dataclasses

from ..versions import (COREDNS_PREVIOUS_VERSION, COREDNS_VERSION, ETCD_IMAGE_TAG, ETCD_PREVIOUS_IMAGE_TAG,
                        FLANNEL_CNI_PLUGIN_TAG, FLANNEL_VERSION, K8S_PREVIOUS_VERSION, K8S_VERSION,
                        KUBE_NETWORK_POLICIES_VERSION, METRICS_SERVER_VERSION, PAUSE_PREVIOUS_TAG, PAUSE_TAG,
                        PEBBLE_VERSION, TRAEFIK_VERSION, WORKLOAD_TAG)


@dataclasses.dataclass(frozen=True)
class Release:
    """The image tags that belong to one Kubernetes release (what its kubeadm lists)."""
    kubernetes: str
    etcd_tag: str
    coredns: str
    pause: str


CURRENT = Release(K8S_VERSION, ETCD_IMAGE_TAG, COREDNS_VERSION, PAUSE_TAG)
PREVIOUS = Release(K8S_PREVIOUS_VERSION, ETCD_PREVIOUS_IMAGE_TAG, COREDNS_PREVIOUS_VERSION, PAUSE_PREVIOUS_TAG)
# the images whose tag follows the Kubernetes release (`kubeadm config images list`); the previous bundle
# builds these and shares every other image archive with the current one
RELEASE_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "etcd", "coredns",
                  "pause")

# image name (its archive is images/<name>.tar) -> (layer keys, entrypoint); bundle.build_layers makes the layers
IMAGE_SPEC: dict[str, tuple[list[str], list[str] | None]] = {
    "kube-apiserver": (["base", "kube-apiserver"], None),
    "kube-controller-manager": (["base", "kube-controller-manager"], None),
    "kube-scheduler": (["base", "kube-scheduler"], None),
    "kube-proxy": (["base", "busybox", "iptables", "kube-proxy"], None),
    "etcd": (["base", "busybox", "etcd"], None),
    "coredns": (["base", "coredns"], ["/coredns"]),
    "pause": (["pause"], ["/pause"]),
    "flannel": (["base", "busybox", "iptables", "flannel"], ["/opt/bin/flanneld"]),
    "flannel-cni-plugin": (["base", "busybox", "flannel-cni-plugin"], ["/bin/sh"]),
    "metrics-server": (["base", "metrics-server"], ["/metrics-server"]),
    "pebble": (["base", "busybox", "pebble"], ["/usr/bin/pebble"]),
    # the pebble layer again (it holds both binaries): a node that imports both images stores it once
    "pebble-challtestsrv": (["base", "pebble"], ["/usr/bin/pebble-challtestsrv"]),
    # upstream's image runs an entrypoint.sh that puts `traefik` before arguments starting with "-": a pod
    # that sets only `args` runs traefik with them here too
    "traefik": (["base", "traefik"], ["/usr/local/bin/traefik"]),
    # no entrypoint, as upstream (distroless static + CMD ["/bin/netpol"]): its install.yaml and Helm chart
    # give `args: [/bin/netpol, --hostname-override=..., ...]`, which an entrypoint would turn into
    # `/bin/netpol /bin/netpol ...` (Go's flag parsing stops at the first non-flag: every flag ignored)
    "kube-network-policies": (["base", "kube-network-policies"], None),
    "echo": (["base", "echo"], ["/usr/local/bin/echo-server"]),
    "client": (["base", "busybox", "fetch"], ["/bin/sh"]),
    "restic": (["base", "busybox", "restic"], ["/usr/bin/restic"]),
}


# image name -> its Cmd, where it has one
IMAGE_CMD: dict[str, list[str]] = {"kube-network-policies": ["/bin/netpol"]}


def images_list(release: Release = CURRENT) -> list[tuple[str, str]]:
    """(reference, archive file name) of every image in the bundle of `release`."""
    r = [("registry.k8s.io/%s:%s" % (c, release.kubernetes), c + ".tar") for c in
         ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")]
    r += [("registry.k8s.io/etcd:" + release.etcd_tag, "etcd.tar"),
          ("registry.k8s.io/coredns/coredns:" + release.coredns, "coredns.tar"),
          ("registry.k8s.io/pause:" + release.pause, "pause.tar"),
          ("ghcr.io/flannel-io/flannel:" + FLANNEL_VERSION, "flannel.tar"),
          ("ghcr.io/flannel-io/flannel-cni-plugin:" + FLANNEL_CNI_PLUGIN_TAG, "flannel-cni-plugin.tar"),
          ("registry.k8s.io/metrics-server/metrics-server:" + METRICS_SERVER_VERSION, "metrics-server.tar"),
          ("ghcr.io/letsencrypt/pebble:" + PEBBLE_VERSION, "pebble.tar"),
          ("ghcr.io/letsencrypt/pebble-challtestsrv:" + PEBBLE_VERSION, "pebble-challtestsrv.tar"),
          ("docker.io/library/traefik:" + TRAEFIK_VERSION, "traefik.tar"),
          ("registry.k8s.io/networking/kube-network-policies:" + KUBE_NETWORK_POLICIES_VERSION,
           "kube-network-policies.tar"),
          ("selfhost.test/echo:" + WORKLOAD_TAG, "echo.tar"),
          ("selfhost.test/client:" + WORKLOAD_TAG, "client.tar"),
          ("selfhost.test/restic:" + WORKLOAD_TAG, "restic.tar")]
    return r
