"""Go parts of the bundle besides Kubernetes itself: flanneld, traefik and kube-network-policies (wrapper
modules; kube-network-policies patched) and the two small programs of assets/smallbins (echo, pause).
coredns, the flannel CNI plugin, metrics-server and pebble are plain `go install`s (gobuild.go_install_dir,
see bundle.build_go_parts)."""
from __future__ import annotations

import os
import re
import shutil

from .. import assets, cache, config, gobuild, proc
from ..errors import TestbedError
from ..versions import (FLANNEL_RECIPE, FLANNEL_VERSION, KUBE_NETWORK_POLICIES_RECIPE, KUBE_NETWORK_POLICIES_VERSION,
                        SMALLBINS_VERSION, TRAEFIK_VERSION)

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


# ------------------------------------------------------------------------------------------------ coredns --
# CoreDNS's own main imports every in-tree plugin (core/plugin, the cloud DNS services' SDKs among them);
# CoreDNS documents building with a chosen list instead (plugin.cfg).  The bed's build has a main of its own
# that imports the plugins of kubeadm's Corefile (cmd/kubeadm/app/phases/addons/dns/manifests.go; the k3s
# stand-in deploys the same) plus log, hosts and whoami (the default without a Corefile): about 30 % less Go
# source to compile.  (package under plugin/, the directive it registers)
COREDNS_MODULE = "github.com/coredns/coredns"
COREDNS_RECIPE_SUFFIX = "-kubeadm1"  # part of its cache key: bump when COREDNS_PLUGINS change
COREDNS_PLUGINS: tuple[tuple[str, str], ...] = (
    ("errors", "errors"), ("health", "health"), ("ready", "ready"), ("kubernetes", "kubernetes"),
    ("metrics", "prometheus"), ("forward", "forward"), ("cache", "cache"), ("loop", "loop"), ("reload", "reload"),
    ("loadbalance", "loadbalance"), ("log", "log"), ("hosts", "hosts"), ("whoami", "whoami"))


def coredns_main() -> str:
    """CoreDNS's main.go with COREDNS_PLUGINS instead of core/plugin (which also imports caddy's onevent)."""
    imports = ['\t_ "github.com/coredns/caddy/onevent"\n'] + [
        '\t_ "%s/plugin/%s"\n' % (COREDNS_MODULE, pkg) for pkg, _ in COREDNS_PLUGINS]
    return ("package main\n\nimport (\n%s\n\t\"%s/coremain\"\n)\n\nfunc main() {\n\tcoremain.Run()\n}\n" % (
        "".join(imports), COREDNS_MODULE))


def coredns_missing_plugins(listing: str) -> list[str]:
    """The COREDNS_PLUGINS directives that `coredns -plugins` does not list (one per line, as NAME or, in
    older releases, dns.NAME)."""
    have = {ln.strip().removeprefix("dns.") for ln in listing.splitlines()}
    return [d for _, d in COREDNS_PLUGINS if d not in have]


def coredns_dir(version: str) -> str:
    """coredns VERSION with COREDNS_PLUGINS only: a wrapper module that requires CoreDNS at the tag, with
    coredns_main() as its main package."""
    def build(dst: str) -> None:
        gobuild.need_go()
        lf = cache.build_log("coredns-" + version + COREDNS_RECIPE_SUFFIX)
        env = gobuild.go_env()
        info = gobuild.mod_download("%s@%s" % (COREDNS_MODULE, version), env)
        with open(info["GoMod"]) as f:
            gover = gobuild.go_directive(f.read())
        wd = cache.fresh_dir(os.path.join(config.get().cache, "src", "coredns-" + version))
        cache.write_text(os.path.join(wd, "main.go"), coredns_main())
        cache.write_text(os.path.join(wd, "go.mod"), "module selfhost.test/corednsbuild\n\ngo %s\n\nrequire %s %s\n" % (
            gover, COREDNS_MODULE, version))
        proc.run(["go", "mod", "tidy"], cwd=wd, env=env, logfile=lf)
        out = os.path.join(dst, "coredns")
        proc.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "."], cwd=wd, env=env, logfile=lf)
        missing = coredns_missing_plugins(proc.out([out, "-plugins"]))
        if missing:
            raise TestbedError("the coredns build lacks the plugins %s" % " ".join(missing), lf)
    return cache.cached("coredns", version + COREDNS_RECIPE_SUFFIX, build, ["coredns"])


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


