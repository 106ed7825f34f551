"""Test hosts: systemd-nspawn --boot of an overlay of the cached rootfs, each in its own network namespace on
the bed's bridge, with its own identity (machine id, SSH host keys, address) written before its first boot."""
from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import signal
import time
from typing import Any

from . import assets, cache, config, k8s_machine, machine, network, proc, rootfs
from .config import Config
from .versions import APT_PACKAGES_HOSTS

Host = dict[str, Any]  # one entry of <state>/hosts.json: name, address, port (22) and k8s (true, k8s hosts only)

# --k8s-hosts: what a kubelet needs from an nspawn host on this machine (see testbed/README.md, "Hosts that can
# run Kubernetes").  Nothing of Kubernetes is installed: the host is the same fresh Debian as the others.
K8S_NSPAWN_ARGS = ["--capability=all", "--bind=/sys/fs/cgroup", "--bind=/dev/kmsg",
                   "--system-call-filter=@mount @keyring @swap bpf"]


def host_entries(cfg: Config, n: int, k8s_n: int) -> list[Host]:
    hs: list[Host] = [{"name": cfg.host_name(i), "address": cfg.host_addr(i), "port": 22} for i in range(1, n + 1)]
    hs += [{"name": cfg.k8s_host_name(i), "address": cfg.k8s_host_addr(i), "port": 22, "k8s": True}
           for i in range(1, k8s_n + 1)]
    return hs


def ssh_key() -> str:
    d = config.get().state_path("ssh")
    k = os.path.join(d, "id_ed25519")
    if not os.path.exists(k):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o700)
        proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "selfhost-testbed", "-f", k], quiet=True)
    return k


def ssh_cmd(addr: str, *remote: str, timeout: int = 5) -> list[str]:
    return ["ssh", "-i", ssh_key(), "-o", "UserKnownHostsFile=" + config.get().state_path("known_hosts"),
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=%d" % timeout,
            "-o", "LogLevel=ERROR", "root@" + addr] + list(remote)


def etc_hosts(name: str, addr: str) -> str:
    return "127.0.0.1 localhost\n%s %s\n::1 localhost ip6-localhost ip6-loopback\n" % (addr, name)


def host0_network(cfg: Config, addr: str, k8s: bool) -> str:
    """systemd-networkd config of the host's end of the veth.  k8s hosts get a default route to the host side,
    as a VPS has one: without any route, connect() to a Service IP (10.96.0.1) fails with ENETUNREACH before
    kube-proxy's DNAT.  Nothing is routed further: the bed's nftables forward chain drops whatever would
    leave the bridge."""
    return assets.render("hosts/80-container-host0.network", address=addr,
                         gateway_line="Gateway=%s\n" % cfg.host_gw if k8s else "")


def nspawn_cmd(cfg: Config, name: str, merged: str, k8s: bool) -> list[str]:
    return (["systemd-nspawn", "--quiet", "-D", merged, "--boot", "--register=no", "--keep-unit",
             "--network-bridge=" + cfg.bridge, "--machine=" + name, "--console=read-only",
             "--resolv-conf=off", "--timezone=off", "--link-journal=no"] + (K8S_NSPAWN_ARGS if k8s else []))


def host_up(name: str, addr: str, base: str, k8s: bool = False) -> None:
    cfg = config.get()
    hd = cfg.state_path("hosts", name)
    merged = os.path.join(hd, "merged")
    if proc.read_pid(name):
        return
    # a stale half-made host from an earlier crash: clean it first
    host_down(name)
    for s in ("upper", "work", "merged"):
        os.makedirs(os.path.join(hd, s), exist_ok=True)
    proc.run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s" % (
        os.path.join(base, "root"), os.path.join(hd, "upper"), os.path.join(hd, "work")), merged], quiet=True)
    # identity of this host: machine id, hostname, ssh host keys, root's authorized key, address
    cache.write_text(os.path.join(merged, "etc/machine-id"), os.urandom(16).hex() + "\n")
    cache.write_text(os.path.join(merged, "etc/hostname"), name + "\n")
    cache.write_text(os.path.join(merged, "etc/hosts"), etc_hosts(name, addr))
    # the rootfs names instance 0's apt proxy; every instance has its own on its own host-side address
    cache.write_text(os.path.join(merged, rootfs.APT_PROXY_CONF), rootfs.apt_proxy_conf(cfg))
    proc.run(["ssh-keygen", "-q", "-A", "-f", merged], quiet=True, capture=True)
    os.makedirs(os.path.join(merged, "root/.ssh"), mode=0o700, exist_ok=True)
    with open(ssh_key() + ".pub") as f:
        cache.write_text(os.path.join(merged, "root/.ssh/authorized_keys"), f.read())
    os.chmod(os.path.join(merged, "root/.ssh/authorized_keys"), 0o600)
    os.makedirs(os.path.join(merged, "etc/systemd/network"), exist_ok=True)
    cache.write_text(os.path.join(merged, "etc/systemd/network/80-container-host0.network"),
                     host0_network(cfg, addr, k8s))
    proc.spawn(name, nspawn_cmd(cfg, name, merged, k8s), env=dict(os.environ, SYSTEMD_NSPAWN_TMPFS_TMP="1"))


