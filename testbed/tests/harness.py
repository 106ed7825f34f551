"""Scenarios that make the test bed render what it writes (files, configs, command lines) without running
anything: every process start, mount and network call is replaced by a recorder.

The same scenarios run against two targets:
  * OldTarget: the single-file program `testbed/testbed` as it was before it became a package
    (commit eefd98d), loaded from a path; used once, by golden/generate.py, to write the golden files;
  * NewTarget: the package selfhost_testbed; test_golden.py renders the same scenarios with it and
    compares them byte for byte with those golden files.
A target maps the old program's function names to where they live now, so one scenario serves both.

Every path under the scenario's temporary directory is written as @TMP@, so golden files do not depend on
where they were made.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import io
import json
import os
import stat
import subprocess
import sys
import tempfile
import types
from typing import Any, Callable, Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
TESTBED_DIR = os.path.dirname(HERE)
# environment variables a recorded command's env may carry that matter; the rest is the caller's own
ENV_KEYS = ("GOFLAGS", "GOGC", "GOMEMLIMIT", "CGO_ENABLED", "GOTOOLCHAIN", "GOBIN", "GO111MODULE", "DEBIAN_FRONTEND",
            "SYSTEMD_NSPAWN_TMPFS_TMP", "TF_CLI_CONFIG_FILE", "CHECKPOINT_DISABLE")
FIXED_NOW = "2026-01-02T03:04:05Z"


class Target:
    """Where a function or setting of the test bed lives.  Subclasses implement load/fn/patch/settings."""

    tmp: str

    def load(self, env: dict[str, str]) -> None:
        raise NotImplementedError

    def fn(self, name: str) -> Callable[..., Any]:
        raise NotImplementedError

    def patch(self, name: str, value: Any) -> None:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def fix_now(self) -> None:
        raise NotImplementedError

    def error_types(self) -> tuple[type[BaseException], ...]:
        raise NotImplementedError


class OldTarget(Target):
    def __init__(self, path: str) -> None:
        self.path = path
        self.m: Any = None
        self.n = 0

    def load(self, env: dict[str, str]) -> None:
        self.n += 1
        name = "old_testbed_%d" % self.n
        with environ(env):
            loader = importlib.machinery.SourceFileLoader(name, self.path)
            spec = importlib.util.spec_from_loader(name, loader)
            m = importlib.util.module_from_spec(spec)
            loader.exec_module(m)
        # the old program found k3s-standin/ next to itself; the fixture may live elsewhere
        m.K3S_STANDIN_SRC = os.path.join(TESTBED_DIR, "k3s-standin")
        self.m = m

    def fn(self, name: str) -> Callable[..., Any]:
        return getattr(self.m, name)

    def patch(self, name: str, value: Any) -> None:
        # "probe": the old program called subprocess.run itself for a few yes/no probes
        setattr(self.m, {"probe": "subprocess"}.get(name, name), value)

    def settings(self) -> dict[str, Any]:
        m = self.m
        return {k: getattr(m, k) for k in (
            "INSTANCE", "NAME_PREFIX", "SUBNET", "HOST_GW", "APT_PROXY_PORT", "ETCD_PORT", "ETCD_PEER_PORT",
            "APISERVER_PORT", "KCM_PORT", "SCHED_PORT", "KWOK_PORT", "NFT_TABLE", "BRIDGE", "CACHE", "STATE")}

    def fix_now(self) -> None:
        import datetime as real

        class FakeDT(real.datetime):
            @classmethod
            def now(cls, tz=None):  # type: ignore[override]
                return real.datetime(2026, 1, 2, 3, 4, 5, tzinfo=tz)
        fake = types.SimpleNamespace(datetime=FakeDT, timezone=real.timezone)
        self.m.datetime = fake

    def error_types(self) -> tuple[type[BaseException], ...]:
        return (SystemExit,)


@contextlib.contextmanager
def environ(env: dict[str, str]) -> Iterator[None]:
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update({k: v for k, v in old.items() if k in ("PATH", "LANG", "LC_ALL")})
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(old)


class Recorder:
    """Stands in for run()/out()/spawn(): records each command, makes the files a real one would."""

    def __init__(self, tmp: str, outputs: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.calls: list[dict[str, Any]] = []
        self.outputs = outputs or {}

    def norm(self, s: Any) -> Any:
        if isinstance(s, str):
            return s.replace(self.tmp, "@TMP@")
        if isinstance(s, (list, tuple)):
            return [self.norm(x) for x in s]
        if isinstance(s, dict):
            return {k: self.norm(v) for k, v in s.items()}
        return s

    def record(self, kind: str, cmd: Any, env: dict[str, str] | None = None, cwd: str | None = None,
               input: Any = None, **kw: Any) -> None:
        e = {k: (env or {}).get(k) for k in ENV_KEYS if k in (env or {})}
        if isinstance(input, bytes):
            input = input.decode()
        c: dict[str, Any] = {"kind": kind, "cmd": self.norm(list(cmd)), "cwd": self.norm(cwd), "env": self.norm(e)}
        if input is not None:
            c["input"] = self.norm(input)
        for k in ("logfile", "check", "capture", "quiet"):
            if kw.get(k) is not None:
                c[k] = self.norm(kw[k])
        self.calls.append(c)
        self.effects(list(cmd), cwd)

    def effects(self, cmd: list[str], cwd: str | None) -> None:
        if cmd[:2] == ["go", "build"] and "-o" in cmd:
            o = cmd[cmd.index("-o") + 1]
            if o.endswith("/"):
                pkgs = cmd[cmd.index("-o") + 2:]
                for p in pkgs:
                    n = "server" if p.endswith("/server/v3") else p.rstrip("/").rsplit("/", 1)[-1]
                    write(os.path.join(o, n), "fake binary %s\n" % n, 0o755)
            else:
                write(o, "fake binary %s\n" % os.path.basename(o), 0o755)
        elif cmd[:4] == ["mount", "-t", "overlay", "overlay"]:
            lower = cmd[5].split(",")[0].split("=", 1)[1]
            import shutil
            shutil.copytree(lower, cmd[6], dirs_exist_ok=True)
        elif cmd and cmd[0] == "debootstrap":
            root = cmd[-2]
            for p in ("etc/debian_version", "usr/sbin/sshd", "lib/systemd/systemd", "etc/ssh/ssh_host_rsa_key",
                      "var/lib/dbus/machine-id", "etc/apt/apt.conf.d/.keep"):
                write(os.path.join(root, p), "x\n")
        elif cmd[:3] == ["ssh-keygen", "-q", "-A"]:
            root = cmd[cmd.index("-f") + 1]
            for t in ("ed25519", "ecdsa", "rsa"):
                write(os.path.join(root, "etc/ssh/ssh_host_%s_key" % t), "private %s\n" % t)
                write(os.path.join(root, "etc/ssh/ssh_host_%s_key.pub" % t), "ssh-%s AAAA%s root@x\n" % (t, t))
        elif cmd[:1] == ["ssh-keygen"]:
            k = cmd[cmd.index("-f") + 1]
            write(k, "PRIVATE\n")
            write(k + ".pub", "ssh-ed25519 AAAAkey selfhost-testbed\n")

    def run(self, cmd: Any, check: bool = True, capture: bool = False, env: Any = None, cwd: Any = None,
            logfile: Any = None, quiet: bool = False, input: Any = None, timeout: Any = None
            ) -> subprocess.CompletedProcess[bytes]:
        self.record("run", cmd, env=env, cwd=cwd, input=input, logfile=logfile, check=check, capture=capture,
                    quiet=quiet)
        return subprocess.CompletedProcess(cmd, 0, self.output(cmd).encode(), b"")

    def out(self, cmd: Any, **kw: Any) -> str:
        self.record("out", cmd, env=kw.get("env"), cwd=kw.get("cwd"), input=kw.get("input"))
        return self.output(cmd).strip()

    def output(self, cmd: list[str]) -> str:
        key = " ".join(cmd)
        for prefix, text in self.outputs.items():
            if key.startswith(prefix):
                return text
        return ""

    def spawn(self, name: str, cmd: list[str], env: Any = None, cwd: Any = None) -> int:
        self.record("spawn:" + name, cmd, env=env, cwd=cwd)
        return 4242


def write(path: str, content: str | bytes, mode: int | None = None) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content)
    if mode is not None:
        os.chmod(path, mode)


def tree(root: str, tmp: str, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file below root: relative path -> 'mode sha256' (or its text, when short and readable)."""
    res = {}
    for r, ds, fs in os.walk(root):
        ds.sort()
        for n in sorted(fs) + [d for d in ds if os.path.islink(os.path.join(r, d))]:
            p = os.path.join(r, n)
            rel = os.path.relpath(p, root)
            if rel in skip:
                continue
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                res[rel] = "link -> " + os.readlink(p)
                continue
            with open(p, "rb") as f:
                data = f.read()
            desc = "%o " % stat.S_IMODE(st.st_mode)
            if n.endswith(".tar") and data[257:262] == b"ustar":
                # an image archive: its members, not its bytes (the outer tar carries the blobs' mtimes)
                res[rel] = desc + tar_members(p)
                continue
            try:
                text = data.decode()
                desc += text.replace(tmp, "@TMP@") if len(text) < 4000 else hashlib.sha256(data).hexdigest()
            except UnicodeDecodeError:
                desc += "sha256:" + hashlib.sha256(data).hexdigest()
            res[rel] = desc
    return res