# What the bed's traefik leaves out, to build in about half the CPU: lego's DNS-01 providers (one package
# importing some 170 DNS services' SDKs; the tests and the provider use HTTP-01) and the AWS ECS provider (the
# AWS SDK; the provider configures traefik's Kubernetes providers only).  Together 45 % of the Go source the
# build compiles (`go list -deps`, bytes).  A static configuration naming a DNS-01 provider gets an error
# saying so.  (file, regular expression (multi-line), replacement, times expected)
TRAEFIK_SLIM_MARK = "selfhost test bed: built without lego's DNS-01 providers"
TRAEFIK_RECIPE = TRAEFIK_VERSION + "-slim1"  # its cache key: bump when TRAEFIK_PATCHES change
TRAEFIK_PATCHES: tuple[gobuild.Patch, ...] = (
    ("pkg/provider/acme/provider.go", r'^\t"github\.com/go-acme/lego/v4/providers/dns"\n', "", 1),
    ("pkg/provider/acme/provider.go", r"\bdns\.NewDNSChallengeProviderByName\(p\.DNSChallenge\.Provider\)",
     'nil, errors.New("DNS-01 challenge provider " + p.DNSChallenge.Provider + ": %s")' % TRAEFIK_SLIM_MARK, 1),
    ("pkg/config/static/static_config.go", r'^\t"github\.com/traefik/traefik/v3/pkg/provider/ecs"\n', "", 1),
    ("pkg/config/static/static_config.go", r"^\tEcs\s+\*ecs\.Provider\b.*\n", "", 1),
    ("pkg/provider/aggregator/aggregator.go",
     r"^\tif conf\.Ecs != nil \{\n\t\tp\.quietAddProvider\(conf\.Ecs\)\n\t\}\n", "", 1),
)
# Packages a patched tree must no longer import anywhere in its non-test source.
TRAEFIK_DROPPED_IMPORTS = ("github.com/go-acme/lego/v4/providers/dns", TRAEFIK_MODULE + "/pkg/provider/ecs")


def traefik_dir() -> str:
    """traefik.  `go install github.com/traefik/traefik/v3/cmd/traefik@v3.7.x` fails (traefik's go.mod
    replaces modules, and v3.7's dependencies are refused by the proxy: testbed/README.md); v3.6.12 builds in
    a wrapper module that requires it, carries its replace and exclude directives, and replaces it with a
    copy patched by TRAEFIK_PATCHES (<cache>/src/traefik-VERSION-slim)."""
    def build(dst: str) -> None:
        gobuild.need_go()
        lf = cache.build_log("traefik-" + TRAEFIK_RECIPE)
        env = gobuild.go_env()
        info = gobuild.mod_download("%s@%s" % (TRAEFIK_MODULE, TRAEFIK_VERSION), env)
        with open(info["GoMod"]) as f:
            gomod = traefik_wrapper_gomod(f.read())
        src = os.path.join(config.get().cache, "src")
        slim_name = "traefik-%s-slim" % TRAEFIK_VERSION
        gobuild.patched_copy("traefik", info["Dir"], os.path.join(src, slim_name), TRAEFIK_PATCHES,
                             TRAEFIK_DROPPED_IMPORTS)
        wd = cache.fresh_dir(os.path.join(src, "traefik-" + TRAEFIK_VERSION))
        cache.write_text(os.path.join(wd, "go.mod"), gomod + "\nreplace %s => ../%s\n" % (TRAEFIK_MODULE, slim_name))
        cache.write_text(os.path.join(wd, "tools.go"), gobuild.tools_go_one(TRAEFIK_MAIN))
        proc.run(["go", "mod", "tidy"], cwd=wd, env=env, logfile=lf)
        out = os.path.join(dst, "traefik")
        proc.run(["go", "build", "-trimpath", "-ldflags",
                  "-s -w -X %s/pkg/version.Version=%s" % (TRAEFIK_MODULE, TRAEFIK_VERSION),
                  "-o", out, TRAEFIK_MAIN], cwd=wd, env=env, logfile=lf)
        v = proc.out([out, "version"])
        if TRAEFIK_VERSION not in v:
            raise TestbedError("`traefik version` does not say %s: %s" % (TRAEFIK_VERSION, v), lf)
    return cache.cached("traefik", TRAEFIK_RECIPE, build, ["traefik"])


