"""Running things: log lines, commands (argument lists only, never a shell), daemons with pid files."""
from __future__ import annotations

import contextlib
import datetime
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, Iterator, Mapping, Sequence

from . import config
from .errors import TestbedError

Env = Mapping[str, str]


def log(*a: object) -> None:
    print("testbed:", *a, file=sys.stderr, flush=True)


def report(err: TestbedError) -> None:
    """Print a failed step and the tail of its log (the main thread does this for every TestbedError)."""
    log("ERROR:", err.message)
    if err.logfile and os.path.exists(err.logfile):
        log("---- tail of %s ----" % err.logfile)
        with open(err.logfile, "rb") as f:
            data = f.read()[-6000:]
        sys.stderr.write(data.decode("utf-8", "replace"))
        log("---- end of %s ----" % err.logfile)


class CpuMeter:
    """CPU seconds (user + system) of the commands this thread ran while the meter was open, their children
    included: what a cold build costs, whatever else shares the cores (wall time does not tell that)."""
    def __init__(self) -> None:
        self.seconds = 0.0


_meters = threading.local()


def _open_meters() -> list[CpuMeter]:
    """This thread's open meters, innermost last."""
    if not hasattr(_meters, "stack"):
        _meters.stack = []
    stack: list[CpuMeter] = _meters.stack
    return stack


@contextlib.contextmanager
def cpu_meter() -> Iterator[CpuMeter]:
    """Count the CPU time of every command run() runs on this thread until the block ends (meters nest: an
    inner build counts towards the outer one too)."""
    m = CpuMeter()
    _open_meters().append(m)
    try:
        yield m
    finally:
        _open_meters().remove(m)


class _MeteredPopen(subprocess.Popen):  # type: ignore[type-arg]
    """Popen that reaps its child with wait4, which also returns the CPU time of the child and of every
    descendant it waited for (a `go build`'s compile and link processes)."""
    cpu_seconds = 0.0

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        try:
            pid, sts, ru = os.wait4(self.pid, wait_flags)
        except ChildProcessError:  # reaped elsewhere: the status is lost, as in Popen's own _try_wait
            return self.pid, 0
        if pid == self.pid:
            self.cpu_seconds = ru.ru_utime + ru.ru_stime
        return pid, sts