def host_keys_lines(name: str, addr: str) -> list[str]:
    """known_hosts lines of the host's real host keys, read from its rootfs (never learned over the network)."""
    lines = []
    for pub in sorted(glob.glob(config.get().state_path("hosts", name, "merged/etc/ssh/ssh_host_*_key.pub"))):
        with open(pub) as f:
            t, k = f.read().split()[:2]
        lines.append("%s %s %s\n" % (addr, t, k))
    return lines


def wait_booted(h: Host) -> None:
    name, addr = h["name"], h["address"]
    lf = config.get().state_path("logs", name + ".log")
    proc.wait_for("ssh on %s (%s)" % (name, addr),
                  lambda: proc.probe(ssh_cmd(addr, "true", timeout=2), timeout=10), 90, lf, name)
    st = proc.output_of(ssh_cmd(addr, "timeout 60 systemctl is-system-running --wait"))
    extra = ""
    if st != "running":
        extra = "; failed units: " + proc.output_of(
            ssh_cmd(addr, "systemctl --failed --no-legend --plain")).replace("\n", " | ")
    proc.log("host %s %s up: systemd %s%s" % (name, addr, st, extra))


def hosts_up(n: int, k8s_n: int = 0) -> None:
    cfg = config.get()
    machine.need_root("hosts")
    machine.apt_install(APT_PACKAGES_HOSTS)
    base = rootfs.rootfs_dir()
    ssh_key()
    network.net_up()
    network.apt_proxy_up()
    t0 = time.time()
    hs = host_entries(cfg, n, k8s_n)
    if k8s_n:
        k8s_machine.machine_sysctls_set()
    for h in hs:
        host_up(h["name"], h["address"], base, k8s=h.get("k8s", False))
    kh = []
    for h in hs:
        kh += host_keys_lines(h["name"], h["address"])
    with open(cfg.state_path("known_hosts"), "w") as f:
        f.writelines(kh)
    with open(cfg.state_path("hosts.json"), "w") as f:
        json.dump(hs, f)
    for h in hs:
        wait_booted(h)
    # after every host booted: systemd starting in a k8s host trims empty cgroups at the roots of the
    # machine hierarchies it sees (cpu, blkio), so a subtree made before the boot may be gone
    for h in hs:
        if h.get("k8s"):
            k8s_machine.host_cgroup_make(h["name"])
    proc.log("%d hosts up in %.0fs" % (len(hs), time.time() - t0))


def host_down(name: str) -> None:
    hd = config.get().state_path("hosts", name)
    proc.stop(name, sig=signal.SIGTERM, grace=20)
    k8s_machine.host_cgroup_remove(name)
    merged = os.path.join(hd, "merged")
    for _ in range(5):
        if not os.path.ismount(merged):
            break
        if proc.run(["umount", merged], check=False, capture=True, quiet=True).returncode:
            time.sleep(1)
    if os.path.ismount(merged):
        proc.run(["umount", "-l", merged], check=False, quiet=True)
    cache.safe_rmtree(hd)


def host_names_known(cfg: Config) -> set[str]:
    """Every host this instance may have: a directory under hosts/, or a pid file named like its hosts."""
    hdir = cfg.state_path("hosts")
    pids = cfg.state_path("pids")
    names = set(os.listdir(hdir)) if os.path.isdir(hdir) else set()
    if os.path.isdir(pids):
        names |= {n for n in os.listdir(pids) if re.match(re.escape(cfg.name_prefix) + r"-(host|k8s)\d+$", n)}
    return names


def hosts_down() -> None:
    cfg = config.get()
    for n in sorted(host_names_known(cfg)):
        host_down(n)
    proc.stop("apt-cacher-ng")
    if os.geteuid() == 0:
        network.net_down()
    k8s_machine.machine_sysctls_restore()
    for f in ("known_hosts", "hosts.json"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(cfg.state_path(f))
    shutil.rmtree(cfg.state_path("hosts"), ignore_errors=True)


def hosts_recorded() -> list[Host]:
    try:
        with open(config.get().state_path("hosts.json")) as f:
            hs: list[Host] = json.load(f)
    except (OSError, ValueError):
        return []
    return hs


def hosts_state() -> list[Host]:
    """The recorded hosts that are running."""
    return [h for h in hosts_recorded() if proc.read_pid(h["name"])]
