//! Acceptance test of `install { source = "download" }`: the provider
//! fetches kubeadm, kubelet, kubectl, containerd, runc and the CNI plugins
//! from URLs in the official release layouts, checks each against its
//! published SHA-256 before anything runs on a host, caches them by digest,
//! and bootstraps a REAL kubeadm cluster with them, its CNI being flannel's
//! own release manifest.
//!
//! SIMULATED: the upstream servers. No registry or release server is
//! reachable here, so a local `python3 -m http.server`
//! (tests/support/release_mirror.rs) serves the test bed bundle's binaries
//! in exactly the upstream URL layout, with checksum files computed from
//! them; the configuration points `install.*_url` at it like a user of a
//! mirror would. The images come from the bundle's archives
//! (`install.image_archives`), since the hosts cannot pull.
//!
//! `eval "$(testbed/testbed env)"; cargo test --test acceptance_k8s_download -- --nocapture`

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::k8s::{FRESH_HOST, assert_clean, cluster_config_with, cluster_kubectl, k8s_bed, ready_nodes};
use support::release_mirror::ReleaseMirror;
use support::{Workdir, clis_or_skip};

const VERSION: &str = "v1.36.3";

/// Nothing of the cluster's on the host: no payload directory, no binary,
/// no containerd configuration, no unit.
const UNTOUCHED: &str = r#"
left=""
for f in /var/lib/selfhost/k8s-bundle /usr/bin/kubeadm /usr/bin/kubelet /usr/local/bin/containerd \
         /etc/containerd/config.toml /etc/systemd/system/kubelet.service /etc/kubeadm; do
  [ ! -e "$f" ] || left="$left $f"
done
echo "left:$left"
"#;

#[test]
fn download_source_refuses_a_wrong_checksum_then_bootstraps_from_the_mirror() {
    const TEST: &str = "download_source_refuses_a_wrong_checksum_then_bootstraps_from_the_mirror";
    let Some(k) = k8s_bed(TEST) else { return };
    let clis = clis_or_skip(TEST);
    let Some(cli) = clis.last() else { return };
    eprintln!("==== {TEST}: {} ({})", cli.label(), cli.path.display());
    let cp = &k.hosts[0];
    k.bed.sh(cp, FRESH_HOST);
    let mirror = ReleaseMirror::start(&k.bundle, VERSION);
    let images = format!("{}/images", k.bundle);

    let mut wd = Workdir::new(cli, "k8s-download");
    wd.set_step_timeout(Duration::from_secs(30 * 60));
    // The provider's download cache: this work dir's, so the first apply
    // really downloads.
    let cache = wd.path.join(".cache");
    wd.set_env("XDG_CACHE_HOME", &cache.display().to_string());
    wd.write(
        "main.tf",
        &cluster_config_with(&k, &[], &mirror.install_hcl(&images), ""),
    );
    wd.init();

    // 1. kubelet's bytes differ from its published SHA-256: refused, and
    //    nothing of the cluster ran on the host.
    let kubelet = format!("k8s/{VERSION}/bin/linux/amd64/kubelet");
    let good = mirror.tamper(&kubelet);
    let o = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(1), "a tampered kubelet must fail the apply\n{o}");
    let out = o.output();
    assert!(out.contains("Checksum mismatch: download refused"), "{out}");
    assert!(
        out.contains(&format!("{}/{kubelet}: SHA-256 mismatch", mirror.url)),
        "the message names the URL\n{out}"
    );
    assert!(
        out.contains("base_url"),
        "the diagnostic points at install.base_url\n{out}"
    );
    assert_eq!(k.bed.sh(cp, UNTOUCHED).trim(), "left:", "the host was touched");
    let cached: Vec<String> = std::fs::read_dir(cache.join("terraform-provider-selfhost/downloads"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let good_sha = std::fs::read_to_string(mirror.root.join(format!("{kubelet}.sha256"))).expect("sha");
    assert!(
        !cached.iter().any(|n| n.starts_with(".part-") || n == good_sha.trim()),
        "a refused download was kept: {cached:?}"
    );

    // 2. The right bytes: the cluster comes up from the mirror's files.
    mirror.restore(&kubelet, &good);
    let started = Instant::now();
    let o = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "{o}");
    eprintln!("create from the mirror: {:.0?}", started.elapsed());
    let fetched = mirror.requests();
    for path in [
        format!("/k8s/{VERSION}/bin/linux/amd64/kubeadm"),
        format!("/k8s/{VERSION}/bin/linux/amd64/kubelet.sha256"),
        format!("/k8s/{VERSION}/bin/linux/amd64/kubectl"),
        "/containerd/v1.6.20/containerd-1.6.20-linux-amd64.tar.gz".to_owned(),
        "/runc/v1.1.5/runc.sha256sum".to_owned(),
        "/cni/v1.1.1/cni-plugins-linux-amd64-v1.1.1.tgz".to_owned(),
    ] {
        assert!(fetched.contains(&path), "{path} was not fetched: {fetched:?}");
    }
    // What runs on the node is what the mirror served.
    let on_node = k
        .bed
        .sh(cp, "sha256sum /usr/bin/kubelet /usr/local/sbin/runc | cut -d' ' -f1");
    let served = std::process::Command::new("sha256sum")
        .arg(mirror.root.join(&kubelet))
        .arg(mirror.root.join("runc/v1.1.5/runc.amd64"))
        .output()
        .expect("sha256sum");
    let served: Vec<String> = String::from_utf8_lossy(&served.stdout)
        .lines()
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect();
    assert_eq!(on_node.split_whitespace().collect::<Vec<_>>(), served);

    let kc = cluster_kubectl(&k, &wd);
    let nodes = ready_nodes(&kc);
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert!(
        nodes.iter().all(|(_, ready)| *ready),
        "node Ready with flannel's release manifest: {nodes:?}"
    );
    // flannel from its release manifest (both of its images from the
    // archives) rolls out, and CoreDNS gets pod IPs through it.
    kc.ok(&[
        "-n",
        "kube-flannel",
        "rollout",
        "status",
        "daemonset/kube-flannel-ds",
        "--timeout=300s",
    ]);
    kc.ok(&[
        "-n",
        "kube-system",
        "rollout",
        "status",
        "deployment/coredns",
        "--timeout=300s",
    ]);
    let ds = kc.ok(&[
        "-n",
        "kube-flannel",
        "get",
        "daemonset",
        "kube-flannel-ds",
        "-o",
        "jsonpath={.status.numberReady} {.spec.template.spec.initContainers[0].image}",
    ]);
    assert_eq!(
        ds.trim(),
        "1 ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3",
        "{ds}"
    );

    // 3. The second plan is empty; a stopped kubelet is repaired without
    //    the mirror (nothing to install: nothing fetched).
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "the plan after create must be empty\n{o}");
    k.bed.sh(cp, "systemctl stop kubelet");
    let before = mirror.requests().len();
    let o = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "{o}");
    let again: Vec<String> = mirror.requests()[before..].to_vec();
    assert!(again.is_empty(), "a repair fetched from the mirror: {again:?}");
    assert_eq!(k.bed.sh(cp, "systemctl is-active kubelet").trim(), "active");
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(o.code, Some(0), "the plan after the repair must be empty\n{o}");

    // 4. Destroy leaves the host clean.
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert_clean(&k, cp);
}
