"""The build cache: <cache>/<component>-<version>/, complete only with its `.complete` stamp.

Builds go to <dir>.tmp and are renamed into place, so an interrupted build is redone, never half-used; a
file lock per component-version lets concurrent invocations (and instances) wait instead of building twice.
The directory names are the cache keys: existing caches stay valid only while they are unchanged."""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from typing import Callable, Iterator, Sequence

from . import config, proc
from .errors import TestbedError


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """Serialise concurrent testbed invocations (e.g. parallel `clis` from tests)."""
    cache = config.get().cache
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, ".%s.lock" % name), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def umount_below(path: str) -> None:
    """Unmount everything mounted at or below path (deepest first), e.g. a crashed debootstrap's /proc."""
    path = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            mps = [line.split()[4].replace("\\040", " ") for line in f]
    except OSError:
        return
    for mp in sorted((m for m in mps if m == path or m.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)


def safe_rmtree(path: str) -> None:
    umount_below(path)
    shutil.rmtree(path, ignore_errors=True)


def cache_dir(component: str, version: str) -> str:
    return os.path.join(config.get().cache, "%s-%s" % (component, version))


def cached(component: str, version: str, build: Callable[[str], None], files: Sequence[str]) -> str:
    """Return the cache dir for component-version, building it (into a temp dir renamed into
    place) when the stamp or any of `files` is missing.  Idempotent and safe to run concurrently."""
    d = cache_dir(component, version)

    def complete() -> bool:
        return os.path.exists(os.path.join(d, ".complete")) and all(
            os.path.exists(os.path.join(d, f)) for f in files)
    if complete():
        return d
    with file_lock("%s-%s" % (component, version)):
        if complete():
            return d
        tmp = d + ".tmp"
        safe_rmtree(tmp)
        os.makedirs(tmp)
        t0 = time.time()
        with proc.cpu_meter() as cpu:
            build(tmp)
        for f in files:
            if not os.path.exists(os.path.join(tmp, f)):
                raise TestbedError("build of %s-%s did not produce %s" % (component, version, f))
        with open(os.path.join(tmp, ".complete"), "w") as fh:
            fh.write("built %s in %.0fs (CPU %.0fs)\n" % (datetime.datetime.now().isoformat(), time.time() - t0,
                                                         cpu.seconds))
        safe_rmtree(d)
        os.rename(tmp, d)
        proc.log("built %s-%s in %.0fs (CPU %.0fs) -> %s" % (component, version, time.time() - t0, cpu.seconds, d))
    return d


def build_log(name: str) -> str:
    d = os.path.join(config.get().cache, "logs")
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name + ".log")


def sha256_file(p: str) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def fresh_dir(path: str) -> str:
    """An empty directory at path (a generated wrapper module is rewritten on every build)."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def write_text(path: str, content: str, mode: int | None = None) -> None:
    with open(path, "w") as f:
        f.write(content)
    if mode is not None:
        os.chmod(path, mode)
