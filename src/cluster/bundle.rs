//! The air-gapped bundle (`testbed/testbed bundle` builds one; its layout is
//! documented in testbed/README.md) and the script that installs it on a
//! node once uploaded. The layout follows the upstream release layouts, so
//! the `download` source fetches the same paths from dl.k8s.io and the
//! containerd/runc/CNI releases.

use crate::shell::quote;

/// Paths inside the bundle.
pub mod layout {
    /// What the bundle holds: versions, image references and their digests.
    pub const MANIFEST: &str = "MANIFEST.json";
    /// The SHA-256 of every file in the bundle, `sha256sum` format.
    pub const SHA256SUMS: &str = "SHA256SUMS";
    /// Directory of kubeadm, kubelet and kubectl.
    pub const KUBE_BIN: &str = "kubernetes/bin/linux/amd64";
    /// The kubelet's systemd unit.
    pub const KUBELET_UNIT: &str = "kubernetes/systemd/kubelet.service";
    /// The kubelet drop-in that runs it the way kubeadm expects.
    pub const KUBEADM_DROP_IN: &str = "kubernetes/systemd/10-kubeadm.conf";
    /// Directory of the containerd binaries.
    pub const CONTAINERD_BIN: &str = "containerd/bin";
    /// containerd's systemd unit.
    pub const CONTAINERD_UNIT: &str = "containerd/containerd.service";
    /// The runc binary.
    pub const RUNC: &str = "runc/runc.amd64";
    /// Directory of the CNI plugin binaries.
    pub const CNI_BIN: &str = "cni/bin";
    /// Directory of the container images (OCI archives imported into containerd).
    pub const IMAGES: &str = "images";
    /// `reference<TAB>file<TAB>digest` per image.
    pub const IMAGE_LIST: &str = "images/images.txt";
    /// flannel's release manifest, applied as the cluster's CNI.
    pub const FLANNEL_MANIFEST: &str = "manifests/kube-flannel.yml";
    /// The k3s binary (the release asset's name) and its checksum file.
    pub const K3S: &str = "k3s/k3s";
}

/// The pause image from the bundle's `images.txt` (the sandbox image
/// containerd must use, as kubeadm expects it).
pub fn pause_image(images_txt: &str) -> Option<String> {
    images_txt
        .lines()
        .filter_map(|l| l.split('\t').next())
        .find(|r| r.rsplit('/').next().is_some_and(|last| last.starts_with("pause:")))
        .map(str::to_owned)
}

/// One file of the bundle a node needs: its path inside the bundle and
/// its SHA-256 (hex) from the bundle's `SHA256SUMS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleFile {
    /// The file's path inside the bundle, e.g. `runc/runc.amd64`.
    pub path: String,
    /// Its SHA-256 (hex), checked on the node before use.
    pub sha256: String,
}

/// Whether a kubeadm node needs a bundle file: not the package provenance,
/// nor the control-plane binaries (they run from the images), nor k3s.
pub fn kubeadm_node_needs(path: &str) -> bool {
    const SKIP: &[&str] = &[
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
        "etcd",
    ];
    if path.starts_with("debs/") || path.starts_with("k3s/") {
        return false;
    }
    match path.strip_prefix(layout::KUBE_BIN).and_then(|r| r.strip_prefix('/')) {
        Some(bin) => !SKIP.contains(&bin),
        None => true,
    }
}

/// Whether a k3s node needs a bundle file: the k3s binary and the images.
pub fn k3s_node_needs(path: &str) -> bool {
    path == layout::K3S || path.starts_with("images/")
}

/// The files a node needs (`needs`), from the text of the bundle's `SHA256SUMS`
/// (`<hex>  <path>` lines). Paths must be plain relative paths: anything
/// else makes the bundle invalid.
///
/// # Errors
/// The offending line, for a line that is not `<64 hex>  <relative path>`.
pub fn node_files(sha256sums: &str, needs: fn(&str) -> bool) -> Result<Vec<BundleFile>, String> {
    let mut out = Vec::new();
    for line in sha256sums.lines().filter(|l| !l.trim().is_empty()) {
        let (hash, path) = line
            .split_once("  ")
            .ok_or_else(|| format!("SHA256SUMS line {line:?} is not \"<sha256>  <path>\""))?;
        let path_ok = !path.is_empty()
            && !path.starts_with('/')
            && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_' | b'+' | b'~'));
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || !path_ok {
            return Err(format!("SHA256SUMS line {line:?} is not \"<sha256>  <relative path>\""));
        }
        if needs(path) {
            out.push(BundleFile {
                path: path.to_owned(),
                sha256: hash.to_ascii_lowercase(),
            });
        }
    }
    Ok(out)
}

/// Print the paths under `dir` that already hold the right bytes (the
/// expected sums come on stdin), so only the others are uploaded again.
pub fn present_script(dir: &str) -> String {
    format!(
        "mkdir -p {d} && cd {d} && sha256sum -c - 2>/dev/null | sed -n 's/: OK$//p'\n",
        d = quote(dir)
    )
}

