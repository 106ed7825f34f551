//! Acceptance test of `selfhost_k8s_cluster` with `distribution = "k3s"`,
//! driven by a real Terraform CLI through this build of the provider, on
//! the test bed's Kubernetes-capable hosts, from the bed's bundle.
//!
//! STAND-IN: no registry reachable here serves k3s (the Go module proxy
//! refuses github.com/k3s-io/k3s), so the bundle's `k3s/k3s` is the test
//! bed's stand-in (testbed/README.md, "The k3s stand-in"): a single
//! executable that behaves as k3s documents — the paths, `config.yaml`,
//! the kubelet drop-in directory, the air-gap images directory, the
//! node-token, `k3s.yaml`, `Type=notify` units, `k3s kubectl` — and runs the
//! bed's REAL containerd, kubelet and control plane underneath. What this
//! test proves is the provider's k3s orchestration (install, config, units,
//! token join, repair, drain, uninstall) against that documented surface,
//! and a real cluster as its result; it does not prove compatibility with
//! every detail of the real k3s binary.
//!
//! A third host is added with `install { source = "download" }` against a
//! SIMULATED upstream: a local HTTP server in k3s's release layout serving
//! the same stand-in (no release server is reachable here).
//!
//! `eval "$(testbed/testbed env)"; cargo test --test acceptance_k3s -- --nocapture`

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::Outcome;
use support::bed::Host;
use support::cluster_lifecycle::{Distribution, lifecycle};
use support::k8s::{FRESH_HOST, K8sBed, k3s_cluster_config, k3s_cluster_config_with, k8s_bed};
use support::release_mirror::ReleaseMirror;
use support::{Workdir, clis_or_skip};

/// What must not be on a host after destroy or removal, checked with plain
/// shell: what k3s-uninstall.sh removes, and nothing of kubeadm's either.
const CLEAN_CHECK: &str = r#"
left=""
for f in /usr/local/bin/k3s /etc/rancher /var/lib/rancher /run/k3s /run/flannel /var/lib/kubelet /var/lib/cni \
         /etc/systemd/system/k3s.service /etc/systemd/system/k3s-agent.service /var/lib/selfhost/k8s-bundle \
         /etc/kubernetes /etc/cni /opt/cni /var/lib/containerd /run/containerd /etc/containerd; do
  [ ! -e "$f" ] || left="$left $f"
