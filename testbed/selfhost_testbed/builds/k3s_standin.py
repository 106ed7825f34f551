"""The k3s STAND-IN (testbed/k3s-standin/, stdlib-only Go) with the bundle's real binaries appended as a tar
payload: a single self-extracting file like k3s.  Its cache key covers its sources and the embedded binaries,
so a new containerd .deb from Debian makes a new part.  Built once per bundle: the current release's, and the previous
release's (same source; that bundle's kubelet, kubectl and image references; version vX.Y.Z+k3s1 of that release)."""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tarfile

from .. import cache, config, gobuild, proc
from ..versions import K3S_CNI_PLUGINS, K3S_PAYLOAD_MAGIC, K3S_STANDIN_VERSION
from . import images

K3S_STANDIN_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               "k3s-standin")
# go -ldflags -X main.<name>=<image ref>: the images the stand-in's static pods run, by bundle image name
IMAGE_VARS = {"pauseImage": "pause", "etcdImage": "etcd", "apiserverImage": "kube-apiserver",
              "controllerImage": "kube-controller-manager", "schedulerImage": "kube-scheduler",
              "proxyImage": "kube-proxy", "corednsImage": "coredns", "flannelImage": "flannel"}


def source_files() -> list[str]:
    return sorted(glob.glob(os.path.join(K3S_STANDIN_SRC, "*.go")) + [os.path.join(K3S_STANDIN_SRC, "go.mod")])


def source_hash(srcs: list[str]) -> str:
    """sha256 over (file name, content) of the sources: part of the cache key, and the stand-in's commit."""
    h = hashlib.sha256()
    for p in srcs:
        with open(p, "rb") as f:
            h.update(os.path.basename(p).encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


def embedded_files(bundle: str) -> list[tuple[str, str]]:
    """(path in the bundle being built, name in the payload's bin/) of every embedded binary."""
    kb = os.path.join(bundle, "kubernetes", "bin", "linux", "amd64")
    files = [(os.path.join(kb, "kubelet"), "kubelet"), (os.path.join(kb, "kubectl"), "kubectl"),
             (os.path.join(bundle, "runc", "runc.amd64"), "runc")]
    files += [(os.path.join(bundle, "containerd", "bin", b), b)
              for b in ("containerd", "containerd-shim-runc-v2", "ctr")]
    files += [(os.path.join(bundle, "cni", "bin", b), b) for b in K3S_CNI_PLUGINS]
    return files


def payload_hash(files: list[tuple[str, str]]) -> str:
    ph = hashlib.sha256()
    for src, name in files:
        ph.update(("%s %s\n" % (name, cache.sha256_file(src))).encode())
    return ph.hexdigest()


def k3s_version(release: images.Release) -> str:
    """What the stand-in of `release` reports (`k3s version v1.36.3+k3s1 (...)`): k3s's own tag for it."""
    return release.kubernetes + "+k3s1"


def cache_version(srchash: str, phash: str, release: images.Release = images.CURRENT) -> str:
    return "%s-%s-%s-%s" % (k3s_version(release), K3S_STANDIN_VERSION, srchash[:12], phash[:12])


def write_payload(path: str, files: list[tuple[str, str]]) -> None:
    """The embedded binaries as a GNU tar under bin/, owned by root, mode 755, mtime 0."""
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
        for src, name in files:
            ti = t.gettarinfo(src, "bin/" + name)
            ti.mode, ti.uid, ti.gid, ti.uname, ti.gname, ti.mtime = 0o755, 0, 0, "root", "root", 0
            with open(src, "rb") as f:
                t.addfile(ti, f)


def payload_trailer(offset: int, size: int, phash: str) -> bytes:
    """What the stand-in reads at its end to find its payload: magic, offset and size (hex), payload sha256."""
    return K3S_PAYLOAD_MAGIC + b"%016x%016x" % (offset, size) + phash.encode()


def k3s_standin_dir(bundle: str, release: images.Release = images.CURRENT) -> str:
    """The k3s stand-in executable of `release`, from the Go source and the binaries of `bundle` (a bundle of that
    release being built: kubernetes/, containerd/, runc/, cni/ already in place); its static pods and add-ons run
    `release`'s images (the references its bundle lists)."""
    srcs = source_files()
    srchash = source_hash(srcs)
    files = embedded_files(bundle)

    def build(dst: str) -> None:
        gobuild.need_go()
        lf = cache.build_log("k3s-standin")
        wd = cache.fresh_dir(os.path.join(config.get().cache, "src", "k3s-standin-" + k3s_version(release)))
        for p in srcs:
            shutil.copy2(p, wd)
        refs = dict((fn[:-4], ref) for ref, fn in images.images_list(release))
        xs = {"version": k3s_version(release), "commit": srchash[:8]}
        xs.update({var: refs[image] for var, image in IMAGE_VARS.items()})
        ld = "-s -w " + " ".join("-X main.%s=%s" % kv for kv in sorted(xs.items()))
        stub = os.path.join(dst, "k3s.stub")
        proc.run(["go", "build", "-trimpath", "-ldflags", ld, "-o", stub, "."], cwd=wd, env=gobuild.go_env(),
                 logfile=lf)
        payload = os.path.join(dst, "payload.tar")
        write_payload(payload, files)
        phash = cache.sha256_file(payload)
        out_p = os.path.join(dst, "k3s")
        with open(out_p, "wb") as o:
            with open(stub, "rb") as f:
                shutil.copyfileobj(f, o)
            off = o.tell()
            with open(payload, "rb") as f:
                shutil.copyfileobj(f, o, 1 << 20)
            size = o.tell() - off
            o.write(payload_trailer(off, size, phash))
        os.chmod(out_p, 0o755)
        os.remove(stub)
        os.remove(payload)
        cache.write_text(os.path.join(dst, "sha256sum-amd64.txt"), "%s  k3s\n" % cache.sha256_file(out_p))
    return cache.cached("k3s-standin", cache_version(srchash, payload_hash(files), release), build,
                        ["k3s", "sha256sum-amd64.txt"])
