"""This machine: root, and the Debian packages the bed needs on it."""
from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Iterator, Sequence

from . import cache, proc
from .errors import TestbedError

# do not let package scripts start system daemons (apt-cacher-ng): the bed runs its own instance
POLICY_RC_D = "/usr/sbin/policy-rc.d"


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise TestbedError("%s needs root (debootstrap, systemd-nspawn, netns, mounts)" % what)


def installed(pkg: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return "install ok installed" in r.stdout.decode()


@contextlib.contextmanager
def no_daemon_starts() -> Iterator[None]:
    made = False
    if not os.path.exists(POLICY_RC_D):
        cache.write_text(POLICY_RC_D, "#!/bin/sh\nexit 101\n", 0o755)
        made = True
    try:
        yield
    finally:
        if made:
            os.unlink(POLICY_RC_D)


def apt_install(pkgs: Sequence[str]) -> None:
    missing = [p for p in pkgs if not installed(p)]
    if not missing:
        return
    need_root("apt-get install " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lf = cache.build_log("apt")
    with no_daemon_starts():
        r = proc.run(["apt-get", "install", "-y", "--no-install-recommends"] + missing, env=env, logfile=lf,
                     check=False)
        if r.returncode != 0:
            proc.run(["apt-get", "update"], env=env, logfile=lf)
            proc.run(["apt-get", "install", "-y", "--no-install-recommends"] + missing, env=env, logfile=lf)
