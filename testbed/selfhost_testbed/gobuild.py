"""Go builds from the module proxy: the toolchain environment, wrapper modules, `go install` into the cache.

Many upstream modules cannot be `go install`ed (replace directives to ./staging etc.); the bed builds them in
a generated wrapper module under <cache>/src/ that requires the upstream module at a release tag."""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import shutil
import time
from typing import Iterator, Mapping, Sequence

from . import cache, config, proc
from .errors import TestbedError
from .versions import ETCD_VERSION, K8S_VERSION, KWOK_VERSION


# What the builds spend less CPU on (issue 20: on two cores the cold CI run is CPU-bound), measured on a cold
# build of k8s.io/client-go (its typed clientset and clientcmd; empty GOCACHE, nothing else running):
#   - no DWARF from the compiler: every build links with -s -w, which drops it anyway; 9 % less CPU, 22 %
#     less build cache (the binaries differ only in the flag their build info records);
#   - the compiler's and linker's garbage collector at GOGC=400, bounded by GOMEMLIMIT: 130 -> 105 CPU-seconds
#     (-19 %), peak RSS 480 -> 590 MB.  GOGC=800 gained nothing more, GOGC=off 7 % more for twice the memory.
BUILD_GCFLAGS = "-gcflags=all=-dwarf=false"
BUILD_GC_ENV = {"GOGC": "400", "GOMEMLIMIT": "3GiB"}


def go_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "")
    env["GOFLAGS"] = (env["GOFLAGS"] + " -buildvcs=false -mod=mod").strip()
    env["CGO_ENABLED"] = "0"
    env["GOTOOLCHAIN"] = env.get("GOTOOLCHAIN", "local")
    for k, v in BUILD_GC_ENV.items():
        env.setdefault(k, v)
    if extra:
        env.update(extra)
    if "-gcflags" not in env["GOFLAGS"]:
        env["GOFLAGS"] = (env["GOFLAGS"] + " " + BUILD_GCFLAGS).strip()
    return env


def need_go() -> None:
    if not shutil.which("go"):
        raise TestbedError("`go` not found on PATH (needed to build Kubernetes, kwok, terraform, tofu)")


def build_date() -> str:
    """What release builds stamp into k8s.io/component-base/version.buildDate."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def mod_download(module_at_version: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`go mod download -json`: the module's Dir (its source) and GoMod (its go.mod file)."""
    info: dict[str, str] = json.loads(proc.out(["go", "mod", "download", "-json", module_at_version],
                                               env=env or go_env()))
    return info


def go_directive(gomod: str) -> str:
    m = re.search(r"^go (\S+)", gomod, re.M)
    if not m:
        raise TestbedError("no `go` line in go.mod")
    return m.group(1)


def tools_go(pkgs: Sequence[str]) -> str:
    """A tools.go that imports pkgs, so `go mod tidy` keeps what building them needs."""
    return "//go:build tools\n\npackage tools\n\nimport (\n%s)\n" % "".join('\t_ "%s"\n' % p for p in pkgs)


def tools_go_one(pkg: str) -> str:
    return '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' % pkg


# ------------------------------------------------------------------------ the Kubernetes wrapper module --
# k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...) with ./staging paths, so it cannot be
# `go install`ed.  One wrapper module requires k8s.io/kubernetes, sigs.k8s.io/kwok and go.etcd.io/etcd/server/v3
# (at the version k8s.io/kubernetes requires, so nothing is bumped), and replaces every k8s.io/* module that
# k8s.io/kubernetes requires at v0.0.0 with the published v0.Y.Z.  Every build of k8s.io/kubernetes packages
# uses the same requires, so the module versions and the Go build cache are shared.
KUBE_ALWAYS = ("k8s.io/kubernetes/cmd/kube-apiserver", "sigs.k8s.io/kwok/cmd/kwok", "go.etcd.io/etcd/server/v3")


def k8s_minor_patch(version: str = K8S_VERSION) -> tuple[str, str]:
    m = re.match(r"v1\.(\d+)\.(\d+)$", version)
    if not m:
        raise TestbedError("not a Kubernetes release version: %s" % version)
    return m.group(1), m.group(2)


