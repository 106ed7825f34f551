"""`testbed bundle`: an air-gapped Kubernetes bundle for the k8s hosts, built from the registries only (Go
module proxy, Debian) and cached by version.  Layout: testbed/README.md, "The Kubernetes bundle"."""
from __future__ import annotations

import concurrent.futures
import dataclasses
import glob
import json
import os
import shutil
import time
from typing import Callable

from .. import assets, cache, gobuild, proc
from ..versions import (BUNDLE_PREVIOUS_VERSION, BUNDLE_VERSION, CNI_FLANNEL_VERSION, COREDNS_PREVIOUS_VERSION,
                        COREDNS_VERSION, ETCD_PREVIOUS_VERSION, ETCD_VERSION, FLANNEL_VERSION, IMAGE_DEBS,
                        K3S_PREVIOUS_VERSION, K3S_STANDIN_VERSION, K3S_VERSION, K8S_PREVIOUS_VERSION, K8S_VERSION,
                        KUBE_NETWORK_POLICIES_RECIPE, KUBE_NETWORK_POLICIES_VERSION, KUBE_NODE_BINS,
                        METRICS_SERVER_VERSION, NODE_DEBS, PEBBLE_VERSION, RESTIC_DEBS, TRAEFIK_VERSION)
from . import addons, debs, images, k3s_standin, kubernetes, oci

BUNDLE_FILES = ["MANIFEST.json", "images/images.txt", "kubernetes/bin/linux/amd64/kubeadm", "k3s/k3s"]
CONTROL_PLANE_RELEASE_BINS = ("kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
CONTAINERD_BINS = ("containerd", "containerd-shim", "containerd-shim-runc-v1", "containerd-shim-runc-v2", "ctr")
DOC_DIRS = ("usr/share/doc", "usr/share/man", "usr/share/lintian", "usr/share/locale", "usr/share/info")
SHELL_COMPLETION_DIRS = ("usr/share/zsh", "usr/share/bash-completion", "usr/share/fish")
IPTABLES_NFT_LINKS = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
                      "ip6tables-restore")
POD_CIDR = "10.244.0.0/16"
# like distroless static: root, nobody and nonroot (65532, the uid traefik's pod runs as), and name lookups
# through files then DNS
BASE_PASSWD = ("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
               "nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n")
BASE_GROUP = "root:x:0:\nnogroup:x:65534:\nnonroot:x:65532:\n"
BASE_NSSWITCH = "hosts: files dns\n"


def bundle_dir() -> str:
    return cache.cached("k8s-bundle", BUNDLE_VERSION, build_bundle, BUNDLE_FILES)


def bundle_dir_if_built() -> str | None:
    d = cache.cache_dir("k8s-bundle", BUNDLE_VERSION)
    return d if os.path.exists(os.path.join(d, ".complete")) else None


@dataclasses.dataclass(frozen=True)
class DebParts:
    node: str     # containerd, runc, CNI plugins
    image: str    # busybox + iptables and their Depends
    restic: str   # restic and its Depends


@dataclasses.dataclass(frozen=True)
class GoParts:
    smallbins: str
    coredns: str
    flannel: str
    cni_flannel: str
    metrics_server: str
    pebble: str
    traefik: str
    netpol: str      # kube-network-policies (patched: addons.KNP_QUEUE_PATCHES)
    control_plane: str
    node: str


def fetch_debs(timings: dict[str, float]) -> DebParts:
    t = time.time()
    parts = DebParts(node=debs.debs_dir("k8s-node", NODE_DEBS, closure=False),
                     image=debs.debs_dir("k8s-image-base", IMAGE_DEBS, closure=True),
                     restic=debs.debs_dir("k8s-image-restic", RESTIC_DEBS, closure=True))
    timings["debs"] = time.time() - t
    return parts


