"""Go parts of the bundle besides Kubernetes itself: flanneld (wrapper module) and the two small programs of
assets/smallbins (echo, pause).  coredns, the flannel CNI plugin, metrics-server and pebble are plain
`go install`s (gobuild.go_install_dir, see bundle.GO_PARTS)."""
from __future__ import annotations

import os
import shutil

from .. import assets, cache, config, gobuild, proc
from ..errors import TestbedError
from ..versions import FLANNEL_RECIPE, FLANNEL_VERSION, SMALLBINS_VERSION

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