def kube_wrapper_gomod(module: str, kubernetes_gomod: str, version: str = K8S_VERSION,
                       with_kwok_etcd: bool = True) -> str:
    """The wrapper module's go.mod, from the go.mod of k8s.io/kubernetes (its go/godebug lines, and the
    staging modules it requires at v0.0.0).  Without kwok and etcd (with_kwok_etcd=False: the previous
    release's build, whose k8s.io libraries kwok v0.8.0 does not fit) it requires k8s.io/kubernetes alone."""
    minor, patch = k8s_minor_patch(version)
    staging_ver = "v0.%s.%s" % (minor, patch)
    staging = sorted(set(re.findall(r"^\s*(k8s\.io/[\w./-]+) v0\.0\.0\s*(?://.*)?$", kubernetes_gomod, re.M)))
    godebug = re.findall(r"^godebug .*$", kubernetes_gomod, re.M)
    requires = ["\tk8s.io/kubernetes %s" % version]
    if with_kwok_etcd:
        requires += ["\tsigs.k8s.io/kwok %s" % KWOK_VERSION, "\tgo.etcd.io/etcd/server/v3 %s" % ETCD_VERSION]
    lines = ["module selfhost.test/%s" % module, "", "go %s" % go_directive(kubernetes_gomod)] + godebug + [
        "", "require ("] + requires + [")", "", "replace ("]
    lines += ["\t%s => %s %s" % (s, s, staging_ver) for s in staging] + [")", ""]
    return "\n".join(lines)


def kube_ldflags(now: str, with_kwok: bool, version: str = K8S_VERSION) -> str:
    """Release version stamps: without them /version says v0.0.0-master."""
    minor, _ = k8s_minor_patch(version)
    cb = "k8s.io/component-base/version"
    ld = ["-s", "-w",
          "-X %s.gitVersion=%s" % (cb, version), "-X %s.gitMajor=1" % cb, "-X %s.gitMinor=%s" % (cb, minor),
          "-X %s.gitTreeState=clean" % cb, "-X %s.buildDate=%s" % (cb, now),
          "-X %s.gitCommit=%s" % (cb, "0" * 40),
          "-X k8s.io/client-go/pkg/version.gitVersion=%s" % version,
          "-X k8s.io/client-go/pkg/version.gitMajor=1", "-X k8s.io/client-go/pkg/version.gitMinor=%s" % minor]
    if with_kwok:
        ld.append("-X sigs.k8s.io/kwok/pkg/consts.Version=%s" % KWOK_VERSION)
    return " ".join(ld)


@dataclasses.dataclass(frozen=True)
class Wrapper:
    """A generated wrapper module, ready for `go build`."""
    workdir: str
    ldflags: str
    env: dict[str, str]
    logfile: str


def kube_wrapper(module: str, workdir_name: str, log_name: str, tools: Sequence[str], with_kwok: bool,
                 version: str = K8S_VERSION, with_kwok_etcd: bool = True) -> Wrapper:
    """Write the Kubernetes wrapper module <cache>/src/<workdir_name> importing `tools`, and tidy it."""
    need_go()
    lf = cache.build_log(log_name)
    env = go_env()
    info = mod_download("k8s.io/kubernetes@" + version, env)
    with open(info["GoMod"]) as f:
        kmod = f.read()
    wd = cache.fresh_dir(os.path.join(config.get().cache, "src", workdir_name))
    cache.write_text(os.path.join(wd, "go.mod"), kube_wrapper_gomod(module, kmod, version, with_kwok_etcd))
    cache.write_text(os.path.join(wd, "tools.go"), tools_go(tools))
    proc.run(["go", "mod", "tidy"], cwd=wd, env=env, logfile=lf)
    return Wrapper(wd, kube_ldflags(build_date(), with_kwok, version), env, lf)


def build_into_bin(w: Wrapper, dst: str, pkgs: Sequence[str]) -> None:
    """ONE `go build` of pkgs into dst/bin/, so shared packages compile once; its time goes to the log."""
    os.makedirs(os.path.join(dst, "bin"))
    t0 = time.time()
    proc.run(["go", "build", "-trimpath", "-ldflags", w.ldflags, "-o", os.path.join(dst, "bin") + "/"] + list(pkgs),
             cwd=w.workdir, env=w.env, logfile=w.logfile)
    with open(w.logfile, "a") as f:
        f.write("go build took %.0fs\n" % (time.time() - t0))