def build_go_parts(timings: dict[str, float]) -> GoParts:
    """The small builds first: the Kubernetes ones reuse the Go build cache of the control-plane build, which
    `up` may be running at the same time (kube_dir() then waits for its lock instead of compiling twice)."""
    steps: list[tuple[str, str, Callable[[], str]]] = [
        ("smallbins", "echo+pause", addons.small_bins_dir),
        ("coredns", "coredns", lambda: addons.coredns_dir(COREDNS_VERSION)),
        ("flannel", "flannel", addons.flannel_dir),
        ("cni_flannel", "cni-flannel", lambda: gobuild.go_install_dir(
            "cni-flannel", CNI_FLANNEL_VERSION, ["github.com/containernetworking/plugins/plugins/meta/flannel"],
            env_extra={"GO111MODULE": "on"})),
        ("metrics_server", "metrics-server", lambda: gobuild.go_install_dir(
            "metrics-server", METRICS_SERVER_VERSION, ["sigs.k8s.io/metrics-server/cmd/metrics-server"])),
        ("pebble", "pebble", lambda: gobuild.go_install_dir(
            "pebble", PEBBLE_VERSION, ["github.com/letsencrypt/pebble/v2/cmd/pebble",
                                       "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv"])),
        ("traefik", "traefik", addons.traefik_dir),
        ("netpol", "kube-network-policies", addons.netpol_dir),
        ("control_plane", "control plane", kubernetes.kube_dir),
        ("node", "kubeadm+kubelet+kube-proxy", kubernetes.kube_node_dir)]
    dirs = {}
    for field, label, build in steps:
        t = time.time()
        dirs[field] = build()
        timings[label] = time.time() - t
    return GoParts(**dirs)


def copy_exec(src: str, dst: str) -> None:
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o755)


def install_release_binaries(dst: str, go: GoParts, deb: DebParts) -> None:
    """Kubernetes binaries in the release layout (dl.k8s.io/release/vX.Y.Z/bin/linux/amd64/NAME + NAME.sha256),
    the kubelet units, and containerd, runc and the CNI plugins from the Debian .debs in their upstream
    release layouts."""
    kbin = os.path.join(go.control_plane, "bin")
    nbin = os.path.join(go.node, "bin")
    bd = os.path.join(dst, "kubernetes", "bin", "linux", "amd64")
    os.makedirs(bd)
    for b, src in [(b, os.path.join(nbin, b)) for b in KUBE_NODE_BINS] + [
            (b, os.path.join(kbin, b)) for b in CONTROL_PLANE_RELEASE_BINS]:
        copy_exec(src, os.path.join(bd, b))
        cache.write_text(os.path.join(bd, b + ".sha256"), cache.sha256_file(os.path.join(bd, b)) + "\n")
    sd = os.path.join(dst, "kubernetes", "systemd")
    os.makedirs(sd)
    cache.write_text(os.path.join(sd, "kubelet.service"), assets.text("systemd/kubelet.service"))
    cache.write_text(os.path.join(sd, "10-kubeadm.conf"), assets.text("systemd/10-kubeadm.conf"))
    x = os.path.join(dst, ".x")
    debs.deb_unpack(deb.node, NODE_DEBS, x)
    os.makedirs(os.path.join(dst, "containerd", "bin"))
    for b in CONTAINERD_BINS:
        if os.path.exists(os.path.join(x, "usr/bin", b)):
            shutil.copy2(os.path.join(x, "usr/bin", b), os.path.join(dst, "containerd", "bin", b))
    cache.write_text(os.path.join(dst, "containerd", "containerd.service"), assets.text("systemd/containerd.service"))
    os.makedirs(os.path.join(dst, "runc"))
    shutil.copy2(os.path.join(x, "usr/sbin/runc"), os.path.join(dst, "runc", "runc.amd64"))
    cd = os.path.join(dst, "cni", "bin")
    os.makedirs(cd)
    for p in sorted(glob.glob(os.path.join(x, "usr/lib/cni/*"))):
        shutil.copy2(p, os.path.join(cd, os.path.basename(p)))
    # the flannel CNI plugin twice: as itself, and under the name the image's shim calls (flannel-cni-shim.sh)
    shutil.copy2(os.path.join(go.cni_flannel, "flannel"), os.path.join(cd, "flannel"))
    shutil.copy2(os.path.join(go.cni_flannel, "flannel"), os.path.join(cd, "flannel-v0.9.1"))
    os.makedirs(os.path.join(dst, "debs"))
    for p in glob.glob(os.path.join(deb.node, "*.deb")):
        shutil.copy2(p, os.path.join(dst, "debs", os.path.basename(p)))
    cache.safe_rmtree(x)