def tar_members(path: str) -> str:
    import tarfile
    lines = []
    with tarfile.open(path) as t:
        for m in t.getmembers():
            f = t.extractfile(m)
            h = hashlib.sha256(f.read()).hexdigest() if f else "-"
            lines.append("%s %o %d %s" % (m.name, m.mode, m.size, h))
    return "\n".join(lines)


def base_env(tmp: str, instance: int | None) -> dict[str, str]:
    env = {"HOME": tmp + "/home", "XDG_CACHE_HOME": tmp + "/cache", "SELFHOST_TESTBED_DIR": tmp + "/state"}
    if instance is not None:
        env["SELFHOST_TESTBED_INSTANCE"] = str(instance)
    return env


def dumps(x: Any) -> str:
    return json.dumps(x, indent=1, sort_keys=True) + "\n"


# ------------------------------------------------------------------------------------------ scenarios --
# Each scenario takes (target, tmp) and returns {golden file name: content}.

def sc_config(t: Target, tmp: str) -> dict[str, str]:
    res = {}
    cases = {"default": {"HOME": "/home/u"}, "instance0": {"HOME": "/home/u", "SELFHOST_TESTBED_INSTANCE": "0"},
             "instance1": {"HOME": "/home/u", "SELFHOST_TESTBED_INSTANCE": "1"},
             "instance3-dirs": {"HOME": "/home/u", "SELFHOST_TESTBED_INSTANCE": "3",
                                "XDG_CACHE_HOME": "/xdg", "SELFHOST_TESTBED_DIR": "/state/dir"},
             "instance50": {"HOME": "/home/u", "SELFHOST_TESTBED_INSTANCE": "50", "XDG_CACHE_HOME": ""}}
    for name, env in cases.items():
        t.load(env)
        s = t.settings()
        with with_patches(t, ssh_key=lambda: "@KEY@"):
            s["host_name(1)"] = t.fn("host_name")(1)
            s["host_addr(2)"] = t.fn("host_addr")(2)
            s["k8s_host_name(3)"] = t.fn("k8s_host_name")(3)
            s["k8s_host_addr(1)"] = t.fn("k8s_host_addr")(1)
            s["ssh_cmd"] = t.fn("ssh_cmd")("10.77.0.11", "true", timeout=2)
        # the default state dir names the user: golden files hold @UID@ instead
        res["config-%s.json" % name] = dumps(s).replace("/tmp/selfhost-testbed-%d" % os.getuid(),
                                                        "/tmp/selfhost-testbed-@UID@")
    for bad in ("51", "-1"):
        try:
            t.load({"HOME": "/home/u", "SELFHOST_TESTBED_INSTANCE": bad})
            res["config-invalid-%s.txt" % bad] = "loaded\n"
        except (SystemExit, *t.error_types()) as e:
            res["config-invalid-%s.txt" % bad] = "refused: %s\n" % str(e).replace("testbed: ", "")
    return res


