"""The package renders byte for byte what the single-file program rendered (golden/, see harness.py)."""
from __future__ import annotations

import difflib
import os
import sys
import unittest
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from selfhost_testbed import (cli, cache, config, control_plane, gobuild, hosts, machine, network,  # noqa: E402
                              proc, rootfs)
from selfhost_testbed.builds import addons, bundle, clis, debs, images, kubernetes  # noqa: E402
from selfhost_testbed.errors import TestbedError  # noqa: E402

# the old program's names -> (module, attribute) in the package
WHERE: dict[str, tuple[Any, str]] = {
    "run": (proc, "run"), "out": (proc, "out"), "spawn": (proc, "spawn"), "wait_for": (proc, "wait_for"),
    "read_pid": (proc, "read_pid"), "tcp_open": (proc, "tcp_open"), "log": (proc, "log"), "probe": (proc, "probe"),
    "cache_dir": (cache, "cache_dir"), "cached": (cache, "cached"), "build_log": (cache, "build_log"),
    "need_go": (gobuild, "need_go"), "go_install_dir": (gobuild, "go_install_dir"),
    "need_root": (machine, "need_root"), "apt_install": (machine, "apt_install"),
    "images_list": (images, "images_list"), "bundle_dir_if_built": (bundle, "bundle_dir_if_built"),
    "bundle_dir": (bundle, "bundle_dir"), "_build_bundle": (bundle, "build_bundle"),
    "kube_dir": (kubernetes, "kube_dir"), "kube_node_dir": (kubernetes, "kube_node_dir"),
    "kwok_stages": (kubernetes, "kwok_stages"), "_build_kube": (kubernetes, "build_kube"),
    "flannel_dir": (addons, "flannel_dir"), "small_bins_dir": (addons, "small_bins_dir"),
    "traefik_dir": (addons, "traefik_dir"), "netpol_dir": (addons, "netpol_dir"),
    "coredns_dir": (addons, "coredns_dir"),
    "debs_dir": (debs, "debs_dir"), "deb_unpack": (debs, "deb_unpack"),
    "_build_tf_wrapped": (clis, "build_tf_wrapped"), "_build_tf_new": (clis, "build_tf_new"),
    "_build_tofu": (clis, "build_tofu"), "tofu_candidates": (clis, "tofu_candidates"),
    "rootfs_dir": (rootfs, "rootfs_dir"), "_build_rootfs": (rootfs, "build_rootfs"),
    "debian_mirror": (rootfs, "debian_mirror"),
    "net_up": (network, "net_up"), "apt_proxy_up": (network, "apt_proxy_up"),
    "ssh_key": (hosts, "ssh_key"), "ssh_cmd": (hosts, "ssh_cmd"), "host_up": (hosts, "host_up"),
    "host_down": (hosts, "host_down"), "host_keys_lines": (hosts, "host_keys_lines"),
    "write_kubeconfig": (control_plane, "write_kubeconfig"), "make_pki": (control_plane, "make_pki"),
    "api_get": (control_plane, "api_get"), "cluster_up": (control_plane, "cluster_up"),
    "cmd_env": (cli, "cmd_env"), "cmd_status": (cli, "cmd_status"), "cmd_up": (cli, "cmd_up"),
    "cmd_down": (cli, "cmd_down"), "cmd_clis": (cli, "cmd_clis"), "cmd_build": (cli, "cmd_build"),
    "cmd_bundle": (cli, "cmd_bundle"), "main": (cli, "main"),
}
ORIGINAL = {name: getattr(m, a) for name, (m, a) in WHERE.items()}
ORIGINAL["build_date"] = gobuild.build_date


class NewTarget(harness.Target):
    def load(self, env: dict[str, str]) -> None:
        self.restore()
        with harness.environ(env):
            config.use(config.Config.from_env(os.environ, os.getuid()))

    def restore(self) -> None:
        for name, (m, a) in WHERE.items():
            setattr(m, a, ORIGINAL[name])
        gobuild.build_date = ORIGINAL["build_date"]

    def fn(self, name: str) -> Callable[..., Any]:
        cfg = config.get()
        if name in ("host_name", "host_addr", "k8s_host_name", "k8s_host_addr"):
            return getattr(cfg, name)
        if name == "main":
            return lambda: cli.main()
        m, a = WHERE[name]
        return getattr(m, a)

    def patch(self, name: str, value: Any) -> None:
        if name == "probe" and isinstance(value, harness.FakeSubprocess):
            fake = value
            value = lambda cmd, timeout=None: fake.run(cmd).returncode == 0  # noqa: E731
        m, a = WHERE[name]
        setattr(m, a, value)

    def settings(self) -> dict[str, Any]:
        c = config.get()
        return {"INSTANCE": c.instance, "NAME_PREFIX": c.name_prefix, "SUBNET": c.subnet, "HOST_GW": c.host_gw,
                "APT_PROXY_PORT": c.apt_proxy_port, "ETCD_PORT": c.etcd_port, "ETCD_PEER_PORT": c.etcd_peer_port,
                "APISERVER_PORT": c.apiserver_port, "KCM_PORT": c.kcm_port, "SCHED_PORT": c.sched_port,
                "KWOK_PORT": c.kwok_port, "NFT_TABLE": c.nft_table, "BRIDGE": c.bridge, "CACHE": c.cache,
                "STATE": c.state}

    def fix_now(self) -> None:
        gobuild.build_date = lambda: harness.FIXED_NOW

    def error_types(self) -> tuple[type[BaseException], ...]:
        return (TestbedError,)


class GoldenTest(unittest.TestCase):
    """One test per scenario: every golden file of it, rendered again by the package."""

    maxDiff = None

    def check(self, scenario: str) -> None:
        t = NewTarget()
        saved = config._current
        try:
            got = harness.render(t, scenario)
        finally:
            t.restore()
            config.use(saved) if saved else None
        d = os.path.join(HERE, "golden", scenario)
        want_names = sorted(os.listdir(d))
        self.assertEqual(sorted(got), want_names, "golden files of %s" % scenario)
        for name in want_names:
            with open(os.path.join(d, name)) as f:
                want = f.read()
            if got[name] != want:
                diff = "".join(difflib.unified_diff(want.splitlines(True), got[name].splitlines(True),
                                                    "golden/%s/%s" % (scenario, name), "package"))
                self.fail("%s/%s differs from the old program's output:\n%s" % (scenario, name, diff[:6000]))


for _scenario in harness.SCENARIOS:
    setattr(GoldenTest, "test_" + _scenario.replace("-", "_"),
            (lambda s: lambda self: self.check(s))(_scenario))
