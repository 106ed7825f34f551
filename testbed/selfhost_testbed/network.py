"""The bed's network on the machine side: a bridge with the host-side address, nftables rules that keep the
hosts off every other network, and the apt proxy the hosts use."""
from __future__ import annotations

import os
import re
import shutil

from . import assets, config, proc
from .config import Config


def forward_rules(cfg: Config) -> str:
    """Network rule: the test hosts reach only the host side (apt proxy) and each other; never route them
    anywhere else.  Host-to-host frames are bridged, but with br_netfilter loaded on the machine (kubelet
    hosts want bridge-nf-call-iptables=1) they traverse this forward hook too: accept those first."""
    return assets.render("network/forward.nft", table=cfg.nft_table, bridge=cfg.bridge)


def bridge_exists(cfg: Config) -> bool:
    return proc.probe(["ip", "link", "show", cfg.bridge])


def net_up() -> None:
    cfg = config.get()
    if not bridge_exists(cfg):
        proc.run(["ip", "link", "add", cfg.bridge, "type", "bridge"], quiet=True)
    if cfg.host_gw + "/24" not in proc.out(["ip", "-o", "addr", "show", "dev", cfg.bridge]):
        proc.run(["ip", "addr", "add", cfg.host_gw + "/24", "dev", cfg.bridge], quiet=True)
    proc.run(["ip", "link", "set", cfg.bridge, "up"], quiet=True)
    proc.run(["nft", "delete", "table", "inet", cfg.nft_table], check=False, capture=True, quiet=True)
    r = proc.run(["nft", "-f", "-"], input=forward_rules(cfg), check=False, capture=True, quiet=True)
    if r.returncode:
        proc.log("warning: could not install the nftables forward-drop table:", r.stderr.decode().strip())


def net_down() -> None:
    """Remove leftover veths of this instance, its bridge and its nftables table (root only)."""
    cfg = config.get()
    # veths normally vanish with the container's netns; remove any leftover anyway
    for line in proc.out(["ip", "-o", "link", "show"]).splitlines():
        m = re.match(r"\d+:\s+((?:vb|ve)-%s-(?:host|k8s)\d+)[@:]" % re.escape(cfg.name_prefix), line)
        if m:
            proc.run(["ip", "link", "del", m.group(1)], check=False, quiet=True)
    if bridge_exists(cfg):
        proc.run(["ip", "link", "del", cfg.bridge], check=False, quiet=True)
    if shutil.which("nft"):
        proc.run(["nft", "delete", "table", "inet", cfg.nft_table], check=False, capture=True, quiet=True)


def acng_conf(cfg: Config, log_dir: str) -> str:
    """apt-cacher-ng's own config: the Debian package's backends_debian names ftp.debian.org, which these
    machines cannot reach; without Remap lines apt-cacher-ng fetches from the host named in the request (the
    mirror from the machine's apt sources, written into the rootfs) and still caches what it fetched."""
    return assets.render("network/acng.conf", cache_dir=cfg.apt_cache, log_dir=log_dir, address=cfg.host_gw,
                         port=cfg.apt_proxy_port)


def apt_proxy_up() -> None:
    if proc.read_pid("apt-cacher-ng"):
        return
    cfg = config.get()
    d = cfg.state_path("apt-cacher-ng")
    os.makedirs(d, exist_ok=True)
    # downloaded .debs survive `down`; one cache per instance (two apt-cacher-ng must not share one)
    os.makedirs(cfg.apt_cache, exist_ok=True)
    conf = os.path.join(d, "conf")
    os.makedirs(conf, exist_ok=True)
    with open(os.path.join(conf, "acng.conf"), "w") as f:
        f.write(acng_conf(cfg, d))
    proc.spawn("apt-cacher-ng", ["/usr/sbin/apt-cacher-ng", "-c", conf])
    proc.wait_for("apt-cacher-ng on %s:%d" % (cfg.host_gw, cfg.apt_proxy_port),
                  lambda: proc.tcp_open(cfg.host_gw, cfg.apt_proxy_port), 30,
                  cfg.state_path("logs", "apt-cacher-ng.log"), "apt-cacher-ng")