def _run_metered(cmd: list[str], stdout: object, stderr: object, env: Env | None, cwd: str | None,
                 data: bytes | None, timeout: float | None) -> subprocess.CompletedProcess[bytes]:
    """subprocess.run (the same handling of a timeout and of Ctrl-C), adding the command's CPU time to this
    thread's open meters."""
    p = _MeteredPopen(cmd, stdin=subprocess.PIPE if data is not None else None, stdout=stdout, stderr=stderr,
                      env=env, cwd=cwd)
    try:
        with p:
            try:
                out, err = p.communicate(data, timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise
            except BaseException:  # Ctrl-C included; Popen.__exit__ waits for the child
                p.kill()
                raise
    finally:
        for m in _open_meters():
            m.seconds += p.cpu_seconds
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def run(cmd: Sequence[str], check: bool = True, capture: bool = False, env: Env | None = None,
        cwd: str | None = None, logfile: str | None = None, quiet: bool = False,
        input: str | bytes | None = None, timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a command (an argument list).  With logfile, append stdout+stderr there; a failure then raises a
    TestbedError that carries the log, whose tail the main thread prints."""
    if isinstance(cmd, (str, bytes)):
        # no silent shell: a string would be split into characters, or need shell=True and its quoting
        raise TypeError("run() takes an argument list, not %r" % (cmd,))
    cmd = list(cmd)
    if not quiet:
        log("+", " ".join(cmd))
    data = input.encode() if isinstance(input, str) else input
    if logfile:
        os.makedirs(os.path.dirname(logfile), exist_ok=True)
        with open(logfile, "ab") as lf:
            lf.write(("\n+ %s\n" % " ".join(cmd)).encode())
            lf.flush()
            r = _run_metered(cmd, lf, subprocess.STDOUT, env, cwd, data, timeout)
        if check and r.returncode != 0:
            raise TestbedError("command failed (exit %d): %s" % (r.returncode, cmd), logfile)
        return r
    if capture:
        r = _run_metered(cmd, subprocess.PIPE, subprocess.PIPE, env, cwd, data, timeout)
        if check and r.returncode != 0:
            raise TestbedError("command failed (exit %d): %s\n%s%s" % (
                r.returncode, cmd, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")))
        return r
    r = _run_metered(cmd, None, None, env, cwd, data, timeout)
    if check and r.returncode != 0:
        raise TestbedError("command failed (exit %d): %s" % (r.returncode, cmd))
    return r


def out(cmd: Sequence[str], env: Env | None = None, cwd: str | None = None) -> str:
    """stdout of a command that must succeed, stripped."""
    return run(cmd, capture=True, quiet=True, env=env, cwd=cwd).stdout.decode().strip()


def probe(cmd: Sequence[str], timeout: float | None = None) -> bool:
    """Whether a command succeeds; its output is discarded (a yes/no question, not a step)."""
    return subprocess.run(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=timeout).returncode == 0


def output_of(cmd: Sequence[str]) -> str:
    """stdout+stderr of a command whatever its exit status, stripped (for messages)."""
    return subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode().strip()


# ---------------------------------------------------------------------------------------------- daemons --
def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # zombies are not alive
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_pid(name: str) -> int | None:
    """The pid of daemon `name` if it is alive (pid files: <state>/pids/<name>)."""
    try:
        with open(config.get().state_path("pids", name)) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def spawn(name: str, cmd: Sequence[str], env: Env | None = None, cwd: str | None = None) -> int:
    """Start a daemon in its own session, log to <state>/logs/NAME.log, remember its pid."""
    cfg = config.get()
    os.makedirs(cfg.state_path("logs"), exist_ok=True)
    os.makedirs(cfg.state_path("pids"), exist_ok=True)
    lf = cfg.state_path("logs", name + ".log")
    with open(lf, "ab") as f:
        f.write(("\n==== %s start: %s\n" % (datetime.datetime.now().isoformat(), " ".join(cmd))).encode())
        f.flush()
        p = subprocess.Popen(list(cmd), stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd, start_new_session=True)
    with open(cfg.state_path("pids", name), "w") as f:
        f.write("%d\n" % p.pid)
    return p.pid


def stop(name: str, sig: int = signal.SIGTERM, grace: float = 20.0) -> None:
    """Stop a daemon started by spawn() (its whole process group), then forget it."""
    pf = config.get().state_path("pids", name)
    pid = read_pid(name)
    if pid:
        for s, wait in ((sig, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, s)
            except ProcessLookupError:
                break
            except PermissionError:
                os.kill(pid, s)
            t = time.time()
            while time.time() - t < wait:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                if not pid_alive(pid) and not pgroup_alive(pid):
                    break
                time.sleep(0.2)
            else:
                continue
            break
    with contextlib.suppress(FileNotFoundError):
        os.unlink(pf)


def pgroup_alive(pgid: int) -> bool:
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    return True
            except (OSError, IndexError, ValueError):
                pass
    return False


def wait_for(what: str, pred: Callable[[], object], timeout: float, logfile: str | None = None,
             pid_name: str | None = None) -> None:
    """Poll pred until it is true; fail when the daemon pid_name dies or after timeout seconds."""
    t = time.time()
    while time.time() - t < timeout:
        try:
            if pred():
                return
        except Exception:
            pass
        if pid_name and not read_pid(pid_name):
            raise TestbedError("%s exited while starting" % what, logfile)
        time.sleep(0.3)
    raise TestbedError("timed out after %ds waiting for %s" % (timeout, what), logfile)


def tcp_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError):
        with socket.create_connection((host, port), timeout=1):
            return True
    return False