def build_base_layers(w: oci.OCIWriter, work: str, deb: DebParts) -> None:
    """The layers images share: base (passwd, group, nsswitch, /tmp), busybox, iptables (nft backend)."""
    def staging(n: str) -> str:
        return os.path.join(work, "stage-" + n)
    w.layer("base", oci.stage(staging("base"),
                              dirs=[("/tmp", 0o1777), ("/etc", 0o755), ("/root", 0o700), ("/var/run", 0o755)],
                              texts=[("/etc/passwd", BASE_PASSWD, 0o644), ("/etc/group", BASE_GROUP, 0o644),
                                     ("/etc/nsswitch.conf", BASE_NSSWITCH, 0o644)]))
    bx = staging("busybox")
    debs.deb_unpack(deb.image, ["busybox-static"], bx + ".x")
    applets = proc.out([os.path.join(bx + ".x", "bin/busybox"), "--list"]).split()
    oci.stage(bx, files=[(os.path.join(bx + ".x", "bin/busybox"), "/bin/busybox", 0o755)],
              links=[("busybox", "/bin/" + a) for a in applets if a not in ("busybox",)])
    cache.safe_rmtree(bx + ".x")
    w.layer("busybox", bx)
    ipt = staging("iptables")
    debs.deb_unpack(deb.image, [p for p in debs.listed_packages(deb.image) if p != "busybox-static"], ipt)
    for d in DOC_DIRS:
        cache.safe_rmtree(os.path.join(ipt, d))
    # what update-alternatives would do: iptables = the nft backend
    oci.stage(ipt, links=[("xtables-nft-multi", "/usr/sbin/" + n) for n in IPTABLES_NFT_LINKS])
    w.layer("iptables", ipt)


def build_layers(w: oci.OCIWriter, work: str, go: GoParts, deb: DebParts) -> None:
    """Every layer that images.IMAGE_SPEC names, from staging trees under work/."""
    def staging(n: str) -> str:
        return os.path.join(work, "stage-" + n)
    kbin = os.path.join(go.control_plane, "bin")
    nbin = os.path.join(go.node, "bin")
    build_base_layers(w, work, deb)

    def binlayer(key: str, files: list[tuple[str, str]], texts: list[tuple[str, str, int]] | None = None) -> None:
        w.layer(key, oci.stage(staging(key), files=[(s, d, 0o755) for s, d in files], texts=texts or ()))
    for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"):
        binlayer(b, [(os.path.join(kbin, b), "/usr/local/bin/" + b)])
    binlayer("kube-proxy", [(os.path.join(nbin, "kube-proxy"), "/usr/local/bin/kube-proxy")])
    binlayer("coredns", [(os.path.join(go.coredns, "coredns"), "/coredns")])
    binlayer("pause", [(os.path.join(go.smallbins, "pause"), "/pause")])
    binlayer("echo", [(os.path.join(go.smallbins, "echo"), "/usr/local/bin/echo-server")])
    binlayer("fetch", [(os.path.join(go.smallbins, "echo"), "/usr/local/bin/fetch")])
    binlayer("flannel", [(os.path.join(go.flannel, "flanneld"), "/opt/bin/flanneld"),
                         (os.path.join(go.flannel, "install-conf"), "/opt/bin/install-conf"),
                         (os.path.join(go.cni_flannel, "flannel"), "/flannel")])
    binlayer("flannel-cni-plugin", [], texts=[("/flannel", assets.text("bundle/flannel-cni-shim.sh"), 0o755)])
    rst = staging("restic")
    debs.deb_unpack(deb.restic, debs.listed_packages(deb.restic), rst)
    for d in DOC_DIRS + SHELL_COMPLETION_DIRS:
        cache.safe_rmtree(os.path.join(rst, d))
    w.layer("restic", rst)
    binlayer("metrics-server", [(os.path.join(go.metrics_server, "metrics-server"), "/metrics-server")])
    binlayer("traefik", [(os.path.join(go.traefik, "traefik"), "/usr/local/bin/traefik")])
    binlayer("kube-network-policies", [(os.path.join(go.netpol, "netpol"), "/bin/netpol")])
    # pebble's image carries its test/ directory (config, certificates) as upstream's does
    pebble_src = gobuild.mod_download("github.com/letsencrypt/pebble/v2@" + PEBBLE_VERSION)["Dir"]
    pst = staging("pebble")
    oci.stage(pst, files=[(os.path.join(go.pebble, "pebble"), "/usr/bin/pebble", 0o755),
                          (os.path.join(go.pebble, "pebble-challtestsrv"), "/usr/bin/pebble-challtestsrv", 0o755)])
    shutil.copytree(os.path.join(pebble_src, "test"), os.path.join(pst, "test"))
    for r, ds, fs in os.walk(pst):
        for n in ds + fs:
            os.chmod(os.path.join(r, n), 0o755 if n in ds or n.startswith("pebble") else 0o644)
    w.layer("pebble", pst)