# ------------------------------------------------------------------------------------------ go install --
def go_install_dir(component: str, version: str, pkgs: Sequence[str], ldflags: str = "-s -w",
                   env_extra: Mapping[str, str] | None = None) -> str:
    """`go install pkg@version` for modules without replace directives, into the cache by version."""
    def build(dst: str) -> None:
        need_go()
        lf = cache.build_log("%s-%s" % (component, version))
        env = go_env(dict({"GOBIN": dst, "GOFLAGS": "-buildvcs=false"}, **(env_extra or {})))
        for p in pkgs:
            proc.run(["go", "install", "-trimpath", "-ldflags", ldflags, "%s@%s" % (p, version)], env=env, logfile=lf)
    return cache.cached(component, version, build, [p.rstrip("/").rsplit("/", 1)[1] for p in pkgs])


# ----------------------------------------------------------------------------------- patched module copies --
# `go build -overlay` refuses files in the module cache, so a module the bed patches is copied, patched there,
# and built from a wrapper module that replaces it with the copy.
Patch = tuple[str, str, str, int]   # (file relative to the module root, multi-line regular expression,
                                    #  replacement, times expected)


def copy_tree_writable(src: str, dst: str) -> None:
    """A copy of src (e.g. a read-only module in the Go module cache) whose files and directories are
    writable (shutil.copytree would keep the modes, and a read-only directory could not be removed)."""
    for r, ds, fs in os.walk(src):
        ds.sort()
        d = os.path.join(dst, os.path.relpath(r, src))
        os.makedirs(d, exist_ok=True)
        for n in sorted(fs):
            shutil.copyfile(os.path.join(r, n), os.path.join(d, n))


def patch_source(what: str, root: str, patches: Sequence[Patch]) -> None:
    """Apply `patches` (file relative to root, multi-line regular expression, replacement, times expected) to
    the writable source tree at root; TestbedError naming `what` unless each expression matches exactly as
    many times as expected, so a changed upstream file is looked at, not half-patched."""
    for rel, pattern, repl, times in patches:
        p = os.path.join(root, rel)
        if not os.path.exists(p):
            raise TestbedError("%s has no %s any more; update its patches" % (what, rel))
        with open(p) as f:
            text = f.read()
        text, n = re.subn(pattern, lambda _m: repl, text, flags=re.M)
        if n != times:
            raise TestbedError("%s %s: /%s/ matched %d times, %d expected; update its patches" % (
                what, rel, pattern, n, times))
        cache.write_text(p, text)


def go_sources(root: str) -> Iterator[tuple[str, str]]:
    """(path relative to root, path) of every non-test Go file under root, in a stable order."""
    for r, ds, fs in os.walk(root):
        ds.sort()
        for n in sorted(fs):
            if n.endswith(".go") and not n.endswith("_test.go"):
                p = os.path.join(r, n)
                yield os.path.relpath(p, root), p


def go_imports_of(root: str, pkgs: Sequence[str]) -> list[str]:
    """`file: package` for each non-test Go file under root that imports one of pkgs."""
    uses = []
    for rel, p in go_sources(root):
        with open(p) as f:
            text = f.read()
        uses += ["%s: %s" % (rel, pkg) for pkg in pkgs if '"%s"' % pkg in text]
    return uses


def patched_copy(what: str, module_dir: str, dst: str, patches: Sequence[Patch],
                 dropped_imports: Sequence[str]) -> str:
    """A fresh writable copy of module_dir at dst with `patches` applied (patch_source), which must import
    none of dropped_imports any more in its non-test source (the packages the patches cut out)."""
    cache.fresh_dir(dst)
    copy_tree_writable(module_dir, dst)
    patch_source(what, dst, patches)
    left = go_imports_of(dst, dropped_imports)
    if left:
        raise TestbedError("%s still imports what its patches drop: %s" % (what, "; ".join(left)))
    return dst
