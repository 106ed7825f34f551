"""The Kubernetes control plane on loopback: PKI, kubeconfigs, etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok with its fake nodes."""
from __future__ import annotations

import base64
import contextlib
import os
import shutil
import ssl
import time
import urllib.request

from . import assets, config, machine, proc
from .builds import kubernetes
from .config import Config
from .errors import TestbedError
from .versions import N_FAKE_NODES

CLUSTER_COMPONENTS = ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]
LOOPBACK_SANS = ["IP:127.0.0.1", "DNS:localhost"]
APISERVER_SANS = ["IP:10.96.0.1", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
                  "DNS:kubernetes.default.svc.cluster.local"]
# (file name, CN, O, SANs) of every certificate the CA signs
CERTS: list[tuple[str, str, str | None, list[str] | None]] = [
    ("etcd", "etcd", None, LOOPBACK_SANS),
    ("apiserver-etcd-client", "kube-apiserver-etcd-client", None, None),
    ("apiserver", "kube-apiserver", None, LOOPBACK_SANS + APISERVER_SANS),
    ("admin", "selfhost-testbed-admin", "system:masters", None),
    ("controller-manager", "system:kube-controller-manager", None, None),
    ("scheduler", "system:kube-scheduler", None, None),
    ("kwok", "kwok-controller", "system:masters", None),
    ("kwok-serving", "kwok", None, LOOPBACK_SANS),
]


def pki_dir() -> str:
    return config.get().state_path("pki")


def openssl(*args: str) -> None:
    proc.run(["openssl"] + list(args), quiet=True, capture=True)


def make_cert(name: str, cn: str, org: str | None = None, sans: list[str] | None = None) -> None:
    d = pki_dir()
    key, crt, csr = (os.path.join(d, name + x) for x in (".key", ".crt", ".csr"))
    if os.path.exists(crt):
        return
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    subj = "/CN=%s" % cn + ("/O=%s" % org if org else "")
    req = ["req", "-new", "-key", key, "-subj", subj, "-out", csr]
    if sans:
        req += ["-addext", "subjectAltName=" + ",".join(sans)]
    openssl(*req)
    openssl("x509", "-req", "-in", csr, "-CA", os.path.join(d, "ca.crt"), "-CAkey", os.path.join(d, "ca.key"),
            "-CAcreateserial", "-days", "365", "-copy_extensions", "copy", "-out", crt)
    os.unlink(csr)