def write_images(dst: str, go: GoParts, deb: DebParts) -> list[tuple[str, str, str]]:
    """images/<name>.tar for every image and images/images.txt; returns (ref, file, manifest digest)."""
    work = os.path.join(dst, ".oci")
    w = oci.OCIWriter(work)
    build_layers(w, work, go, deb)
    idir = os.path.join(dst, "images")
    os.makedirs(idir)
    listing = []
    for ref, fn in images.images_list():
        layers, ep = images.IMAGE_SPEC[fn[:-4]]
        dg = w.image(ref, layers, os.path.join(idir, fn), entrypoint=ep, cmd=images.IMAGE_CMD.get(fn[:-4]))
        listing.append((ref, fn, dg))
    cache.write_text(os.path.join(idir, "images.txt"), "".join("%s\t%s\t%s\n" % entry for entry in listing))
    cache.safe_rmtree(work)
    return listing


def manifest(dst: str, listing: list[tuple[str, str, str]], timings: dict[str, float]) -> dict[str, object]:
    return {
        "bundle": BUNDLE_VERSION, "kubernetes": K8S_VERSION, "etcd": ETCD_VERSION, "coredns": COREDNS_VERSION,
        "flannel": FLANNEL_VERSION, "cni_flannel_plugin": CNI_FLANNEL_VERSION,
        "metrics_server": METRICS_SERVER_VERSION, "pebble": PEBBLE_VERSION, "traefik": TRAEFIK_VERSION,
        "kube_network_policies": "%s (patched: xtables NFQUEUE target, recipe %s, see testbed/README.md)" % (
            KUBE_NETWORK_POLICIES_VERSION, KUBE_NETWORK_POLICIES_RECIPE),
        "k3s": K3S_VERSION + " (stand-in %s, see testbed/README.md)" % K3S_STANDIN_VERSION,
        "debian_node_packages": sorted(os.path.basename(p) for p in glob.glob(os.path.join(dst, "debs", "*.deb"))),
        "images": [{"ref": r, "file": "images/" + f, "manifest_digest": d} for r, f, d in listing],
        "build_seconds": {k: round(v) for k, v in timings.items()},
    }


def sha256sums(dst: str) -> list[str]:
    """`sha256sum -c` lines for every file of the bundle (not the NAME.sha256 files), sorted by path."""
    sums = []
    for r, _, fs in os.walk(dst):
        for n in sorted(fs):
            p = os.path.join(r, n)
            if not n.endswith(".sha256") and n != "SHA256SUMS":
                sums.append("%s  %s\n" % (cache.sha256_file(p), os.path.relpath(p, dst)))
    return sorted(sums, key=lambda line: line.split("  ", 1)[1])


def install_k3s_standin(dst: str, release: images.Release) -> None:
    """k3s/k3s + k3s/sha256sum-amd64.txt: the stand-in of `release` (its own cached part) embedding the binaries
    already in the bundle `dst`."""
    k3d = k3s_standin.k3s_standin_dir(dst, release)
    os.makedirs(os.path.join(dst, "k3s"))
    for n in ("k3s", "sha256sum-amd64.txt"):
        shutil.copy2(os.path.join(k3d, n), os.path.join(dst, "k3s", n))


