"""Config: every setting of the bed that depends on the environment, built in one place (Config.from_env).

SELFHOST_TESTBED_INSTANCE=N (default 0): a second, independent bed on the same machine.  Instance N has
subnet 10.77.N.0/24, bridge tbselfhostN, machine names tbN-*, its own nft table, state dir, apt proxy and
loopback ports (+1000*N).  Instance 0 keeps the historical names (tb-host1, tbselfhost0, ...).
"""
from __future__ import annotations

import dataclasses
import os
import pwd
from typing import Mapping

from .errors import TestbedError

MAX_INSTANCE = 50
APT_PROXY_PORT = 3142


@dataclasses.dataclass(frozen=True)
class Config:
    instance: int
    name_prefix: str        # machine names: <prefix>-hostK, <prefix>-k8sK
    subnet: str             # first three octets: host K has .(10+K), k8s host K has .(100+K)
    host_gw: str            # the host side of the bridge (.1): apt proxy, k8s hosts' default route
    bridge: str
    nft_table: str          # inet table holding the bed's forward rules
    apt_proxy_port: int
    etcd_port: int
    etcd_peer_port: int
    apiserver_port: int
    kcm_port: int
    sched_port: int
    kwok_port: int
    cache: str              # build cache shared by all instances: <cache>/<component>-<version>
    state: str              # this instance's pids, logs, certs, hosts
    apt_cache: str          # this instance's apt-cacher-ng cache (two apt-cacher-ng must not share one)
    tofu_version: str | None  # SELFHOST_TESTBED_TOFU_VERSION: build this OpenTofu, not the newest candidate

    @staticmethod
    def from_env(environ: Mapping[str, str], uid: int) -> "Config":
        raw = environ.get("SELFHOST_TESTBED_INSTANCE") or "0"
        try:
            n = int(raw)
        except ValueError:
            n = -1
        if not 0 <= n <= MAX_INSTANCE:
            raise TestbedError("SELFHOST_TESTBED_INSTANCE must be 0..%d" % MAX_INSTANCE)
        home = environ.get("HOME") or pwd.getpwuid(uid).pw_dir
        cache = os.path.join(environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"), "selfhost-testbed")
        suffix = "" if n == 0 else "-i%d" % n
        subnet = "10.77.%d" % n
        return Config(
            instance=n,
            name_prefix="tb" if n == 0 else "tb%d" % n,
            subnet=subnet,
            host_gw=subnet + ".1",
            bridge="tbselfhost%d" % n,
            nft_table="selfhost_testbed" if n == 0 else "selfhost_testbed%d" % n,
            apt_proxy_port=APT_PROXY_PORT,
            etcd_port=23790 + 1000 * n,
            etcd_peer_port=23800 + 1000 * n,
            apiserver_port=16443 + 1000 * n,
            kcm_port=10257 + 1000 * n,
            sched_port=10259 + 1000 * n,
            kwok_port=10247 + 1000 * n,
            cache=cache,
            state=environ.get("SELFHOST_TESTBED_DIR") or "/tmp/selfhost-testbed-%d%s" % (uid, suffix),
            apt_cache=os.path.join(cache, "apt-cacher-ng" + suffix),
            tofu_version=environ.get("SELFHOST_TESTBED_TOFU_VERSION") or None,
        )

    def host_name(self, i: int) -> str:
        return "%s-host%d" % (self.name_prefix, i)

    def host_addr(self, i: int) -> str:
        return "%s.%d" % (self.subnet, 10 + i)

    def k8s_host_name(self, i: int) -> str:
        return "%s-k8s%d" % (self.name_prefix, i)

    def k8s_host_addr(self, i: int) -> str:
        return "%s.%d" % (self.subnet, 100 + i)

    def state_path(self, *parts: str) -> str:
        return os.path.join(self.state, *parts)


_current: Config | None = None


def get() -> Config:
    """The Config of this process: from os.environ, on first use (cli.main builds it first)."""
    global _current
    if _current is None:
        _current = Config.from_env(os.environ, os.getuid())
    return _current


def use(cfg: Config) -> None:
    """Make cfg the Config of this process (cli.main; tests)."""
    global _current
    _current = cfg
