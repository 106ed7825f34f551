"""Debian packages for the bundle, fetched with this machine's apt (its mirror) into the cache."""
from __future__ import annotations

import glob
import os
from typing import Sequence

from .. import cache, proc
from ..errors import TestbedError
from ..versions import DEBIAN_SUITE

APT_DEPENDS = ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
               "--no-breaks", "--no-replaces", "--no-enhances"]


def parse_depends(output: str) -> list[str]:
    """Package names from `apt-cache depends --recurse` (unindented lines; <virtual> ones are skipped)."""
    return sorted({ln.strip() for ln in output.splitlines() if ln and not ln.startswith((" ", "<"))})


def deb_closure(pkgs: Sequence[str]) -> list[str]:
    return parse_depends(proc.out(APT_DEPENDS + list(pkgs)))


def debs_dir(tag: str, pkgs: Sequence[str], closure: bool) -> str:
    """The .debs of pkgs (with closure, their Depends too) in <cache>/debs-<tag>-<suite>/."""
    names = deb_closure(pkgs) if closure else list(pkgs)
    key = "%s-%s" % (tag, DEBIAN_SUITE)

    def build(dst: str) -> None:
        lf = cache.build_log("debs-" + tag)
        os.chmod(dst, 0o777)  # apt-get download drops privileges to _apt
        r = proc.run(["apt-get", "download"] + names, cwd=dst, logfile=lf, check=False)
        if r.returncode:
            proc.run(["apt-get", "update"], logfile=lf)
            proc.run(["apt-get", "download"] + names, cwd=dst, logfile=lf)
        cache.write_text(os.path.join(dst, "packages"), "\n".join(names) + "\n")
    d = cache.cached("debs", key, build, ["packages"])
    with open(os.path.join(d, "packages")) as f:
        if set(f.read().split()) != set(names):
            cache.safe_rmtree(d)  # the package list changed: fetch again
            d = cache.cached("debs", key, build, ["packages"])
    return d


def deb_unpack(deb_dir: str, names: Sequence[str], dst: str) -> None:
    for n in names:
        fs = glob.glob(os.path.join(deb_dir, "%s_*.deb" % n))
        if not fs:
            raise TestbedError("no .deb for %s in %s" % (n, deb_dir))
        proc.run(["dpkg-deb", "-x", fs[0], dst], quiet=True)


def listed_packages(deb_dir: str) -> list[str]:
    """The package names a debs_dir holds (its `packages` file)."""
    with open(os.path.join(deb_dir, "packages")) as f:
        return f.read().split()
