"""Go parts of the bundle besides Kubernetes itself: flanneld and traefik (wrapper modules) and the two small
programs of assets/smallbins (echo, pause).
coredns, the flannel CNI plugin, metrics-server and pebble are plain `go install`s (gobuild.go_install_dir,
see bundle.build_go_parts)."""
from __future__ import annotations

import os
import re
import shutil

from .. import assets, cache, config, gobuild, proc
from ..errors import TestbedError
from ..versions import FLANNEL_RECIPE, FLANNEL_VERSION, SMALLBINS_VERSION, TRAEFIK_VERSION

# tencentvpc: its SDK module is refused by the proxy; udp: needs cgo (upstream builds it with CGO_ENABLED=1)
FLANNEL_DROPPED_BACKENDS = ("tencentvpc", "udp")
SMALLBINS = ("echo", "pause")


def flannel_main_without_backends(main: str) -> str:
    """flannel's main.go without the imports of FLANNEL_DROPPED_BACKENDS."""
    for b in FLANNEL_DROPPED_BACKENDS:
        drop = '\t_ "github.com/flannel-io/flannel/pkg/backend/%s"\n' % b
        if drop not in main:
            raise TestbedError("flannel main.go no longer imports the %s backend as expected; "
                               "update flannel_main_without_backends()" % b)
        main = main.replace(drop, "")
    return main


def flannel_dir() -> str:
    """flanneld.  `go install github.com/flannel-io/flannel@VERSION` fails: its main package imports the
    tencentvpc backend, whose SDK module the proxy refuses (github.com/tencentcloud/tencentcloud-sdk-go/
    tencentcloud/vpc@v1.3.188: 403 Forbidden).  So: a wrapper module whose main package is flannel's main.go
    without that import and without the udp backend, which needs cgo (the VXLAN backend used here is
    untouched)."""
    def build(dst: str) -> None:
        gobuild.need_go()
        lf = cache.build_log("flannel-" + FLANNEL_VERSION)
        env = gobuild.go_env()
        info = gobuild.mod_download("github.com/flannel-io/flannel@" + FLANNEL_VERSION, env)
        with open(info["GoMod"]) as f:
            gover = gobuild.go_directive(f.read())
        wd = cache.fresh_dir(os.path.join(config.get().cache, "src", "flannel-" + FLANNEL_VERSION))
        with open(os.path.join(info["Dir"], "main.go")) as f:
            main = flannel_main_without_backends(f.read())
        cache.write_text(os.path.join(wd, "main.go"), main)
        cache.write_text(os.path.join(wd, "go.mod"),
                         "module selfhost.test/flannelbuild\n\ngo %s\n\nrequire github.com/flannel-io/flannel %s\n" % (
                             gover, FLANNEL_VERSION))
        proc.run(["go", "mod", "tidy", "-e"], cwd=wd, env=env, logfile=lf)
        proc.run(["go", "build", "-trimpath", "-ldflags",
                  "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=" + FLANNEL_VERSION,
                  "-o", os.path.join(dst, "flanneld"), "."], cwd=wd, env=env, logfile=lf)
        # the release image's second binary: its manifest's install-cni init container runs it
        proc.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", os.path.join(dst, "install-conf"),
                  "github.com/flannel-io/flannel/cmd/install_conf"], cwd=wd, env=env, logfile=lf)
    return cache.cached("flannel", FLANNEL_RECIPE, build, ["flanneld", "install-conf"])


def small_bins_dir() -> str:
    """echo and pause: two stdlib-only Go programs (assets/smallbins/), static."""
    def build(dst: str) -> None:
        gobuild.need_go()
        lf = cache.build_log("smallbins")
        wd = os.path.join(config.get().cache, "src", "smallbins")
        shutil.rmtree(wd, ignore_errors=True)
        for n in SMALLBINS:
            os.makedirs(os.path.join(wd, n))
            cache.write_text(os.path.join(wd, n, "main.go"), assets.text("smallbins/%s/main.go" % n))
        cache.write_text(os.path.join(wd, "go.mod"), "module selfhost.test/smallbins\n\ngo 1.22\n")
        proc.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", dst + "/"] + ["./" + n for n in SMALLBINS],
                 cwd=wd, env=gobuild.go_env(), logfile=lf)
    return cache.cached("smallbins", SMALLBINS_VERSION, build, list(SMALLBINS))


# ------------------------------------------------------------------------------------------------ traefik --
TRAEFIK_MODULE = "github.com/traefik/traefik/v3"
TRAEFIK_MAIN = TRAEFIK_MODULE + "/cmd/traefik"
TRAEFIK_REPLACES = 3   # the forks traefik's go.mod replaces (go-http-auth, mux, minheap)


