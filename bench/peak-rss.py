#!/usr/bin/env python3
"""Run a command, time it, and record the peak RSS of its provider plugins.

    bench/peak-rss.py OUT -- COMMAND...

Runs COMMAND (a Terraform CLI, possibly under `timeout` or a shell), and
every 10 ms reads VmHWM (the kernel's peak resident set size) from
/proc/<pid>/status of each process below it, at any depth, whose
executable is a `terraform-provider-*` (the plugins the CLI starts).
VmHWM never decreases, so the last reading before a plugin exits is its
peak, short only of growth in its last 10 ms. Writes to OUT, one line
each: "wall SECONDS", "exit CODE", "rss NAME KIB" per plugin executable
(the largest over its processes), "cpu NAME SECONDS" per plugin
executable and for the CLI itself (NAME "cli"): user + system CPU time
summed over its processes as last read (short of their last 10 ms).
Exits with COMMAND's status.
"""

import os
import subprocess
import sys
import time


def children(pid):
    # Per thread: a Go program (the CLI) forks from any of its threads.
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    return out


def descendants(pid):
    out = []
    todo = children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main():
    out = sys.argv[1]
    assert sys.argv[2] == "--"
    cmd = sys.argv[3:]
    names = {}  # pid -> plugin name
    peak = {}  # name -> KiB
    ticks = {}  # pid -> (name, CPU ticks at the last reading)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd)
    while proc.poll() is None:
        for c in descendants(proc.pid):
            name = names.get(c)
            if name is None:
                # Read again until it is a plugin: a child seen between
                # fork and exec still runs the CLI's executable.
                try:
                    exe = os.path.basename(os.readlink(f"/proc/{c}/exe"))
                except OSError:
                    continue
                if exe.startswith("terraform-provider-"):
                    name = names[c] = exe.split("_v")[0]
                elif exe in ("terraform", "tofu"):
                    name = "cli"
            if name:
                v = hwm(c)
                if v is not None and v > peak.get(name, 0):
                    peak[name] = v
                t = cpu_ticks(c)
                if t is not None:
                    ticks[c] = (names.get(c, name), t)
        time.sleep(0.01)
    wall = time.monotonic() - t0
    with open(out, "w") as f:
        f.write(f"wall {wall:.3f}\nexit {proc.returncode}\n")
        for name, v in sorted(peak.items()):
            f.write(f"rss {name} {v}\n")
        cpu = {}
        for name, t in ticks.values():
            cpu[name] = cpu.get(name, 0) + t
        hz = os.sysconf("SC_CLK_TCK")
        for name, t in sorted(cpu.items()):
            f.write(f"cpu {name} {t / hz:.2f}\n")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
