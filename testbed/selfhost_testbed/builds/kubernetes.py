"""Kubernetes from k8s.io/kubernetes on the Go module proxy (see gobuild's wrapper module): the control plane
(with kwok and etcd), and kubeadm/kubelet/kube-proxy for the bundle; for the previous bundle, every binary of
the previous release in one build, and the etcd its kubeadm pins."""
from __future__ import annotations

import glob
import os

from .. import cache, config, gobuild, proc
from ..errors import TestbedError
from ..versions import K8S_PREVIOUS_VERSION, K8S_VERSION, KUBE_BINS, KUBE_CACHE_VERSION, KUBE_NODE_BINS, KWOK_VERSION

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


# the previous release's binaries: the control plane's, kubectl and the node's, ONE `go build` (no kwok, no etcd:
# kwok v0.8.0 wants the k8s.io libraries of v1.36, and the previous release's etcd is kubeadm's pin, built below)
RELEASE_BINS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl") + KUBE_NODE_BINS


def kube_release_dir(version: str = K8S_PREVIOUS_VERSION) -> str:
    """kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubeadm, kubelet, kube-proxy at
    `version`: one wrapper module requiring k8s.io/kubernetes alone, one `go build`."""
    pkgs = ["k8s.io/kubernetes/cmd/" + b for b in RELEASE_BINS]

    def build(dst: str) -> None:
        w = gobuild.kube_wrapper("kuberelease", "kubernetes-release-%s" % version, "kubernetes-release-%s" % version,
                                 pkgs, with_kwok=False, version=version, with_kwok_etcd=False)
        gobuild.build_into_bin(w, dst, pkgs)
        got = proc.out([os.path.join(dst, "bin", "kubeadm"), "version", "-o", "short"]).strip()
        if got != version:
            raise TestbedError("kubeadm built from k8s.io/kubernetes %s says %r" % (version, got))
    return cache.cached("kubernetes-release", version, build, ["bin/" + b for b in RELEASE_BINS])


def etcd_dir(version: str) -> str:
    """etcd (go.etcd.io/etcd/server/v3 at `version`, the main package that the control plane's build also
    names) in its own wrapper module: its go.mod replaces its sibling modules with ../ paths, ignored there."""
    def build(dst: str) -> None:
        gobuild.need_go()
        lf = cache.build_log("etcd-%s" % version)
        env = gobuild.go_env()
        info = gobuild.mod_download("go.etcd.io/etcd/server/v3@" + version, env)
        with open(info["GoMod"]) as f:
            go_line = gobuild.go_directive(f.read())
        wd = cache.fresh_dir(os.path.join(config.get().cache, "src", "etcd-%s" % version))
        cache.write_text(os.path.join(wd, "go.mod"), "module selfhost.test/etcd\n\ngo %s\n\nrequire "
                         "go.etcd.io/etcd/server/v3 %s\n" % (go_line, version))
        cache.write_text(os.path.join(wd, "tools.go"), gobuild.tools_go_one("go.etcd.io/etcd/server/v3"))
        proc.run(["go", "mod", "tidy"], cwd=wd, env=env, logfile=lf)
        w = gobuild.Wrapper(wd, "-s -w", env, lf)
        gobuild.build_into_bin(w, dst, ["go.etcd.io/etcd/server/v3"])
        os.rename(os.path.join(dst, "bin", "server"), os.path.join(dst, "bin", "etcd"))
        got = proc.out([os.path.join(dst, "bin", "etcd"), "--version"])
        if "etcd Version: %s" % version.lstrip("v") not in got:
            raise TestbedError("etcd built at %s says %r" % (version, got))
    return cache.cached("etcd", version, build, ["bin/etcd"])
