"""The hosts' base: one cached debootstrap rootfs (each host is an overlay of it, see hosts)."""
from __future__ import annotations

import contextlib
import glob
import os
import re

from . import cache, config, machine, proc
from .versions import DEBIAN_SUITE, ROOTFS_PACKAGES, ROOTFS_VERSION

APT_PROXY_CONF = "etc/apt/apt.conf.d/01selfhost-testbed-proxy"
FALLBACK_MIRROR = "http://deb.debian.org/debian"


def rootfs_dir() -> str:
    return cache.cached("rootfs", ROOTFS_VERSION, build_rootfs,
                        ["root/etc/debian_version", "root/usr/sbin/sshd", "root/lib/systemd/systemd"])


def mirror_from_sources(texts: list[str], suite: str = DEBIAN_SUITE) -> str | None:
    """The first mirror that serves `suite` in apt source files (one-line or deb822 format)."""
    cands = []
    for txt in texts:
        for m in re.finditer(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", txt, re.M):
            cands.append((m.group(1), m.group(2)))
        for para in re.split(r"\n\s*\n", txt):
            u = re.search(r"^URIs:\s*(\S+)", para, re.M)
            s = re.search(r"^Suites:\s*(.+)$", para, re.M)
            if u and s:
                for one in s.group(1).split():
                    cands.append((u.group(1), one))
    for uri, s2 in cands:
        if s2 == suite:
            return uri.rstrip("/")
    return None


def debian_mirror() -> str:
    """The Debian mirror from the machine's apt sources (the only one these machines reach)."""
    texts = []
    for fn in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
        try:
            with open(fn) as f:
                texts.append(f.read())
        except OSError:
            continue
    return mirror_from_sources(texts) or FALLBACK_MIRROR


def sources_list(mirror: str) -> str:
    sec = mirror.rsplit("/", 1)[0] + "/debian-security" if mirror.endswith("/debian") else mirror
    return "deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n" % (
        mirror, DEBIAN_SUITE, mirror, DEBIAN_SUITE, sec, DEBIAN_SUITE)


def apt_proxy_conf(cfg: config.Config) -> str:
    return 'Acquire::http::Proxy "http://%s:%d";\n' % (cfg.host_gw, cfg.apt_proxy_port)


def build_rootfs(dst: str) -> None:
    machine.need_root("building the Debian rootfs")
    machine.apt_install(["debootstrap"])
    lf = cache.build_log("rootfs")
    mirror = debian_mirror()
    root = os.path.join(dst, "root")
    proc.run(["debootstrap", "--variant=minbase", "--include=" + ROOTFS_PACKAGES, DEBIAN_SUITE, root, mirror],
             logfile=lf)
    # per-host identity is written into each host's overlay; the base has none
    for k in glob.glob(os.path.join(root, "etc/ssh/ssh_host_*")):
        os.unlink(k)
    cache.write_text(os.path.join(root, "etc/machine-id"), "")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(root, "var/lib/dbus/machine-id"))
    cache.write_text(os.path.join(root, "etc/apt/sources.list"), sources_list(mirror))
    cache.write_text(os.path.join(root, APT_PROXY_CONF), apt_proxy_conf(config.get()))
    # static address on host0 via systemd-networkd (file written per host)
    proc.run(["systemctl", "--root=" + root, "enable", "systemd-networkd.service", "ssh.service"], logfile=lf)
    # units that cannot work in a container without devices; keep `systemctl is-system-running` honest
    for u in ["systemd-networkd-wait-online.service"]:
        proc.run(["systemctl", "--root=" + root, "mask", u], logfile=lf, check=False)
    proc.run(["chroot", root, "apt-get", "clean"], logfile=lf, check=False)
    cache.write_text(os.path.join(dst, "recipe"), "debootstrap --variant=minbase --include=%s %s %s\n" % (
        ROOTFS_PACKAGES, DEBIAN_SUITE, mirror))
