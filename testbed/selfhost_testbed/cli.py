"""testbed — a test bed of real parts for terraform-provider-selfhost, one command.

  testbed up [--hosts N] [--k8s-hosts M] [--no-cluster]
  testbed clis          install the Terraform/OpenTofu CLIs only, print their paths
  testbed bundle [all|current|previous]   build (cached by version) the air-gapped Kubernetes bundle(s),
                        print their paths (current first): v1.36.3, and the previous release v1.35.4
  testbed env           print export lines for the parts that are up
  testbed status        what is up (per component, with pids/addresses)
  testbed down          stop everything, leave nothing behind (idempotent)
  testbed build [k8s|clis|rootfs|all]   only build/cache, start nothing

Python 3 standard library only.  Needs root for `up --hosts`/`down`
(debootstrap, systemd-nspawn, network namespaces, overlay mounts, apt-get).

Cache (binaries, by version):  ${XDG_CACHE_HOME:-$HOME/.cache}/selfhost-testbed/<component>-<version>/
State (pids, certs, logs):     ${SELFHOST_TESTBED_DIR:-/tmp/selfhost-testbed-$UID}/  (-iN for instance N)
SELFHOST_TESTBED_INSTANCE=N:   a second, independent bed (subnet 10.77.N.0/24, bridge tbselfhostN, ...)
See testbed/README.md.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import signal
import sys
import time
from typing import Callable, Sequence

from . import cache, config, control_plane, hosts, machine, proc, rootfs
from .builds import bundle, clis, kubernetes
from .config import Config
from .errors import TestbedError
from .versions import APT_PACKAGES_HOSTS, K8S_PREVIOUS_VERSION, K8S_VERSION, KUBE_CACHE_VERSION

Command = Callable[[argparse.Namespace], None]


def cmd_up(a: argparse.Namespace) -> None:
    cfg = config.get()
    os.makedirs(cfg.state, exist_ok=True)
    t0 = time.time()
    if a.hosts < 0 or a.k8s_hosts < 0:
        raise TestbedError("--hosts and --k8s-hosts must be >= 0")
    with_hosts = a.hosts + a.k8s_hosts > 0
    if with_hosts:
        machine.need_root("up --hosts N (use --hosts 0 for the control plane only)")
        machine.apt_install(APT_PACKAGES_HOSTS)
    # debootstrap is mostly download and dpkg: run it beside the CPU-bound Go builds.  Should the CLIs fail,
    # leaving the `with` waits for the rootfs build, which then stays cached for the next run.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="rootfs") as pool:
        rootfs_future = pool.submit(rootfs.rootfs_dir) if with_hosts else None
        clis.record_clis([p for _, p in clis.clis()])
        if rootfs_future:
            rootfs_future.result()  # re-raises the rootfs build's TestbedError here, in the main thread
    if with_hosts:
        hosts.hosts_up(a.hosts, a.k8s_hosts)
    if not a.no_cluster:
        control_plane.cluster_up()
    proc.log("up in %.0fs" % (time.time() - t0))
    cmd_env(a)


def cmd_down(a: argparse.Namespace) -> None:
    cfg = config.get()
    if not os.path.isdir(cfg.state):
        proc.log("nothing to stop (%s does not exist)" % cfg.state)
        return
    control_plane.cluster_down()
    hosts.hosts_down()
    # anything else we recorded a pid for (never by name)
    if os.path.isdir(cfg.state_path("pids")):
        for n in os.listdir(cfg.state_path("pids")):
            proc.stop(n)
    # no mount may stay under the state dir
    for d in os.listdir(cfg.state):
        cache.umount_below(cfg.state_path(d))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(cfg.state_path("clis"))
    proc.log("down: stopped everything under %s (logs kept in %s/logs)" % (cfg.state, cfg.state))


def sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def env_exports(cfg: Config, cluster_up: bool, running_hosts: Sequence[hosts.Host], bundle_dir: str | None,
                cli_paths: Sequence[str], previous_bundle_dir: str | None = None) -> list[tuple[str, str]]:
    """What `testbed env` exports for the parts that are up (testbed/README.md, "Environment")."""
    lines = []
    if cluster_up:
        lines.append(("KUBECONFIG", cfg.state_path("kubeconfig")))
        kd = cache.cache_dir("kubernetes", KUBE_CACHE_VERSION)
        lines.append(("SELFHOST_TEST_KUBECTL", os.path.join(kd, "bin", "kubectl")))
    plain = [h for h in running_hosts if not h.get("k8s")]
    k8s = [h for h in running_hosts if h.get("k8s")]
    if plain:
        lines.append(("SELFHOST_TEST_HOSTS", " ".join("%s:%d" % (h["address"], h["port"]) for h in plain)))
    if k8s:
        lines.append(("SELFHOST_TEST_K8S_HOSTS", " ".join("%s:%d" % (h["address"], h["port"]) for h in k8s)))
        if bundle_dir:
            lines.append(("SELFHOST_TEST_K8S_BUNDLE", bundle_dir))
        if previous_bundle_dir:
            lines.append(("SELFHOST_TEST_K8S_BUNDLE_PREVIOUS", previous_bundle_dir))
            lines.append(("SELFHOST_TEST_K8S_PREVIOUS_VERSION", K8S_PREVIOUS_VERSION))
    if running_hosts:
        lines.append(("SELFHOST_TEST_SSH_USER", "root"))
        lines.append(("SELFHOST_TEST_SSH_KEY", cfg.state_path("ssh", "id_ed25519")))
        lines.append(("SELFHOST_TEST_KNOWN_HOSTS", cfg.state_path("known_hosts")))
        lines.append(("SELFHOST_TEST_APT_PROXY", "http://%s:%d" % (cfg.host_gw, cfg.apt_proxy_port)))
    if cli_paths:
        lines.append(("SELFHOST_TEST_CLIS", " ".join(cli_paths)))
    return lines


def render_exports(lines: Sequence[tuple[str, str]]) -> str:
    return "".join("export %s=%s\n" % (k, sh_quote(v)) for k, v in lines)


def recorded_clis(cfg: Config) -> list[str] | None:
    """The CLI paths `clis`/`up` recorded (None: nothing recorded)."""
    try:
        with open(cfg.state_path("clis")) as f:
            return [line.strip() for line in f]
    except OSError:
        return None


def cmd_env(a: argparse.Namespace) -> None:
    cfg = config.get()
    running = hosts.hosts_state()
    has_k8s = any(h.get("k8s") for h in running)
    paths = [p for p in recorded_clis(cfg) or [] if p and os.path.exists(p)]
    sys.stdout.write(render_exports(env_exports(
        cfg, control_plane.cluster_is_up(), running, bundle.bundle_dir_if_built() if has_k8s else None, paths,
        bundle.previous_bundle_dir_if_built() if has_k8s else None)))


def status_line(name: str, pid: int | None, where: str) -> str:
    return "%-24s %-8s pid=%-8s %s" % (name, "up" if pid else "down", pid or "-", where)


def cmd_status(a: argparse.Namespace) -> None:
    cfg = config.get()
    up_any = False
    print("state dir: %s" % cfg.state)
    for c, addr in (("etcd", "https://127.0.0.1:%d" % cfg.etcd_port),
                    ("kube-apiserver", "https://127.0.0.1:%d" % cfg.apiserver_port),
                    ("kube-controller-manager", "https://127.0.0.1:%d" % cfg.kcm_port),
                    ("kube-scheduler", "https://127.0.0.1:%d" % cfg.sched_port),
                    ("kwok", "https://127.0.0.1:%d" % cfg.kwok_port),
                    ("apt-cacher-ng", "http://%s:%d" % (cfg.host_gw, cfg.apt_proxy_port))):
        pid = proc.read_pid(c)
        up_any |= bool(pid)
        print(status_line(c, pid, addr))
    if proc.read_pid("kube-apiserver"):
        with contextlib.suppress(Exception):
            print("%-24s %s" % ("  /readyz", control_plane.api_get("/readyz")[1].strip()))
            print("%-24s %s" % ("  version", json.loads(control_plane.api_get("/version")[1])["gitVersion"]))
    for h in hosts.hosts_recorded():
        pid = proc.read_pid(h["name"])
        up_any |= bool(pid)
        print(status_line(h["name"], pid, "ssh root@%s:%d" % (h["address"], h["port"])))
    for p in recorded_clis(cfg) or []:
        print("%-24s %s" % ("cli", p))
    if not up_any:
        print("nothing running")


def cmd_clis(a: argparse.Namespace) -> None:
    paths = [p for _, p in clis.clis()]
    clis.record_clis(paths)
    for p in paths:
        print(p)


def cmd_build(a: argparse.Namespace) -> None:
    w = a.what
    if w in ("clis", "all"):
        for _, p in clis.clis():
            print(p)
    if w in ("k8s", "all"):
        kd = kubernetes.kube_dir()
        kubernetes.kwok_stages(kd)
        print(kd)
    if w in ("rootfs", "all"):
        print(rootfs.rootfs_dir())


def cmd_bundle(a: argparse.Namespace) -> None:
    which = getattr(a, "which", "all")
    dirs = []
    if which in ("all", "current"):
        t0 = time.time()
        dirs.append(bundle.bundle_dir())
        proc.log("bundle ready in %.0fs" % (time.time() - t0))
    if which in ("all", "previous"):
        t0 = time.time()
        dirs.append(bundle.previous_bundle_dir())
        proc.log("previous bundle (%s) ready in %.0fs" % (K8S_PREVIOUS_VERSION, time.time() - t0))
    for d in dirs:
        print(d)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="testbed", description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="start CLIs, hosts and the control plane")
    u.add_argument("--hosts", type=int, default=3, help="number of nspawn hosts (0 for none)")
    u.add_argument("--k8s-hosts", type=int, default=0,
                   help="number of extra hosts that can run a real kubelet (tbN-k8sK at .100+K; nothing installed)")
    u.add_argument("--no-cluster", action="store_true", help="do not start the Kubernetes control plane")
    sub.add_parser("down", help="stop everything started by up")
    sub.add_parser("env", help="print export lines for the parts that are up")
    sub.add_parser("status", help="what is up")
    sub.add_parser("clis", help="install only the CLIs and print their paths, one per line")
    bu = sub.add_parser("bundle", help="build (cached by version) the air-gapped Kubernetes bundle(s); print the path "
                        "of each, one per line (current first)")
    bu.add_argument("which", nargs="?", default="all", choices=["all", "current", "previous"],
                    help="current: %s; previous: %s, the release an upgrade starts from (same layout); "
                    "all (default): both" % (K8S_VERSION, K8S_PREVIOUS_VERSION))
    b = sub.add_parser("build", help="build/cache without starting anything")
    b.add_argument("what", nargs="?", default="all", choices=["all", "clis", "k8s", "rootfs"])
    return p


def commands() -> dict[str, Command]:
    # looked up at call time, so a test can replace a command in this module
    g = globals()
    return {"up": g["cmd_up"], "down": g["cmd_down"], "env": g["cmd_env"], "status": g["cmd_status"],
            "clis": g["cmd_clis"], "build": g["cmd_build"], "bundle": g["cmd_bundle"]}


def main(argv: Sequence[str] | None = None) -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `testbed status | head` must not trace back
    try:
        # the environment is read once, before anything else (a bad SELFHOST_TESTBED_INSTANCE stops even --help)
        config.use(Config.from_env(os.environ, os.getuid()))
        a = parser().parse_args(argv)
        commands()[a.cmd](a)
    except TestbedError as e:
        proc.report(e)
        sys.exit(1)