# ---------------------------------------------------------------------------------- kube-network-policies --
# The bed's kernel has no CONFIG_NFT_QUEUE (and loads no modules): nftables' `queue` expression fails with
# ENOENT and an unpatched kube-network-policies then enforces nothing, silently.  The xtables NFQUEUE target
# works there (nft_compat), so the build queues through it: assets/kube-network-policies/xt_nfqueue.go adds
# xtNFQueue(expr.Queue) -> *expr.Target to the package, and every `&expr.Queue{...}` rule expression becomes
# xtNFQueue(expr.Queue{...}) with the same queue number and flags.  (file, code, replacement, times expected)
KNP_MODULE = "sigs.k8s.io/kube-network-policies"
KNP_PKG_DIR = "pkg/networkpolicy"
KNP_HELPER = KNP_PKG_DIR + "/zz_selfhost_xt_nfqueue.go"
KNP_PATCH_MARK = "// selfhost test bed: xtables NFQUEUE target, not nft queue (kernels without CONFIG_NFT_QUEUE)"
KNP_QUEUE_PATCHES: tuple[tuple[str, str, str, int], ...] = (
    (KNP_PKG_DIR + "/controller.go",
     "\tqueue := &expr.Queue{Num: uint16(c.config.QueueID)}\n"
     "\tif c.config.FailOpen {\n"
     "\t\tqueue.Flag = expr.QueueFlagBypass\n"
     "\t}\n",
     "\tqueueSpec := expr.Queue{Num: uint16(c.config.QueueID)}\n"
     "\tif c.config.FailOpen {\n"
     "\t\tqueueSpec.Flag = expr.QueueFlagBypass\n"
     "\t}\n"
     "\tqueue := xtNFQueue(queueSpec) " + KNP_PATCH_MARK + "\n",
     2),
    (KNP_PKG_DIR + "/dnsagent.go",
     "\t\t\t&expr.Queue{Num: uint16(n.nfQueueID), Flag: expr.QueueFlagBypass},\n",
     "\t\t\txtNFQueue(expr.Queue{Num: uint16(n.nfQueueID), Flag: expr.QueueFlagBypass}), " + KNP_PATCH_MARK + "\n",
     1),
)


def netpol_patch(rel: str, text: str) -> str:
    """The file `rel` of kube-network-policies with its KNP_QUEUE_PATCHES applied; TestbedError unless each
    expected code is there exactly as many times as expected."""
    for f, code, repl, times in KNP_QUEUE_PATCHES:
        if f != rel:
            continue
        n = text.count(code)
        if n != times:
            raise TestbedError("kube-network-policies %s: the nft queue code to patch is there %d times, %d "
                               "expected; update addons.KNP_QUEUE_PATCHES:\n%s" % (rel, n, times, code))
        text = text.replace(code, repl)
    return text


