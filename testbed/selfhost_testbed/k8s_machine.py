"""What k8s hosts need from the machine itself (testbed/README.md, "Hosts that can run Kubernetes"): sysctls
the kubelet would write, and a cgroup subtree per host.  Machine-wide state: registered per instance and
restored when the last instance with k8s hosts goes down."""
from __future__ import annotations

import contextlib
import glob
import json
import os
import time

from . import cache, config, proc

# kubelet writes these unless they already hold these values, and /proc/sys is read-only inside a host.
# inotify: every host runs its own systemd, and every k8s host a kubelet and containerd, all on this one
# kernel for one user (root): the default 128 inotify instances run out with two beds up ("inotify_init:
# too many open files" from a kubelet), as kind documents for many nodes on one machine.
K8S_MACHINE_SYSCTLS = (("vm.overcommit_memory", "1"), ("kernel.panic", "10"), ("kernel.panic_on_oops", "1"),
                       ("fs.inotify.max_user_instances", "8192"), ("fs.inotify.max_user_watches", "1048576"))
SYSCTL_REG = "/run/selfhost-testbed-sysctl"  # machine-wide: which instances need them, the values before


def sysctl_path(k: str) -> str:
    return "/proc/sys/" + k.replace(".", "/")


def machine_sysctls_set() -> None:
    os.makedirs(SYSCTL_REG, exist_ok=True)
    with cache.file_lock("machine-sysctl"):
        orig = os.path.join(SYSCTL_REG, "orig.json")
        if not os.path.exists(orig):
            vals = {}
            for k, _ in K8S_MACHINE_SYSCTLS:
                with open(sysctl_path(k)) as f:
                    vals[k] = f.read().strip()
            with open(orig, "w") as f:
                json.dump(vals, f)
        open(os.path.join(SYSCTL_REG, "instance-%d" % config.get().instance), "w").close()
        for k, v in K8S_MACHINE_SYSCTLS:
            with open(sysctl_path(k), "w") as f:
                f.write(v)
        proc.log("machine sysctls for kubelet: %s (restored by down)" % " ".join(
            "%s=%s" % kv for kv in K8S_MACHINE_SYSCTLS))


def machine_sysctls_restore() -> None:
    mine = os.path.join(SYSCTL_REG, "instance-%d" % config.get().instance)
    if not os.path.exists(mine):
        return
    with cache.file_lock("machine-sysctl"):
        os.unlink(mine)
        if glob.glob(os.path.join(SYSCTL_REG, "instance-*")):
            return  # another bed's k8s hosts still need them
        orig = os.path.join(SYSCTL_REG, "orig.json")
        try:
            with open(orig) as f:
                vals = json.load(f)
        except (OSError, ValueError):
            return
        for k, v in vals.items():
            with contextlib.suppress(OSError):
                with open(sysctl_path(k), "w") as f:
                    f.write(v)
        os.unlink(orig)
        proc.log("machine sysctls restored: %s" % " ".join("%s=%s" % kv for kv in sorted(vals.items())))


def cgroup_controllers() -> list[str]:
    """The machine's cgroup v1 hierarchies (cpu, memory, ..., the named systemd one), not the v2 one."""
    res = []
    for d in sorted(glob.glob("/sys/fs/cgroup/*")):
        if os.path.isdir(d) and not os.path.islink(d) and os.path.exists(os.path.join(d, "cgroup.procs")) \
                and not os.path.exists(os.path.join(d, "cgroup.controllers")):
            res.append(d)
    return res


def host_cgroup_make(name: str) -> None:
    """A cgroup subtree /<name> in every v1 hierarchy: the host's kubelet uses it as cgroupRoot, so hosts
    sharing the machine's cgroup root do not collide on /kubepods."""
    for c in cgroup_controllers():
        d = os.path.join(c, name)
        os.makedirs(d, exist_ok=True)
        if os.path.basename(c) == "cpuset":
            for k in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(c, k)) as f:
                    v = f.read().strip()
                with open(os.path.join(d, k), "w") as f:
                    f.write(v)


def host_cgroup_remove(name: str) -> None:
    """rmdir the host's cgroup subtree, deepest first (its processes died with the host's pid namespace)."""
    for c in cgroup_controllers():
        top = os.path.join(c, name)
        if not os.path.isdir(top):
            continue
        for _ in range(120):  # up to 30 s: the host's last processes may still be exiting
            dirs = sorted((r for r, _, _ in os.walk(top)), key=len, reverse=True)
            for d in dirs:
                with contextlib.suppress(OSError):
                    os.rmdir(d)
            if not os.path.isdir(top):
                break
            time.sleep(0.25)
        else:
            proc.log("warning: could not remove cgroup %s (processes left in it?)" % top)