done
for u in k3s k3s-agent; do systemctl cat "$u.service" >/dev/null 2>&1 && left="$left unit:$u"; done
for l in cni0 flannel.1; do ip link show "$l" >/dev/null 2>&1 && left="$left link:$l"; done
for n in /run/netns/cni-* /run/containerd/s/*; do [ ! -e "$n" ] || left="$left $n"; done
p=$(pgrep -f '^/var/lib/rancher|containerd-shim|^/usr/local/bin/k3s' | tr '\n' ' ')
[ -z "$p" ] || left="$left processes:$p"
p=$(pgrep -x 'kubelet|containerd|kube-apiserver|etcd|kube-proxy|flanneld|pause|coredns' | tr '\n' ' ')
[ -z "$p" ] || left="$left processes:$p"
nft list ruleset 2>/dev/null | grep -qE 'KUBE-|FLANNEL' && left="$left kube-iptables-rules"
echo "left:$left"
"#;

fn assert_clean(k: &K8sBed, host: &Host) {
    let out = k.bed.sh(host, CLEAN_CHECK);
    assert_eq!(out.trim(), "left:", "{}: k3s leftovers after removal", host.addr);
}

/// The k3s release the stand-in is served as by the download mirror.
const RELEASE: &str = "v1.36.3+k3s1";

/// k3s's part of the shared lifecycle. The third host gets k3s from the
/// DOWNLOAD source: a local mirror in k3s's release layout (SIMULATED
/// upstream: no release server is reachable here) serving the bundle's
/// k3s/k3s.
#[derive(Default)]
struct K3s {
    mirror: Option<ReleaseMirror>,
}

impl Distribution for K3s {
    fn name(&self) -> &'static str {
        "k3s"
    }

    fn config(&self, k: &K8sBed, workers: &[&str], install: &str) -> String {
        if install.is_empty() {
            k3s_cluster_config(k, workers, "")
        } else {
            k3s_cluster_config_with(k, workers, install, "")
        }
    }

    fn worker_unit(&self) -> (&'static str, &'static str) {
        ("k3s-agent", "k3s stopped")
    }

    /// Against the STAND-IN's emulation of k3s's `secrets-encryption`,
    /// `k3s secrets-encrypt` and `kube-apiserver-arg` (testbed/README.md).
    fn api_server_security(&self, k: &K8sBed, wd: &Workdir, kc: &support::kube::KubeBed) {
        let with = |attrs: &str| {
            k3s_cluster_config(k, &["w1"], "").replace(
                "  cni           = \"flannel\"\n",
                &format!("  cni           = \"flannel\"\n{attrs}"),
            )
        };
        support::api_security::api_server_security(k, support::api_security::Flavor::K3sStandIn, wd, kc, &with);
    }

    fn removal_log(&self) -> &'static str {
        "removing k3s"
    }

    fn assert_clean(&self, k: &K8sBed, host: &Host) {
        assert_clean(k, host);
    }

    /// The server's node-token joined the agent and never reached the log;
    /// each host as k3s documents it, checked over plain SSH.
    fn after_create(&self, k: &K8sBed, o: &Outcome) {
        let token = k.bed.sh(&k.hosts[0], "cat /var/lib/rancher/k3s/server/node-token");
        let token = token.trim();
        assert!(token.starts_with("K10"), "the server wrote its node-token: {token:?}");
        let secret = token.rsplit(':').next().unwrap_or_default();
        assert!(secret.len() >= 8, "{token:?}");
        assert!(!o.output().contains(secret), "the node-token's secret reached the log");
        let files = k.bed.sh(
            &k.hosts[0],
            "stat -c '%a %n' /usr/local/bin/k3s /etc/rancher/k3s/config.yaml /etc/rancher/k3s/kubelet.conf.d/50-selfhost.conf /var/lib/rancher/k3s/server/node-token; systemctl is-active k3s; ls /var/lib/rancher/k3s/agent/images | grep -c '\\.tar$'",
        );
        let lines: Vec<&str> = files.lines().collect();
        assert_eq!(
            lines[..4],
            [
                "755 /usr/local/bin/k3s",
                "600 /etc/rancher/k3s/config.yaml",
                "644 /etc/rancher/k3s/kubelet.conf.d/50-selfhost.conf",
                "600 /var/lib/rancher/k3s/server/node-token"
            ],
            "{files}"
        );
        assert_eq!(lines[4], "active", "{files}");
        // The configured kubelet field is merged over the detected ones.
        let drop_in = k
            .bed
            .sh(&k.hosts[0], "cat /etc/rancher/k3s/kubelet.conf.d/50-selfhost.conf");
        for want in [
            "\"maxPods\":42",
            "\"failCgroupV1\":false",
            "\"cgroupDriver\":\"cgroupfs\"",
            "\"evictionHard\"",
        ] {
            assert!(drop_in.contains(want), "{want} in the kubelet drop-in: {drop_in}");
        }
        assert!(
            lines[5].parse::<u32>().unwrap_or(0) >= 7,
            "air-gap images in place: {files}"
        );
        let agent = k.bed.sh(
            &k.hosts[1],
            "stat -c '%a' /etc/rancher/k3s/config.yaml; systemctl is-active k3s-agent; grep -c '^server: \"https://' /etc/rancher/k3s/config.yaml; test -e /etc/systemd/system/k3s.service && echo server-unit || echo no-server-unit",
        );
        assert_eq!(
            agent.split_whitespace().collect::<Vec<_>>(),
            ["600", "active", "1", "no-server-unit"],
            "{agent}"
        );
    }

    /// First with bytes that do not match the release's
    /// sha256sum-amd64.txt: refused before anything runs on the new host.
    fn install_for_growth(&mut self, k: &K8sBed, wd: &Workdir) -> String {
        let mirror = ReleaseMirror::start_k3s(&k.bundle, RELEASE);
        let install = format!(
            "  install {{\n    source         = \"download\"\n    k3s_url        = \"{}/k3s\"\n    image_archives = \"{}/images\"\n  }}",
            mirror.url, k.bundle
        );
        wd.write("main.tf", &self.config(k, &["w1", "w2"], &install));
        let served = format!("k3s/{RELEASE}/k3s");
        let good = mirror.tamper(&served);
        let o = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        assert_eq!(o.code, Some(1), "a tampered k3s must fail the apply\n{o}");
        let out = o.output();
        assert!(out.contains("Checksum mismatch: download refused"), "{out}");
        assert!(
            out.contains("k3s_url"),
            "the diagnostic points at install.k3s_url\n{out}"
        );
        assert_eq!(
            k.bed
                .sh(
                    &k.hosts[2],
                    "ls -d /usr/local/bin/k3s /var/lib/selfhost/k8s-bundle /etc/rancher 2>/dev/null | wc -l"
                )
                .trim(),
            "0",
            "the new host was touched"
        );
        mirror.restore(&served, &good);
        self.mirror = Some(mirror);
        install
    }

    /// The new node runs exactly the bytes the mirror served.
    fn after_growth(&self, k: &K8sBed) {
        let Some(mirror) = &self.mirror else {
            panic!("the mirror was started for the growth")
        };
        let fetched = mirror.requests();
        assert!(
            fetched.contains(&"/k3s/v1.36.3%2Bk3s1/k3s".to_owned())
                && fetched.contains(&"/k3s/v1.36.3%2Bk3s1/sha256sum-amd64.txt".to_owned()),
            "k3s fetched from the mirror in the release layout: {fetched:?}"
        );
        let on_node = k.bed.sh(&k.hosts[2], "sha256sum /usr/local/bin/k3s | cut -d' ' -f1");
        let expected =
            std::fs::read_to_string(mirror.root.join(format!("k3s/{RELEASE}/sha256sum-amd64.txt"))).expect("sums");
        assert!(
            expected.lines().any(|l| l == format!("{}  k3s", on_node.trim())),
            "the node runs the bytes the mirror served ({on_node})"
        );
    }
}

#[test]
fn k3s_cluster_in_one_apply_grows_shrinks_repairs_and_leaves_hosts_clean() {
    const TEST: &str = "k3s_cluster_in_one_apply_grows_shrinks_repairs_and_leaves_hosts_clean";
    let Some(k) = k8s_bed(TEST) else { return };
    let _hosts = support::bed::hosts_lock();
    if !std::path::Path::new(&k.bundle).join("k3s/k3s").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{TEST}: the bundle has no k3s/k3s stand-in"
        );
        eprintln!("\n*** SKIP {TEST}: the bundle has no k3s/k3s (rebuild it: testbed/testbed bundle) ***\n");
        return;
    }
    let clis = clis_or_skip(TEST);
    let Some(cli) = clis.last() else { return };
    eprintln!("==== {TEST}: {} ({})", cli.label(), cli.path.display());
    lifecycle(&k, cli, &mut K3s::default());
}

/// Removing k3s from a host whose own containerd runs (the design's
/// `container_runtime = "containerd"`) must succeed and leave that
/// containerd running, while a containerd of k3s's (run from k3s's data
/// directory) is stopped. Runs the provider's uninstall script on a real bed
/// host over real SSH; before the fix any running containerd was reported
/// as a k3s leftover and removal failed.
#[test]
fn k3s_removal_keeps_the_hosts_own_containerd() {
    const TEST: &str = "k3s_removal_keeps_the_hosts_own_containerd";
    let Some(k) = k8s_bed(TEST) else { return };
    let _hosts = support::bed::hosts_lock();
    let host = &k.hosts[2];
    k.bed.sh(host, FRESH_HOST);
    // The host's own containerd: the bundle's real binary as a systemd unit
    // with its own state under /run/containerd, as a distribution's package
    // would run it.
    let containerd = std::path::Path::new(&k.bundle).join("containerd/bin/containerd");
    let bin = std::fs::read(&containerd).unwrap_or_else(|e| panic!("{}: {e}", containerd.display()));
    k.bed.copy_to(host, &bin, "/usr/local/bin/containerd");
    k.bed.sh(
        host,
        r#"set -e
chmod 755 /usr/local/bin/containerd
cat > /etc/systemd/system/containerd.service <<'UNIT'
[Service]
ExecStart=/usr/local/bin/containerd
Restart=no
UNIT
systemctl daemon-reload
systemctl restart containerd
for i in $(seq 50); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.2; done
[ -S /run/containerd/containerd.sock ]
# A containerd of k3s's own, left running (KillMode=process): a copy of
# sleep named containerd in k3s's data directory.
mkdir -p /var/lib/rancher/k3s/data/test/bin
cp /bin/sleep /var/lib/rancher/k3s/data/test/bin/containerd
setsid /var/lib/rancher/k3s/data/test/bin/containerd 600 </dev/null >/dev/null 2>&1 &
for i in $(seq 50); do pgrep -f '^/var/lib/rancher/k3s/data/test/bin/containerd' >/dev/null && break; sleep 0.2; done
pgrep -f '^/var/lib/rancher/k3s/data/test/bin/containerd' >/dev/null
"#,
    );
    let out = k.bed.ssh(
        host,
        &terraform_provider_selfhost::cluster::k3s::uninstall_script("/var/lib/selfhost/k8s-bundle"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let after = k.bed.sh(
        host,
        "systemctl is-active containerd; pgrep -f '^/var/lib/rancher/k3s/data/' >/dev/null && echo k3s-containerd-alive || echo k3s-containerd-gone",
    );
    k.bed.sh(host, FRESH_HOST);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("clean"),
        "removal must succeed beside the host's own containerd ({}):\n{stdout}{stderr}",
        out.status
    );
    assert_eq!(
        after.split_whitespace().collect::<Vec<_>>(),
        ["active", "k3s-containerd-gone"],
        "the host's containerd keeps running, k3s's is stopped"
    );
}

/// What k3s does not take from the provider is refused at validate time,
/// each at its own line, by every CLI; no host is contacted.
#[test]
fn k3s_refuses_settings_it_does_not_take_at_their_attribute() {
    const TEST: &str = "k3s_refuses_settings_it_does_not_take_at_their_attribute";
    let bad = r#"terraform {
  required_providers {
    selfhost = { source = "selfhost/selfhost" }
  }
}

resource "selfhost_k8s_cluster" "main" {
  distribution  = "k3s"
  version       = "v1.36.3"
  control_plane = { host = "203.0.113.10", port = 22, user = "root", host_key = "ssh-ed25519 AAAA" }
  cni           = "calico"
  install {
    k3s_version = "v1.35.0+k3s1"
    k3s_url     = "ftp://mirror"
  }
  node_settings {
    containerd_restrict_oom_score_adj = true
    kube_proxy_extra_config           = jsonencode({ mode = "ipvs" })
    ignore_preflight_errors           = ["SystemVerification"]
  }
}
"#;
    support::expect_invalid_at(
        TEST,
        "k3s-validate",
        bad,
        &[
            ("cni           =", "must be one of \"flannel\", \"none\""),
            ("k3s_version =", "is not a k3s release of version"),
            ("k3s_url     =", "is not an http:// or https:// URL"),
            (
                "containerd_restrict_oom_score_adj =",
                "k3s writes containerd's configuration itself",
            ),
            ("kube_proxy_extra_config           =", "kube-proxy-arg"),
            ("ignore_preflight_errors           =", "no kubeadm preflight checks"),
        ],
    );
}