def netpol_queue_uses(root: str) -> list[str]:
    """`file:line` of every nft queue rule expression in the (non-test) Go source under root: a *expr.Queue
    (its methods have pointer receivers, so only a pointer is an expr.Any; the patched code keeps expr.Queue
    values as the description it hands to xtNFQueue)."""
    uses = []
    for rel, p in gobuild.go_sources(root):
        with open(p) as f:
            for i, line in enumerate(f, 1):
                if re.search(r"(&|\*|\bnew\()\s*expr\.Queue\b", line):
                    uses.append("%s:%d" % (rel, i))
    return uses


def netpol_patch_tree(root: str) -> None:
    """Patch the writable copy of kube-network-policies at root in place (KNP_QUEUE_PATCHES + the xtNFQueue
    helper) and check that no nft queue expression is left anywhere in its non-test Go source."""
    if os.path.exists(os.path.join(root, KNP_HELPER)):
        raise TestbedError("kube-network-policies already has %s" % KNP_HELPER)
    for rel in sorted({f for f, _, _, _ in KNP_QUEUE_PATCHES}):
        p = os.path.join(root, rel)
        if not os.path.exists(p):
            raise TestbedError("kube-network-policies has no %s any more; update addons.KNP_QUEUE_PATCHES" % rel)
        with open(p) as f:
            text = netpol_patch(rel, f.read())
        cache.write_text(p, text)
    cache.write_text(os.path.join(root, KNP_HELPER), assets.text("kube-network-policies/xt_nfqueue.go"))
    left = netpol_queue_uses(root)
    if left:
        raise TestbedError("kube-network-policies still builds nft queue expressions after the patch (%s); "
                           "update addons.KNP_QUEUE_PATCHES" % " ".join(left))


def netpol_dir() -> str:
    """kube-network-policies (its `netpol` binary, as its Dockerfile names it), patched: KNP_QUEUE_PATCHES.
    `go build -overlay` refuses files in the module cache, so the module source is copied to
    <cache>/src/kube-network-policies-VERSION-patched, patched there, and built from a wrapper module that
    replaces the module with that copy."""
    def build(dst: str) -> None:
        gobuild.need_go()
        lf = cache.build_log("kube-network-policies-" + KUBE_NETWORK_POLICIES_RECIPE)
        env = gobuild.go_env()
        info = gobuild.mod_download("%s@%s" % (KNP_MODULE, KUBE_NETWORK_POLICIES_VERSION), env)
        with open(info["GoMod"]) as f:
            gover = gobuild.go_directive(f.read())
        src = os.path.join(config.get().cache, "src")
        patched_name = "kube-network-policies-%s-patched" % KUBE_NETWORK_POLICIES_VERSION
        patched = cache.fresh_dir(os.path.join(src, patched_name))
        gobuild.copy_tree_writable(info["Dir"], patched)
        netpol_patch_tree(patched)
        wd = cache.fresh_dir(os.path.join(src, "kube-network-policies-" + KUBE_NETWORK_POLICIES_VERSION))
        cache.write_text(os.path.join(wd, "go.mod"), (
            "module selfhost.test/netpolbuild\n\ngo %s\n\nrequire %s %s\n\nreplace %s => ../%s\n" % (
                gover, KNP_MODULE, KUBE_NETWORK_POLICIES_VERSION, KNP_MODULE, patched_name)))
        cache.write_text(os.path.join(wd, "tools.go"), gobuild.tools_go_one(KNP_MODULE + "/cmd"))
        proc.run(["go", "mod", "tidy"], cwd=wd, env=env, logfile=lf)
        out = os.path.join(dst, "netpol")
        proc.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, KNP_MODULE + "/cmd"],
                 cwd=wd, env=env, logfile=lf)
        proc.run([out, "--help"], logfile=lf)  # it runs (its usage goes to the log)
    return cache.cached("kube-network-policies", KUBE_NETWORK_POLICIES_RECIPE, build, ["netpol"])