def make_pki() -> None:
    if not shutil.which("openssl"):
        machine.apt_install(["openssl"])
    d = pki_dir()
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o700)
    if not os.path.exists(os.path.join(d, "ca.crt")):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", os.path.join(d, "ca.key"))
        openssl("req", "-x509", "-new", "-key", os.path.join(d, "ca.key"), "-subj", "/CN=selfhost-testbed-ca",
                "-days", "365", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", "-out", os.path.join(d, "ca.crt"))
    for name, cn, org, sans in CERTS:
        make_cert(name, cn, org=org, sans=sans)
    if not os.path.exists(os.path.join(d, "sa.key")):
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", os.path.join(d, "sa.key"))
        openssl("pkey", "-in", os.path.join(d, "sa.key"), "-pubout", "-out", os.path.join(d, "sa.pub"))


def b64file(p: str) -> str:
    with open(p, "rb") as f:
        return base64.b64encode(f.read()).decode()


def kubeconfig(cfg: Config, ca_data: str, user: str, cert_data: str, key_data: str) -> str:
    return assets.render("control-plane/kubeconfig.yaml", apiserver_port=cfg.apiserver_port, ca_data=ca_data,
                         user=user, cert_data=cert_data, key_data=key_data)


def write_kubeconfig(path: str, cert: str) -> str:
    """A kubeconfig for the client certificate `cert` of the PKI (mode 600: it holds the key)."""
    d = pki_dir()
    with open(path, "w") as f:
        f.write(kubeconfig(config.get(), b64file(os.path.join(d, "ca.crt")), cert,
                           b64file(os.path.join(d, cert + ".crt")), b64file(os.path.join(d, cert + ".key"))))
    os.chmod(path, 0o600)
    return path


def api_get(path: str, cert: str = "admin", timeout: float = 3) -> tuple[int, str]:
    d = pki_dir()
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
    ctx.load_cert_chain(os.path.join(d, cert + ".crt"), os.path.join(d, cert + ".key"))
    with urllib.request.urlopen("https://127.0.0.1:%d%s" % (config.get().apiserver_port, path), context=ctx,
                                timeout=timeout) as r:
        return r.status, r.read().decode()


def fake_nodes() -> str:
    """kwok's fake nodes as one multi-document manifest."""
    return "---\n".join(assets.render("manifests/fake-node.yaml", name="kwok-node-%d" % i)
                        for i in range(1, N_FAKE_NODES + 1))


def loopback_ports(cfg: Config) -> list[tuple[str, int]]:
    return [("etcd", cfg.etcd_port), ("etcd", cfg.etcd_peer_port), ("kube-apiserver", cfg.apiserver_port),
            ("kube-controller-manager", cfg.kcm_port), ("kube-scheduler", cfg.sched_port), ("kwok", cfg.kwok_port)]


def etcd_cmd(cfg: Config, bins: str, data: str) -> list[str]:
    def P(n: str) -> str:
        return os.path.join(pki_dir(), n)
    return [os.path.join(bins, "etcd"), "--name=testbed", "--data-dir=" + data,
            "--listen-client-urls=https://127.0.0.1:%d" % cfg.etcd_port,
            "--advertise-client-urls=https://127.0.0.1:%d" % cfg.etcd_port,
            "--listen-peer-urls=https://127.0.0.1:%d" % cfg.etcd_peer_port,
            "--initial-advertise-peer-urls=https://127.0.0.1:%d" % cfg.etcd_peer_port,
            "--initial-cluster=testbed=https://127.0.0.1:%d" % cfg.etcd_peer_port,
            "--cert-file=" + P("etcd.crt"), "--key-file=" + P("etcd.key"),
            "--trusted-ca-file=" + P("ca.crt"), "--client-cert-auth",
            "--peer-cert-file=" + P("etcd.crt"), "--peer-key-file=" + P("etcd.key"),
            "--peer-trusted-ca-file=" + P("ca.crt"), "--peer-client-cert-auth",
            "--listen-metrics-urls=", "--log-level=warn", "--quota-backend-bytes=2147483648"]


def apiserver_cmd(cfg: Config, bins: str) -> list[str]:
    def P(n: str) -> str:
        return os.path.join(pki_dir(), n)
    return [os.path.join(bins, "kube-apiserver"),
            "--etcd-servers=https://127.0.0.1:%d" % cfg.etcd_port, "--etcd-cafile=" + P("ca.crt"),
            "--etcd-certfile=" + P("apiserver-etcd-client.crt"), "--etcd-keyfile=" + P("apiserver-etcd-client.key"),
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=%d" % cfg.apiserver_port,
            "--tls-cert-file=" + P("apiserver.crt"), "--tls-private-key-file=" + P("apiserver.key"),
            "--client-ca-file=" + P("ca.crt"),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file=" + P("sa.pub"), "--service-account-signing-key-file=" + P("sa.key"),
            "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC",
            "--allow-privileged=true", "--cert-dir=" + P("apiserver-gen"), "--profiling=false",
            # the apiserver listens on loopback, which is not a valid endpoint address
            "--endpoint-reconciler-type=none"]


def controller_cmds(cfg: Config) -> list[tuple[str, str, int, list[str]]]:
    """(component, client cert, port, extra flags) of kube-controller-manager and kube-scheduler."""
    def P(n: str) -> str:
        return os.path.join(pki_dir(), n)
    return [("kube-controller-manager", "controller-manager", cfg.kcm_port, [
                "--use-service-account-credentials=true", "--service-account-private-key-file=" + P("sa.key"),
                "--root-ca-file=" + P("ca.crt"), "--cluster-signing-cert-file=" + P("ca.crt"),
                "--cluster-signing-key-file=" + P("ca.key"), "--controllers=*,tokencleaner",
                "--cluster-name=selfhost-testbed", "--cert-dir=" + P("kcm-gen")]),
            ("kube-scheduler", "scheduler", cfg.sched_port, [])]


def kwok_cmd(cfg: Config, bins: str, kc: str, stages: str) -> list[str]:
    def P(n: str) -> str:
        return os.path.join(pki_dir(), n)
    return [os.path.join(bins, "kwok"), "--kubeconfig=" + kc, "--config=" + stages,
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            # Without a lease kwok only refreshes the nodes' status every 10-20 min (the
            # heartbeat-with-lease stage), so the node controller saw them stale every ~50 s,
            # tainted them unreachable and marked their pods NotReady for good (the pod-ready
            # stage only matches Pending pods): rollouts then hung at random.
            "--node-lease-duration-seconds=40",
            "--cidr=10.244.0.1/16", "--node-ip=10.244.255.254",
            "--server-address=127.0.0.1:%d" % cfg.kwok_port,
            "--tls-cert-file=" + P("kwok-serving.crt"), "--tls-private-key-file=" + P("kwok-serving.key")]


def cluster_up() -> None:
    cfg = config.get()
    kd = kubernetes.kube_dir()
    bins = os.path.join(kd, "bin")
    stages = kubernetes.kwok_stages(kd)
    make_pki()
    logs = cfg.state_path("logs")
    t0 = time.time()
    for comp, port in loopback_ports(cfg):
        if not proc.read_pid(comp) and proc.tcp_open("127.0.0.1", port):
            raise TestbedError("127.0.0.1:%d (for %s) is already in use by another process (another test bed? see "
                               "`ss -ltnp`); use another SELFHOST_TESTBED_INSTANCE for a second bed" % (port, comp))
    if not proc.read_pid("etcd"):
        data = cfg.state_path("etcd")
        shutil.rmtree(data, ignore_errors=True)
        proc.spawn("etcd", etcd_cmd(cfg, bins, data))
        proc.wait_for("etcd on 127.0.0.1:%d" % cfg.etcd_port, lambda: proc.tcp_open("127.0.0.1", cfg.etcd_port), 30,
                      os.path.join(logs, "etcd.log"), "etcd")
    if not proc.read_pid("kube-apiserver"):
        proc.spawn("kube-apiserver", apiserver_cmd(cfg, bins))
    lf = os.path.join(logs, "kube-apiserver.log")
    proc.wait_for("kube-apiserver /readyz", lambda: api_get("/readyz")[0] == 200, 120, lf, "kube-apiserver")
    admin = write_kubeconfig(cfg.state_path("kubeconfig"), "admin")
    for comp, cert, port, extra in controller_cmds(cfg):
        if proc.read_pid(comp):
            continue
        kc = write_kubeconfig(cfg.state_path(comp + ".kubeconfig"), cert)
        proc.spawn(comp, [os.path.join(bins, comp), "--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc,
                          "--authorization-kubeconfig=" + kc, "--bind-address=127.0.0.1", "--secure-port=%d" % port,
                          "--leader-elect=false"] + extra)
    if not proc.read_pid("kwok"):
        kc = write_kubeconfig(cfg.state_path("kwok.kubeconfig"), "kwok")
        proc.spawn("kwok", kwok_cmd(cfg, bins, kc, stages))
    kubectl = [os.path.join(bins, "kubectl"), "--kubeconfig=" + admin]
    proc.run(kubectl + ["apply", "-f", "-"], input=fake_nodes(), logfile=os.path.join(logs, "kubectl.log"))
    proc.wait_for("fake nodes Ready (kwok)", lambda: proc.run(
        kubectl + ["wait", "--for=condition=Ready", "node", "-l", "type=kwok", "--timeout=5s"],
        check=False, capture=True, quiet=True).returncode == 0, 60, os.path.join(logs, "kwok.log"), "kwok")
    proc.wait_for("default ServiceAccount (kube-controller-manager)", lambda: proc.run(
        kubectl + ["get", "serviceaccount", "default", "-n", "default"], check=False, capture=True,
        quiet=True).returncode == 0, 60, os.path.join(logs, "kube-controller-manager.log"), "kube-controller-manager")
    for comp in ("kube-controller-manager", "kube-scheduler"):
        if not proc.read_pid(comp):
            raise TestbedError(comp + " exited", os.path.join(logs, comp + ".log"))
    proc.log("control plane up in %.0fs: %s" % (time.time() - t0, api_get("/version")[1].replace("\n", " ")))


def cluster_down() -> None:
    cfg = config.get()
    for c in CLUSTER_COMPONENTS:
        proc.stop(c, grace=10)
    for f in ["kubeconfig"] + [c + ".kubeconfig" for c in CLUSTER_COMPONENTS]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(cfg.state_path(f))
    shutil.rmtree(cfg.state_path("etcd"), ignore_errors=True)
    shutil.rmtree(pki_dir(), ignore_errors=True)


def cluster_is_up() -> bool:
    return bool(proc.read_pid("kube-apiserver")) and os.path.exists(config.get().state_path("kubeconfig"))
