//! The air-gapped bundle (`testbed/testbed bundle` builds one; its layout is
//! documented in testbed/README.md) and the script that installs it on a
//! node once uploaded. The layout follows the upstream release layouts, so
//! the `download` source fetches the same paths from dl.k8s.io and the
//! containerd/runc/CNI releases.

use crate::shell::quote;

/// Paths inside the bundle.
pub mod layout {
    pub const MANIFEST: &str = "MANIFEST.json";
    pub const SHA256SUMS: &str = "SHA256SUMS";
    pub const KUBE_BIN: &str = "kubernetes/bin/linux/amd64";
    pub const KUBELET_UNIT: &str = "kubernetes/systemd/kubelet.service";
    pub const KUBEADM_DROP_IN: &str = "kubernetes/systemd/10-kubeadm.conf";
    pub const CONTAINERD_BIN: &str = "containerd/bin";
    pub const CONTAINERD_UNIT: &str = "containerd/containerd.service";
    pub const RUNC: &str = "runc/runc.amd64";
    pub const CNI_BIN: &str = "cni/bin";
    pub const IMAGES: &str = "images";
    /// `reference<TAB>file<TAB>digest` per image.
    pub const IMAGE_LIST: &str = "images/images.txt";
    pub const FLANNEL_MANIFEST: &str = "manifests/kube-flannel.yml";
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

/// Install the bundle unpacked at `dir` on the node: verify every file
/// against SHA256SUMS, put binaries and units in place, start containerd,
/// enable kubelet, import every image with `snapshotter`. containerd's
/// config is written separately (before this runs). Idempotent.
pub fn install_script(dir: &str, snapshotter: &str) -> String {
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
systemctl enable --now containerd >/dev/null 2>&1
systemctl enable kubelet >/dev/null 2>&1
i=0; until ctr version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
tab=$(printf '\t')
while IFS="$tab" read -r ref file _; do
  ctr -n k8s.io images import --snapshotter {snap} "{images}/$file" >/dev/null
done < {list}
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
        snap = quote(snapshotter),
        images = layout::IMAGES,
        list = layout::IMAGE_LIST,
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
    fn the_install_script_is_valid_sh_with_a_quoted_directory() {
        let script = install_script("/root/k8s bundle's", "native");
        assert!(script.contains("cd '/root/k8s bundle'\\''s'"), "{script}");
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("run sh -n");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
