"""Kubernetes from k8s.io/kubernetes on the Go module proxy (see gobuild's wrapper module): the control plane
(with kwok and etcd), and kubeadm/kubelet/kube-proxy for the bundle."""
from __future__ import annotations

import glob
import os

from .. import cache, gobuild
from ..versions import K8S_VERSION, KUBE_BINS, KUBE_CACHE_VERSION, KUBE_NODE_BINS, KWOK_VERSION

CONTROL_PLANE_PKGS = ("k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager",
                      "k8s.io/kubernetes/cmd/kube-scheduler", "k8s.io/kubernetes/cmd/kubectl",
                      "sigs.k8s.io/kwok/cmd/kwok", "go.etcd.io/etcd/server/v3")
# kwok does nothing without Stage configs; these ship in its module
KWOK_STAGES = ("node/fast", "node/heartbeat-with-lease", "pod/fast")


def kube_dir() -> str:
    return cache.cached("kubernetes", KUBE_CACHE_VERSION, build_kube, ["bin/" + b for b in KUBE_BINS])


def build_kube(dst: str) -> None:
    """The control plane binaries, kubectl, kwok and etcd: one `go build` in the wrapper module."""
    w = gobuild.kube_wrapper("kubebuild", "kubernetes-%s" % K8S_VERSION, "kubernetes-%s" % K8S_VERSION,
                             CONTROL_PLANE_PKGS, with_kwok=True)
    gobuild.build_into_bin(w, dst, CONTROL_PLANE_PKGS)
    os.rename(os.path.join(dst, "bin", "server"), os.path.join(dst, "bin", "etcd"))  # go names .../server/v3 "server"


def kwok_stages(kdir: str) -> str:
    """kwok needs Stage configs (it runs nothing without them); take the `fast` node/pod stages and
    the lease heartbeat that kwok itself ships in its module."""
    dst = os.path.join(kdir, "kwok-stages.yaml")
    if os.path.exists(dst):
        return dst
    info = gobuild.mod_download("sigs.k8s.io/kwok@" + KWOK_VERSION)
    base = os.path.join(info["Dir"], "kustomize", "stage")
    docs = []
    for sub in KWOK_STAGES:
        for y in sorted(glob.glob(os.path.join(base, sub, "*.yaml"))):
            if os.path.basename(y) == "kustomization.yaml":
                continue
            with open(y) as f:
                docs.append(f.read().strip() + "\n")
    cache.write_text(dst + ".tmp", "---\n".join(docs))
    os.rename(dst + ".tmp", dst)
    return dst


def kube_node_dir() -> str:
    """kubeadm, kubelet, kube-proxy: the same wrapper module as the control plane, one more `go build`."""
    pkgs = ["k8s.io/kubernetes/cmd/" + b for b in KUBE_NODE_BINS]

    def build(dst: str) -> None:
        w = gobuild.kube_wrapper("kubenode", "kubenode-%s" % K8S_VERSION, "kubenode-%s" % K8S_VERSION,
                                 list(gobuild.KUBE_ALWAYS) + pkgs, with_kwok=False)
        gobuild.build_into_bin(w, dst, pkgs)
    return cache.cached("kubernetes-node", K8S_VERSION, build, ["bin/" + b for b in KUBE_NODE_BINS])