def sc_cache_keys(t: Target, tmp: str) -> dict[str, str]:
    t.load(base_env(tmp, 0))
    cd = t.fn("cache_dir")
    keys = {"images_list": t.fn("images_list")(),
            "bundle_dir_if_built": t.fn("bundle_dir_if_built")(),
            "build_log(x)": t.fn("build_log")("x")}
    for comp, ver in (("kubernetes", "v1.36.3-kwok-v0.8.0-etcd-v3.6.8"), ("k8s-bundle", "v1.36.3-5"),
                      ("rootfs", "bookworm-2"), ("terraform", "1.0.3")):
        keys["cache_dir(%s, %s)" % (comp, ver)] = cd(comp, ver)
    # every cached() call: record component/version/files instead of building
    seen: list[Any] = []

    def fake_cached(component: str, version: str, build: Any, files: list[str]) -> str:
        seen.append([component, version, files])
        return os.path.join(tmp, "cache", "selfhost-testbed", "%s-%s" % (component, version))
    rec = Recorder(tmp, {"apt-cache depends": "a\nb\n  Depends: c\n<virt>\n"})
    with with_patches(t, cached=fake_cached, run=rec.run, out=rec.out):
        t.fn("kube_dir")()
        t.fn("kube_node_dir")()
        t.fn("bundle_dir")()
        t.fn("rootfs_dir")()
        t.fn("flannel_dir")()
        t.fn("traefik_dir")()
        t.fn("netpol_dir")()
        t.fn("small_bins_dir")()
        t.fn("go_install_dir")("coredns", "v1.14.2", ["github.com/coredns/coredns"])
        os.makedirs(os.path.join(tmp, "cache", "selfhost-testbed", "debs-k8s-node-bookworm"), exist_ok=True)
        write(os.path.join(tmp, "cache", "selfhost-testbed", "debs-k8s-node-bookworm", "packages"), "a\nb\n")
        t.fn("debs_dir")("k8s-node", ["a", "b"], False)
    keys["cached"] = seen
    return {"cache-keys.json": Recorder(tmp).norm(dumps(keys))}


def sc_assets(t: Target, tmp: str) -> dict[str, str]:
    """What the bundle build writes from embedded texts (the bundle scenario covers them in place too)."""
    t.load(base_env(tmp, 0))
    rec = Recorder(tmp)
    res: dict[str, str] = {}
    d = os.path.join(tmp, "smallbins")
    with with_patches(t, run=rec.run, need_go=lambda: None,
                      cached=lambda c, v, build, files: (build(d), d)[1]):
        t.fn("small_bins_dir")()
    for n in ("echo/main.go", "pause/main.go", "go.mod"):
        with open(os.path.join(tmp, "cache", "selfhost-testbed", "src", "smallbins", n)) as f:
            res["smallbins-" + n.replace("/", "-")] = f.read()
    res["smallbins-commands.json"] = dumps(rec.calls)
    return res


def sc_kubeconfig(t: Target, tmp: str) -> dict[str, str]:
    res = {}
    for inst in (0, 3):
        t.load(base_env(tmp, inst))
        pki = os.path.join(tmp, "state", "pki")
        for n in ("ca.crt", "admin.crt", "admin.key"):
            write(os.path.join(pki, n), "PEM of %s\n" % n)
        p = t.fn("write_kubeconfig")(os.path.join(tmp, "kc-%d" % inst), "admin")
        with open(p) as f:
            res["kubeconfig-%d.yaml" % inst] = f.read()
        res["kubeconfig-%d.mode" % inst] = "%o\n" % stat.S_IMODE(os.stat(p).st_mode)
    return res