def build_bundle(dst: str) -> None:
    timings: dict[str, float] = {}
    # the Debian parts (download, no CPU) beside the Go builds; a failure there is raised by result()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="debs") as pool:
        debs_future = pool.submit(fetch_debs, timings)
        go = build_go_parts(timings)
        deb = debs_future.result()
    t = time.time()
    install_release_binaries(dst, go, deb)
    timings["binaries"] = time.time() - t
    t = time.time()
    listing = write_images(dst, go, deb)
    timings["images"] = time.time() - t
    # the k3s stand-in (its own cached part; it embeds the binaries copied above)
    t = time.time()
    install_k3s_standin(dst, images.CURRENT)
    timings["k3s stand-in"] = time.time() - t
    md = os.path.join(dst, "manifests")
    os.makedirs(md)
    cache.write_text(os.path.join(md, "kube-flannel.yml"), assets.render(
        "manifests/kube-flannel.yml", cidr=POD_CIDR, image="ghcr.io/flannel-io/flannel:" + FLANNEL_VERSION))
    with open(os.path.join(dst, "MANIFEST.json"), "w") as f:
        json.dump(manifest(dst, listing, timings), f, indent=1)
    with open(os.path.join(dst, "SHA256SUMS"), "w") as f:
        f.writelines(sha256sums(dst))
    proc.log("bundle: %s" % " ".join("%s %.0fs" % kv for kv in timings.items()))


# ------------------------------------------------------------------------------------ the previous bundle --
# The release an in-place upgrade starts from (versions.K8S_PREVIOUS_VERSION), in the same layout.  Built from
# it: the Kubernetes binaries and the release images (images.RELEASE_IMAGES: control plane, kube-proxy, etcd and
# CoreDNS at the versions its kubeadm pins, pause under its tag).  Hard-linked from the current bundle (same
# bytes, no copy): the kubelet units, containerd, runc, the CNI plugins, the .debs, the flannel manifest and
# every other image archive.  Its own k3s/: the k3s stand-in built again from the same source for this release
# (K3S_PREVIOUS_VERSION: its kubelet and kubectl embedded, its images in the static pods and add-ons), so that a
# k3s cluster can start at the previous release and be upgraded in place by replacing the binary.
PREVIOUS_BUNDLE_FILES = ["MANIFEST.json", "images/images.txt", "kubernetes/bin/linux/amd64/kubeadm", "k3s/k3s"]
SHARED_DIRS = ("kubernetes/systemd", "containerd", "runc", "cni", "debs", "manifests")


def previous_bundle_dir() -> str:
    return cache.cached("k8s-bundle", BUNDLE_PREVIOUS_VERSION, build_previous_bundle, PREVIOUS_BUNDLE_FILES)


def previous_bundle_dir_if_built() -> str | None:
    d = cache.cache_dir("k8s-bundle", BUNDLE_PREVIOUS_VERSION)
    return d if os.path.exists(os.path.join(d, ".complete")) else None