/// Put the files unpacked at `dir` on the node in place after checking
/// every one against SHA256SUMS: binaries, containerd's and kubelet's
/// units. Starts nothing (containerd's config comes next). Idempotent.
pub fn install_script(dir: &str) -> String {
    format!(
        r#"set -eu
cd {dir}
sha256sum -c --quiet {sums}
install -m 0755 {kb}/kubeadm {kb}/kubelet {kb}/kubectl /usr/bin/
install -m 0755 {cb}/* /usr/local/bin/
install -m 0755 {runc} /usr/local/sbin/runc
mkdir -p /opt/cni/bin /etc/cni/net.d /etc/systemd/system/kubelet.service.d /etc/kubeadm/patches
install -m 0755 {cni}/* /opt/cni/bin/
install -m 0644 {cu} /etc/systemd/system/containerd.service
install -m 0644 {ku} /etc/systemd/system/kubelet.service
install -m 0644 {kd} /etc/systemd/system/kubelet.service.d/10-kubeadm.conf
systemctl daemon-reload
"#,
        dir = quote(dir),
        sums = layout::SHA256SUMS,
        kb = layout::KUBE_BIN,
        cb = layout::CONTAINERD_BIN,
        runc = layout::RUNC,
        cni = layout::CNI_BIN,
        cu = layout::CONTAINERD_UNIT,
        ku = layout::KUBELET_UNIT,
        kd = layout::KUBEADM_DROP_IN,
    )
}

/// The pause image kubeadm expects for `version`, asked of the kubeadm
/// just installed (when no image archive names it).
pub fn pause_query_script(version: &str) -> String {
    format!(
        "kubeadm config images list --kubernetes-version {} 2>/dev/null | grep -m1 '/pause:'\n",
        quote(version)
    )
}

/// (Re)start containerd with its configuration, enable kubelet, import
/// every image archive listed in `images.txt` with `snapshotter`.
pub fn start_runtime_script(dir: &str, snapshotter: &str) -> String {
    format!(
        r#"set -eu
cd {dir}
systemctl enable containerd >/dev/null 2>&1
systemctl restart containerd
systemctl enable kubelet >/dev/null 2>&1
i=0; until ctr version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
{import}"#,
        dir = quote(dir),
        import = import_missing_images(snapshotter),
    )
}

/// Import every image archive listed in `images.txt` (the working
/// directory is the bundle's) that containerd does not have yet: an image
/// is imported whole or not at all, so one listed by name is complete.
fn import_missing_images(snapshotter: &str) -> String {
    format!(
        r#"have=$(ctr -n k8s.io images ls -q)
tab=$(printf '\t')
while IFS="$tab" read -r ref file _; do
  printf '%s\n' "$have" | grep -qxF -- "$ref" && continue
  ctr -n k8s.io images import --snapshotter {snap} "{images}/$file" >/dev/null
done < {list}
"#,
        snap = quote(snapshotter),
        images = layout::IMAGES,
        list = layout::IMAGE_LIST,
    )
}

/// An in-place upgrade's first step on a running node: check the new
/// payload, install the new `kubeadm` (kubeadm is upgraded first; the
/// kubelet, kubectl and containerd only inside the node's drain window)
/// and import the new release's images next to the old. Restarts nothing.
pub fn stage_script(dir: &str, snapshotter: &str) -> String {
    format!(
        r#"set -eu
cd {dir}
sha256sum -c --quiet {sums}
install -m 0755 {kb}/kubeadm /usr/bin/
{import}"#,
        dir = quote(dir),
        sums = layout::SHA256SUMS,
        kb = layout::KUBE_BIN,
        import = import_missing_images(snapshotter),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_image_is_found_in_the_list() {
        let list = "registry.k8s.io/kube-apiserver:v1.36.3\tkube-apiserver.tar\tsha256:aa\nregistry.k8s.io/pause:3.10.2\tpause.tar\tsha256:bb\n";
        assert_eq!(pause_image(list).as_deref(), Some("registry.k8s.io/pause:3.10.2"));
        assert_eq!(pause_image("selfhost.test/echo:1\techo.tar\tsha256:cc\n"), None);
    }

    #[test]
    fn a_node_gets_what_it_runs_and_nothing_unsafe() {
        let h = "a".repeat(64);
        let sums = format!(
            "{h}  kubernetes/bin/linux/amd64/kubeadm\n{h}  kubernetes/bin/linux/amd64/kube-apiserver\n{h}  debs/x.deb\n{h}  images/pause.tar\n{h}  k3s/k3s\n{h}  k3s/sha256sum-amd64.txt\n"
        );
        let paths = |needs| -> Vec<String> {
            node_files(&sums, needs)
                .expect("valid")
                .into_iter()
                .map(|f| f.path)
                .collect()
        };
        assert_eq!(
            paths(kubeadm_node_needs),
            ["kubernetes/bin/linux/amd64/kubeadm", "images/pause.tar"]
        );
        assert_eq!(paths(k3s_node_needs), ["images/pause.tar", "k3s/k3s"]);
        for bad in [
            format!("{h}  ../etc/passwd"),
            format!("{h}  /etc/passwd"),
            format!("{h}  a b"),
            format!("{h}  $(reboot)"),
            "abc  kubeadm".to_owned(),
        ] {
            assert!(node_files(&bad, kubeadm_node_needs).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_install_script_is_valid_sh_with_a_quoted_directory() {
        for script in [
            install_script("/root/k8s bundle's"),
            start_runtime_script("/root/k8s bundle's", "native"),
            stage_script("/root/k8s bundle's", "native"),
            pause_query_script("v1.36.3"),
        ] {
            crate::shell::assert_valid_sh(&script);
        }
        assert!(install_script("/root/k8s bundle's").contains("cd '/root/k8s bundle'\\''s'"));
    }
}