def _directives(gomod: str, verb: str) -> tuple[list[list[str]], list[str]]:
    """The `verb (...)` blocks of a go.mod (each a list of its entries, comments dropped) and its one-line
    `verb x` directives."""
    def entries(blk: str) -> list[str]:
        return [e for e in (ln.split("//", 1)[0].strip() for ln in blk.splitlines()) if e]
    blocks = [entries(b) for b in re.findall(r"^%s \((.*?)^\)" % verb, gomod, re.M | re.S)]
    singles = [ln.split("//", 1)[0].strip() for ln in re.findall(r"^%s ([^(\s].*)$" % verb, gomod, re.M)]
    return blocks, singles


def traefik_directives(gomod: str) -> tuple[list[str], list[str]]:
    """The replace and exclude directives of traefik's go.mod, for the wrapper module (the directives of a
    dependency are ignored, and without the forks and the exclusion the module graph differs from traefik's
    own).  Expected: one `replace (...)` block of TRAEFIK_REPLACES module replacements (no local paths) and
    at least one `exclude`; anything else is refused, so a changed go.mod is looked at, not half-copied."""
    rblocks, rsingles = _directives(gomod, "replace")
    if len(rblocks) != 1 or rsingles or len(rblocks[0]) != TRAEFIK_REPLACES:
        raise TestbedError("traefik's go.mod no longer has exactly one replace block of %d entries (blocks: %s, "
                           "single lines: %s); update addons.traefik_directives()" % (TRAEFIK_REPLACES, rblocks,
                                                                                     rsingles))
    reps = rblocks[0]
    for r in reps:
        if not re.match(r"^[\w.~/-]+ => [\w.~-]+(/[\w.~-]+)+ v\S+$", r):
            raise TestbedError("traefik's go.mod replaces %r, not a module by a module version (a local path "
                               "cannot be copied); update addons.traefik_directives()" % r)
    eblocks, esingles = _directives(gomod, "exclude")
    excl = [e for b in eblocks for e in b] + esingles
    if not excl or not all(re.match(r"^[\w.~/-]+ v\S+$", e) for e in excl):
        raise TestbedError("traefik's go.mod has no exclude directive of the expected form (%s); update "
                           "addons.traefik_directives()" % excl)
    return reps, excl


def traefik_wrapper_gomod(traefik_gomod: str) -> str:
    reps, excl = traefik_directives(traefik_gomod)
    return ("module selfhost.test/traefikbuild\n\ngo %s\n\nrequire %s %s\n\nreplace (\n%s)\n\nexclude (\n%s)\n" % (
        gobuild.go_directive(traefik_gomod), TRAEFIK_MODULE, TRAEFIK_VERSION,
        "".join("\t%s\n" % r for r in reps), "".join("\t%s\n" % e for e in excl)))


def traefik_dir() -> str:
    """traefik.  `go install github.com/traefik/traefik/v3/cmd/traefik@v3.7.x` fails (traefik's go.mod
    replaces modules, and v3.7's dependencies are refused by the proxy: testbed/README.md); v3.6.12 builds in
    a wrapper module that requires it and carries its replace and exclude directives."""
    def build(dst: str) -> None:
        gobuild.need_go()
        lf = cache.build_log("traefik-" + TRAEFIK_VERSION)
        env = gobuild.go_env()
        info = gobuild.mod_download("%s@%s" % (TRAEFIK_MODULE, TRAEFIK_VERSION), env)
        with open(info["GoMod"]) as f:
            gomod = traefik_wrapper_gomod(f.read())
        wd = cache.fresh_dir(os.path.join(config.get().cache, "src", "traefik-" + TRAEFIK_VERSION))
        cache.write_text(os.path.join(wd, "go.mod"), gomod)
        cache.write_text(os.path.join(wd, "tools.go"), gobuild.tools_go_one(TRAEFIK_MAIN))
        proc.run(["go", "mod", "tidy"], cwd=wd, env=env, logfile=lf)
        out = os.path.join(dst, "traefik")
        proc.run(["go", "build", "-trimpath", "-ldflags",
                  "-s -w -X %s/pkg/version.Version=%s" % (TRAEFIK_MODULE, TRAEFIK_VERSION),
                  "-o", out, TRAEFIK_MAIN], cwd=wd, env=env, logfile=lf)
        v = proc.out([out, "version"])
        if TRAEFIK_VERSION not in v:
            raise TestbedError("`traefik version` does not say %s: %s" % (TRAEFIK_VERSION, v), lf)
    return cache.cached("traefik", TRAEFIK_VERSION, build, ["traefik"])