class FakeSubprocess:
    """The old program called subprocess.run directly for a few probes: all of them 'fail' (rc 1)."""
    DEVNULL = subprocess.DEVNULL
    PIPE = subprocess.PIPE
    STDOUT = subprocess.STDOUT
    CompletedProcess = subprocess.CompletedProcess

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def run(self, cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        self.rec.record("subprocess.run", cmd)
        return subprocess.CompletedProcess(cmd, 1, b"", b"")


def sc_network(t: Target, tmp: str) -> dict[str, str]:
    res = {}
    for inst in (0, 3):
        t.load(base_env(tmp, inst))
        rec = Recorder(tmp)
        with with_patches(t, run=rec.run, out=rec.out, spawn=rec.spawn, probe=FakeSubprocess(rec),
                          wait_for=lambda *a, **k: rec.record("wait_for", [a[0], str(a[2])]),
                          read_pid=lambda n: None):
            t.fn("net_up")()
            t.fn("apt_proxy_up")()
        with open(os.path.join(tmp, "state", "apt-cacher-ng", "conf", "acng.conf")) as f:
            res["acng-%d.conf" % inst] = f.read().replace(tmp, "@TMP@")
        res["network-%d.json" % inst] = dumps(rec.calls)
    return res


def sc_host_up(t: Target, tmp: str) -> dict[str, str]:
    res = {}
    for inst, k8s in ((0, False), (3, True), (3, False)):
        t.load(base_env(tmp, inst))
        rec = Recorder(tmp)
        base = os.path.join(tmp, "base")
        for p in ("etc/apt/apt.conf.d/01selfhost-testbed-proxy", "etc/machine-id", "etc/hostname"):
            write(os.path.join(base, "root", p), "from the base\n")
        name = t.fn("k8s_host_name" if k8s else "host_name")(2)
        addr = t.fn("k8s_host_addr" if k8s else "host_addr")(2)
        with with_patches(t, run=rec.run, out=rec.out, spawn=rec.spawn, read_pid=lambda n: None,
                          host_down=lambda n: rec.record("host_down", [n])):
            t.fn("ssh_key")()
            t.fn("host_up")(name, addr, base, k8s=k8s)
            kh = t.fn("host_keys_lines")(name, addr)
        merged = os.path.join(tmp, "state", "hosts", name, "merged")
        files = tree(merged, tmp, skip=("etc/machine-id",))
        key = "host-%d-%s" % (inst, "k8s" if k8s else "plain")
        res[key + "-files.json"] = dumps(files)
        res[key + "-commands.json"] = dumps(rec.calls)
        res[key + "-known-hosts.txt"] = "".join(kh)
        with open(os.path.join(merged, "etc/machine-id")) as f:
            res[key + "-machine-id-shape.txt"] = "%d hex chars\n" % len(f.read().strip())
    return res


def sc_cluster_up(t: Target, tmp: str) -> dict[str, str]:
    res = {}
    for inst in (0, 3):
        t.load(base_env(tmp, inst))
        rec = Recorder(tmp)
        kd = os.path.join(tmp, "cache", "selfhost-testbed", "kubernetes-x")
        pki = os.path.join(tmp, "state", "pki")
        for n in ("ca.crt", "admin.crt", "admin.key", "controller-manager.crt", "controller-manager.key",
                  "scheduler.crt", "scheduler.key", "kwok.crt", "kwok.key"):
            write(os.path.join(pki, n), "PEM %s\n" % n)
        def read_pid(n: str) -> Any:
            # a daemon runs once it was spawned (nothing runs before)
            return 4242 if any(c["kind"] == "spawn:" + n for c in rec.calls) else None

        def wait_for(what: str, pred: Any, timeout: int, logfile: Any = None, pid_name: Any = None) -> None:
            rec.record("wait_for", [what, str(timeout), rec.norm(logfile or ""), pid_name or ""])
            pred()
        with with_patches(t, run=rec.run, out=rec.out, spawn=rec.spawn, read_pid=read_pid, wait_for=wait_for,
                          kube_dir=lambda: kd, kwok_stages=lambda d: d + "/kwok-stages.yaml",
                          make_pki=lambda: rec.record("make_pki", []), tcp_open=lambda h, p: False,
                          api_get=lambda path, **k: (200, "{\"v\": 1}\n"),
                          log=lambda *a: rec.record("log", [" ".join(str(x) for x in a)])):
            t.fn("cluster_up")()
        res["cluster-up-%d.json" % inst] = dumps(rec.calls)
    return res


def _fake_state(t: Target, tmp: str, hosts: list[dict[str, Any]], cluster: bool, clis: bool, bundle: bool) -> None:
    st = os.path.join(tmp, "state")
    for h in hosts:
        write(os.path.join(st, "pids", h["name"]), "%d\n" % os.getpid())
    write(os.path.join(st, "hosts.json"), json.dumps(hosts))
    if cluster:
        write(os.path.join(st, "pids", "kube-apiserver"), "%d\n" % os.getpid())
        write(os.path.join(st, "kubeconfig"), "kc\n")
    if clis:
        write(os.path.join(tmp, "cli1"), "")
        write(os.path.join(st, "clis"), "%s/cli1\n%s/missing\n" % (tmp, tmp))
    if bundle:
        write(os.path.join(tmp, "cache", "selfhost-testbed", "k8s-bundle-v1.36.3-9", ".complete"), "")
        # the previous release's bundle (versions.BUNDLE_PREVIOUS_VERSION): SELFHOST_TEST_K8S_BUNDLE_PREVIOUS
        write(os.path.join(tmp, "cache", "selfhost-testbed", "k8s-bundle-v1.35.4-3+v1.36.3-9", ".complete"), "")


def sc_env_status(t: Target, tmp: str) -> dict[str, str]:
    res = {}
    cases = {
        "nothing": ([], False, False, False),
        "clis-only": ([], False, True, False),
        "all": ([{"name": "tb3-host1", "address": "10.77.3.11", "port": 22},
                 {"name": "tb3-host2", "address": "10.77.3.12", "port": 22},
                 {"name": "tb3-k8s1", "address": "10.77.3.101", "port": 22, "k8s": True},
                 {"name": "tb3-gone", "address": "10.77.3.13", "port": 22}], True, True, True),
        "k8s-no-bundle": ([{"name": "tb3-k8s1", "address": "10.77.3.101", "port": 22, "k8s": True},
                           {"name": "it's", "address": "10.77.3.102", "port": 22, "k8s": True}], False, False, False),
    }
    for name, (hosts, cluster, clis, bundle) in cases.items():
        with tempfile.TemporaryDirectory() as sub:
            t.load(base_env(sub, 3))
            alive = [h for h in hosts if h["name"] != "tb3-gone"]
            _fake_state(t, sub, alive, cluster, clis, bundle)
            if hosts:
                write(os.path.join(sub, "state", "hosts.json"), json.dumps(hosts))
            if name == "k8s-no-bundle":  # a state dir under a path with a quote in it
                pass
            for cmd in ("cmd_env", "cmd_status"):
                buf = io.StringIO()
                with with_patches(t, api_get=_api_get_down), contextlib.redirect_stdout(buf):
                    t.fn(cmd)(types.SimpleNamespace())
                res["%s-%s.txt" % (cmd[4:], name)] = buf.getvalue().replace(sub, "@TMP@").replace(
                    "pid=%-8d" % os.getpid(), "pid=@PID@    ")
    return res


def _api_get_down(path: str, **kw: Any) -> Any:
    raise OSError("connection refused")


def sc_argparse(t: Target, tmp: str) -> dict[str, str]:
    t.load(base_env(tmp, 0))
    res = {}
    seen: list[Any] = []
    cmds = {n: (lambda n: lambda a: seen.append([n, sorted(vars(a).items())]))(n)
            for n in ("cmd_up", "cmd_down", "cmd_env", "cmd_status", "cmd_clis", "cmd_build", "cmd_bundle")}
    argvs = [["up"], ["up", "--hosts", "0", "--k8s-hosts", "3", "--no-cluster"], ["down"], ["env"], ["status"],
             ["clis"], ["bundle"], ["build"], ["build", "k8s"], ["build", "bogus"], [], ["--help"], ["up", "--help"],
             ["build", "--help"], ["up", "--hosts", "x"]]
    old_argv = sys.argv
    with with_patches(t, **cmds), environ({"COLUMNS": "100", "HOME": tmp}):
        for argv in argvs:
            sys.argv = ["testbed"] + argv
            out, err = io.StringIO(), io.StringIO()
            code: Any = 0
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    t.fn("main")()
                except SystemExit as e:
                    code = e.code
            seen.append({"argv": argv, "exit": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
    sys.argv = old_argv
    res["argparse.json"] = dumps(seen)
    return res


def fake_gomod(tmp: str, name: str, text: str, files: dict[str, str] | None = None) -> str:
    d = os.path.join(tmp, "modcache", name)
    write(os.path.join(d, "go.mod"), text)
    for n, c in (files or {}).items():
        write(os.path.join(d, n), c)
    return json.dumps({"GoMod": os.path.join(d, "go.mod"), "Dir": d})


# The two files the OpenTofu build patches, in OpenTofu v1.12.6's form (shortened).
_TOFU_BACKENDS = (("local", "backendLocal", "local"), ("azurerm", "backendAzure", "remote-state/azure"),
                  ("consul", "backendConsul", "remote-state/consul"), ("cos", "backendCos", "remote-state/cos"),
                  ("gcs", "backendGCS", "remote-state/gcs"), ("http", "backendHTTP", "remote-state/http"),
                  ("kubernetes", "backendKubernetes", "remote-state/kubernetes"), ("oss", "backendOSS", "remote-state/oss"),
                  ("pg", "backendPg", "remote-state/pg"), ("s3", "backendS3", "remote-state/s3"))
_TOFU_KEY_PROVIDERS = ("pbkdf2", "aws_kms", "gcp_kms", "azure_vault", "openbao")
TOFU_FILES = {
    "internal/backend/init/init.go": "package init\n\nimport (\n" + "".join(
        '\t%s "github.com/opentofu/opentofu/internal/backend/%s"\n' % (a, d) for _, a, d in _TOFU_BACKENDS) + (
        ")\n\nfunc Init() {\n\tbackends = map[string]backend.InitFn{\n") + "".join(
        '\t\t%-13s func(enc encryption.StateEncryption) backend.Backend { return %s.New(enc) },\n' % ('"%s":' % n, a)
        for n, a, _ in _TOFU_BACKENDS) + "\t}\n}\n",
    "internal/encryption/default_registry.go": "package encryption\n\nimport (\n" + "".join(
        '\t"github.com/opentofu/opentofu/internal/encryption/keyprovider/%s"\n' % k for k in _TOFU_KEY_PROVIDERS) + (
        ")\n\nfunc init() {\n") + "".join(
        "\tif err := DefaultRegistry.RegisterKeyProvider(%s.New()); err != nil {\n\t\tpanic(err)\n\t}\n" % k
        for k in _TOFU_KEY_PROVIDERS) + "}\n",
}


KUBE_GOMOD = """module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tgithub.com/x/y v1.2.3
\tk8s.io/api v0.0.0
\tk8s.io/apiserver v0.0.0 // indirect
\tk8s.io/utils v0.0.0-20250101
)

replace k8s.io/api => ./staging/src/k8s.io/api
"""


TRAEFIK_GOMOD = """module github.com/traefik/traefik/v3

go 1.25.0

require (
\tgithub.com/abbot/go-http-auth v0.0.0-00010101000000-000000000000 // No tag on the repo.
\tgithub.com/gorilla/mux v1.8.1
)

// Containous forks
replace (
\tgithub.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e
\tgithub.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59 // a comment
\tgithub.com/mailgun/minheap => github.com/containous/minheap v0.0.0-20190809180810-6e71eb837595
)

// ambiguous import
exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible
"""

# what kube-network-policies v0.8.0 has around the nft queue expressions the bed patches
KNP_CONTROLLER_GO = """package networkpolicy

func (c *Controller) syncNFTablesRules(ctx context.Context) error {
\tqueue := &expr.Queue{Num: uint16(c.config.QueueID)}
\tif c.config.FailOpen {
\t\tqueue.Flag = expr.QueueFlagBypass
\t}
\tnft.AddRule(&nftables.Rule{Exprs: []expr.Any{&expr.Counter{}, queue}})
}

func (c *Controller) syncNFTablesRulesBug1766(ctx context.Context) error {
\tqueue := &expr.Queue{Num: uint16(c.config.QueueID)}
\tif c.config.FailOpen {
\t\tqueue.Flag = expr.QueueFlagBypass
\t}
\tnft.AddRule(&nftables.Rule{Exprs: []expr.Any{&expr.Counter{}, queue}})
}
"""
KNP_DNSAGENT_GO = """package networkpolicy

func (n *DomainCache) syncRules() error {
\tnft.AddRule(&nftables.Rule{
\t\tExprs: []expr.Any{
\t\t\t&expr.Counter{},
\t\t\t&expr.Queue{Num: uint16(n.nfQueueID), Flag: expr.QueueFlagBypass},
\t\t},
\t})
}
"""


def sc_go_builds(t: Target, tmp: str) -> dict[str, str]:
    t.load(base_env(tmp, 0))
    t.fix_now()
    res = {}
    outputs = {
        "go mod download -json k8s.io/kubernetes@": fake_gomod(tmp, "k8s", KUBE_GOMOD),
        "go mod download -json github.com/hashicorp/terraform@": fake_gomod(tmp, "tf", (
            "module github.com/hashicorp/terraform\n\ngo 1.24.0\n\n"
            "replace github.com/hashicorp/terraform/internal/backend/remote-state/s3 => ./internal/backend/remote-state/s3\n"
            "replace github.com/hashicorp/terraform/internal/legacy => ./internal/legacy\n")),
        "go mod download -json github.com/opentofu/opentofu@": fake_gomod(tmp, "tofu", (
            "module github.com/opentofu/opentofu\n\ngo 1.25.1\n\nreplace (\n\t// the fork\n"
            "\tgithub.com/hashicorp/hcl/v2 => github.com/opentofu/hcl/v2 v2.0.0-2024\n\tfoo => ./foo\n)\n"
            "replace bar v1.0.0 => baz v1.1.0\nreplace local => ../local\n"), TOFU_FILES),
        "go mod download -json github.com/flannel-io/flannel@": fake_gomod(tmp, "flannel", (
            "module github.com/flannel-io/flannel\n\ngo 1.24.4\n"), {"main.go": (
                "package main\n\nimport (\n\t_ \"github.com/flannel-io/flannel/pkg/backend/vxlan\"\n"
                "\t_ \"github.com/flannel-io/flannel/pkg/backend/tencentvpc\"\n"
                "\t_ \"github.com/flannel-io/flannel/pkg/backend/udp\"\n)\n\nfunc main() {}\n")}),
        "go list -m -versions github.com/opentofu/opentofu": (
            "github.com/opentofu/opentofu v1.6.3 v1.10.6 v1.10.10 v1.12.0-rc1 v1.12.6 v1.12.10 v1.9.2"),
        "go mod download -json github.com/traefik/traefik/v3@": fake_gomod(tmp, "traefik", TRAEFIK_GOMOD, {
            "cmd/traefik/traefik.go": "package main\n\nfunc main() {}\n",
            "pkg/provider/acme/provider.go": (
                "package acme\n\nimport (\n\t\"errors\"\n\n\t\"github.com/go-acme/lego/v4/providers/dns\"\n)\n\n"
                "func f() {\n\tprovider, err = dns.NewDNSChallengeProviderByName(p.DNSChallenge.Provider)\n}\n"),
            "pkg/config/static/static_config.go": (
                "package static\n\nimport (\n\t\"github.com/traefik/traefik/v3/pkg/provider/ecs\"\n)\n\n"
                "type Providers struct {\n\tEcs *ecs.Provider `json:\"ecs,omitempty\"`\n}\n"),
            "pkg/provider/aggregator/aggregator.go": (
                "package aggregator\n\nfunc f() {\n\tif conf.Ecs != nil {\n\t\tp.quietAddProvider(conf.Ecs)\n\t}\n}\n")}),
        "go mod download -json github.com/coredns/coredns@": fake_gomod(
            tmp, "coredns", "module github.com/coredns/coredns\n\ngo 1.24.0\n"),
        os.path.join(tmp, "out", "coredns", "coredns") + " -plugins": (
            "".join("%s\n" % d for d in ("cache", "debug", "errors", "forward", "health", "hosts", "kubernetes",
                                          "loadbalance", "log", "loop", "metadata", "prometheus", "ready", "reload",
                                          "whoami")) + "on\n"),
        os.path.join(tmp, "out", "traefik", "traefik") + " version": "Version:      v3.6.12\nCodename:     cheddar\n",
        "go mod download -json sigs.k8s.io/kube-network-policies@": fake_gomod(
            tmp, "knp", "module sigs.k8s.io/kube-network-policies\n\ngo 1.23.0\n", {
                "cmd/main.go": "package main\n\nfunc main() {}\n",
                "pkg/networkpolicy/controller.go": KNP_CONTROLLER_GO,
                "pkg/networkpolicy/dnsagent.go": KNP_DNSAGENT_GO,
                "pkg/networkpolicy/controller_test.go": "package networkpolicy\n\nvar q = &expr.Queue{}\n"}),
    }
    src = os.path.join(tmp, "cache", "selfhost-testbed", "src")

    def build_into(name: str, f: Callable[[str], Any]) -> None:
        rec = Recorder(tmp, outputs)
        dst = os.path.join(tmp, "out", name)
        os.makedirs(dst, exist_ok=True)
        with with_patches(t, run=rec.run, out=rec.out, need_go=lambda: None,
                          cached=lambda c, v, build, files: (rec.record("cached", [c, v] + files), build(dst), dst)[2]):
            r = f(dst)
        res["%s-commands.json" % name] = dumps(rec.calls)
        res["%s-result.json" % name] = rec.norm(dumps({"returned": r, "dst": tree(dst, tmp)}))
    build_into("kube", t.fn("_build_kube"))
    build_into("kube-node", lambda d: t.fn("kube_node_dir")())
    build_into("tf-wrapped", t.fn("_build_tf_wrapped"))
    build_into("tf-new", t.fn("_build_tf_new"))
    build_into("tofu", lambda d: t.fn("_build_tofu")(d, "v1.12.6"))
    build_into("tofu-candidates", lambda d: t.fn("tofu_candidates")())
    build_into("flannel", lambda d: t.fn("flannel_dir")())
    build_into("traefik", lambda d: t.fn("traefik_dir")())
    build_into("coredns", lambda d: t.fn("coredns_dir")("v1.14.2"))
    build_into("netpol", lambda d: t.fn("netpol_dir")())
    build_into("go-install", lambda d: [
        t.fn("go_install_dir")("cni-flannel", "v0.9.1", ["github.com/containernetworking/plugins/plugins/meta/flannel"],
                               env_extra={"GO111MODULE": "on"}),
        t.fn("go_install_dir")("pebble", "v2.10.1", ["github.com/letsencrypt/pebble/v2/cmd/pebble",
                                                     "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv"])])
    res["src-tree.json"] = dumps(tree(src, tmp))
    return res


def sc_rootfs(t: Target, tmp: str) -> dict[str, str]:
    t.load(base_env(tmp, 3))
    rec = Recorder(tmp)
    dst = os.path.join(tmp, "rootfs")
    with with_patches(t, run=rec.run, out=rec.out, need_root=lambda w: None, apt_install=lambda p: None,
                      debian_mirror=lambda: "http://mirror.example/debian"):
        t.fn("_build_rootfs")(dst)
    return {"rootfs-commands.json": dumps(rec.calls), "rootfs-tree.json": dumps(tree(dst, tmp))}


def _fake_bundle_parts(tmp: str) -> dict[str, str]:
    """Directories standing in for every built part of the bundle, with small fake binaries."""
    c = os.path.join(tmp, "parts")
    d = {}

    def part(name: str, files: list[str]) -> str:
        p = os.path.join(c, name)
        for f in files:
            write(os.path.join(p, f), "fake %s/%s\n" % (name, f), 0o755)
        d[name] = p
        return p
    part("kube", ["bin/" + b for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl",
                                      "kwok", "etcd")])
    part("node", ["bin/kubeadm", "bin/kubelet", "bin/kube-proxy"])
    part("smallbins", ["echo", "pause"])
    part("coredns", ["coredns"])
    part("flannel", ["flanneld", "install-conf"])
    part("cni-flannel", ["flannel"])
    part("metrics-server", ["metrics-server"])
    part("pebble", ["pebble", "pebble-challtestsrv"])
    part("traefik", ["traefik"])
    part("netpol", ["netpol"])
    pm = part("pebble-mod", ["test/certs/localhost/cert.pem", "test/config/pebble-config.json"])
    os.chmod(os.path.join(pm, "test/certs/localhost/cert.pem"), 0o444)
    for tag, pkgs in (("node", ["containerd", "runc", "containernetworking-plugins"]),
                      ("image", ["busybox-static", "iptables", "libc6"]), ("restic", ["restic", "libc6"])):
        p = part("debs-" + tag, ["%s_1.0_amd64.deb" % n for n in pkgs])
        write(os.path.join(p, "packages"), "\n".join(pkgs) + "\n")
    return d


def _fake_deb_unpack(deb_dir: str, names: list[str], dst: str) -> None:
    content = {
        "containerd": ["usr/bin/containerd", "usr/bin/containerd-shim-runc-v2", "usr/bin/ctr"],
        "runc": ["usr/sbin/runc"],
        "containernetworking-plugins": ["usr/lib/cni/bridge", "usr/lib/cni/host-local", "usr/lib/cni/loopback",
                                        "usr/lib/cni/portmap", "usr/lib/cni/bandwidth", "usr/lib/cni/firewall",
                                        "usr/lib/cni/tuning"],
        "iptables": ["usr/sbin/xtables-nft-multi", "usr/share/doc/iptables/copyright", "usr/lib/libx.so"],
        "libc6": ["usr/lib/libc.so.6", "usr/share/locale/x/y.mo"],
        "restic": ["usr/bin/restic", "usr/share/zsh/x", "usr/share/man/man1/restic.1"],
    }
    for n in names:
        if n == "busybox-static":
            write(os.path.join(dst, "bin/busybox"), "#!/bin/sh\nprintf 'busybox\\nsh\\nls\\nwget\\n'\n", 0o755)
            continue
        for f in content[n]:
            write(os.path.join(dst, f), "fake %s from %s\n" % (f, n), 0o755)


def sc_bundle(t: Target, tmp: str) -> dict[str, str]:
    """The whole bundle assembly (_build_bundle) from fake parts: every file it writes, images included."""
    t.load(base_env(tmp, 0))
    t.fix_now()
    parts = _fake_bundle_parts(tmp)
    rec = Recorder(tmp, {"go mod download -json github.com/letsencrypt/pebble/v2@":
                         json.dumps({"Dir": parts["pebble-mod"]})})
    real_out = t.fn("out")

    def out(cmd: list[str], **kw: Any) -> str:
        if cmd[0].endswith("/bin/busybox"):
            return real_out(cmd, **kw)
        return rec.out(cmd, **kw)

    def go_install_dir(component: str, version: str, pkgs: list[str], **kw: Any) -> str:
        return parts[component]

    def debs_dir(tag: str, pkgs: list[str], closure: bool) -> str:
        return parts[{"k8s-node": "debs-node", "k8s-image-base": "debs-image", "k8s-image-restic": "debs-restic"}[tag]]
    dst = os.path.join(tmp, "bundle")
    os.makedirs(dst)
    real_cached = t.fn("cached")
    with with_patches(t, run=rec.run, out=out, need_go=lambda: None, log=lambda *a: None,
                      kube_dir=lambda: parts["kube"], kube_node_dir=lambda: parts["node"],
                      small_bins_dir=lambda: parts["smallbins"], flannel_dir=lambda: parts["flannel"],
                      traefik_dir=lambda: parts["traefik"], netpol_dir=lambda: parts["netpol"],
                      coredns_dir=lambda version: parts["coredns"], go_install_dir=go_install_dir, debs_dir=debs_dir, deb_unpack=_fake_deb_unpack,
                      cached=real_cached):
        t.fn("_build_bundle")(dst)
    with open(os.path.join(dst, "MANIFEST.json")) as f:
        manifest = json.load(f)
    manifest["build_seconds"] = sorted(manifest["build_seconds"])  # the parts, not how long they took
    files = tree(dst, tmp, skip=("MANIFEST.json", "SHA256SUMS"))
    with open(os.path.join(dst, "SHA256SUMS")) as f:
        sums = [l for l in f if not l.endswith("  MANIFEST.json\n") and not l.rstrip().endswith(".tar")]
    k3s = [d for d in os.listdir(os.path.join(tmp, "cache", "selfhost-testbed")) if d.startswith("k3s-standin-")]
    out = {"bundle-tree.json": dumps(files), "bundle-manifest.json": dumps(manifest),
           "bundle-sha256sums.txt": "".join(sums), "bundle-commands.json": dumps(rec.calls),
           "bundle-k3s-standin-part.txt": "\n".join(sorted(k3s)) + "\n"}
    # the stand-in's source hash (its cache key and commit) changes with every edit of k3s-standin/: not compared
    h = k3s_source_hash()
    return {k: v.replace(h[:12], "<k3s-standin-src12>").replace(h[:8], "<k3s-standin-src8>") for k, v in out.items()}


def k3s_source_hash() -> str:
    """builds.k3s_standin.source_hash of testbed/k3s-standin/ (*.go and go.mod, by file name)."""
    d = os.path.join(TESTBED_DIR, "k3s-standin")
    h = hashlib.sha256()
    for p in sorted([os.path.join(d, f) for f in os.listdir(d) if f.endswith(".go")] + [os.path.join(d, "go.mod")]):
        with open(p, "rb") as f:
            h.update(os.path.basename(p).encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


SCENARIOS: dict[str, Callable[[Target, str], dict[str, str]]] = {
    "config": sc_config, "cache-keys": sc_cache_keys, "assets": sc_assets, "kubeconfig": sc_kubeconfig,
    "network": sc_network, "host-up": sc_host_up, "cluster-up": sc_cluster_up, "env-status": sc_env_status,
    "argparse": sc_argparse, "go-builds": sc_go_builds, "rootfs": sc_rootfs, "bundle": sc_bundle,
}


@contextlib.contextmanager
def with_patches(t: Target, **patches: Any) -> Iterator[None]:
    for k, v in patches.items():
        t.patch(k, v)
    try:
        yield
    finally:
        pass  # every scenario loads a fresh target


def render(t: Target, name: str) -> dict[str, str]:
    # file modes are part of what is compared (and of the image layers): make them independent of the caller
    old_umask = os.umask(0o022)
    try:
        return _render(t, name)
    finally:
        os.umask(old_umask)


def _render(t: Target, name: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = os.path.realpath(tmp)
        t.tmp = tmp
        with environ(base_env(tmp, None)):
            return SCENARIOS[name](t, tmp)