def link_or_copy(src: str, dst: str) -> None:
    """A hard link (the bundles share a cache directory's file system), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def link_tree(src: str, dst: str) -> None:
    shutil.copytree(src, dst, copy_function=link_or_copy)


@dataclasses.dataclass(frozen=True)
class PreviousParts:
    release: str     # kubernetes-release-<version>/bin: every Kubernetes binary of the previous release
    etcd: str        # etcd-<version>/bin/etcd
    coredns: str     # coredns-<version>/coredns
    smallbins: str   # the pause program (the same one, under the previous release's tag)


def build_previous_parts(timings: dict[str, float]) -> PreviousParts:
    steps: list[tuple[str, str, Callable[[], str]]] = [
        ("smallbins", "echo+pause", addons.small_bins_dir),
        ("etcd", "etcd " + ETCD_PREVIOUS_VERSION, lambda: kubernetes.etcd_dir(ETCD_PREVIOUS_VERSION)),
        ("coredns", "coredns " + COREDNS_PREVIOUS_VERSION, lambda: addons.coredns_dir(COREDNS_PREVIOUS_VERSION)),
        ("release", "kubernetes " + K8S_PREVIOUS_VERSION, lambda: kubernetes.kube_release_dir(K8S_PREVIOUS_VERSION))]
    dirs = {}
    for field, label, build in steps:
        t = time.time()
        dirs[field] = build()
        timings[label] = time.time() - t
    return PreviousParts(**dirs)


def write_previous_images(dst: str, cur: str, parts: PreviousParts, deb: DebParts) -> list[tuple[str, str, str]]:
    """The release images built again at the previous release; every other archive linked from `cur`."""
    work = os.path.join(dst, ".oci")
    w = oci.OCIWriter(work)
    build_base_layers(w, work, deb)
    rbin = os.path.join(parts.release, "bin")
    for key, src, path in [(b, os.path.join(rbin, b), "/usr/local/bin/" + b) for b in
                           ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")] + [
            ("etcd", os.path.join(parts.etcd, "bin", "etcd"), "/usr/local/bin/etcd"),
            ("coredns", os.path.join(parts.coredns, "coredns"), "/coredns"),
            ("pause", os.path.join(parts.smallbins, "pause"), "/pause")]:
        w.layer(key, oci.stage(os.path.join(work, "stage-" + key), files=[(src, path, 0o755)]))
    with open(os.path.join(cur, "images", "images.txt")) as f:
        cur_digests = {fn: dg for _, fn, dg in (line.rstrip("\n").split("\t") for line in f if line.strip())}
    idir = os.path.join(dst, "images")
    os.makedirs(idir)
    listing = []
    for ref, fn in images.images_list(images.PREVIOUS):
        name = fn[:-4]
        if name in images.RELEASE_IMAGES:
            layers, ep = images.IMAGE_SPEC[name]
            dg = w.image(ref, layers, os.path.join(idir, fn), entrypoint=ep, cmd=images.IMAGE_CMD.get(name))
        else:
            link_or_copy(os.path.join(cur, "images", fn), os.path.join(idir, fn))
            dg = cur_digests[fn]
        listing.append((ref, fn, dg))
    cache.write_text(os.path.join(idir, "images.txt"), "".join("%s\t%s\t%s\n" % entry for entry in listing))
    cache.safe_rmtree(work)
    return listing


def build_previous_bundle(dst: str) -> None:
    timings: dict[str, float] = {}
    t = time.time()
    cur = bundle_dir()   # what the two bundles share comes from it (cached; built first when missing)
    timings["current bundle"] = time.time() - t
    parts = build_previous_parts(timings)
    deb = fetch_debs(timings)
    t = time.time()
    bd = os.path.join(dst, "kubernetes", "bin", "linux", "amd64")
    os.makedirs(bd)
    for b, src in [(b, os.path.join(parts.release, "bin", b)) for b in KUBE_NODE_BINS + (
            "kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler")] + [
            ("etcd", os.path.join(parts.etcd, "bin", "etcd"))]:
        copy_exec(src, os.path.join(bd, b))
        cache.write_text(os.path.join(bd, b + ".sha256"), cache.sha256_file(os.path.join(bd, b)) + "\n")
    for d in SHARED_DIRS:
        link_tree(os.path.join(cur, d), os.path.join(dst, d))
    timings["binaries"] = time.time() - t
    t = time.time()
    listing = write_previous_images(dst, cur, parts, deb)
    timings["images"] = time.time() - t
    t = time.time()
    install_k3s_standin(dst, images.PREVIOUS)   # embeds the kubelet/kubectl above and the linked containerd, runc, CNI
    timings["k3s stand-in"] = time.time() - t
    with open(os.path.join(cur, "MANIFEST.json")) as f:
        shared = json.load(f)
    m = manifest(dst, listing, timings)
    m.update({"bundle": BUNDLE_PREVIOUS_VERSION, "kubernetes": K8S_PREVIOUS_VERSION, "etcd": ETCD_PREVIOUS_VERSION,
              "coredns": COREDNS_PREVIOUS_VERSION, "shares_files_with": shared["bundle"],
              "k3s": K3S_PREVIOUS_VERSION + " (stand-in %s, see testbed/README.md)" % K3S_STANDIN_VERSION})
    with open(os.path.join(dst, "MANIFEST.json"), "w") as f:
        json.dump(m, f, indent=1)
    with open(os.path.join(dst, "SHA256SUMS"), "w") as f:
        f.writelines(sha256sums(dst))
    proc.log("previous bundle: %s" % " ".join("%s %.0fs" % kv for kv in timings.items()))
