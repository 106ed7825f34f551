//! The upstream release layouts `install { source = "download" }` fetches:
//! which URL holds each artifact, which published file holds its SHA-256,
//! and where its contents go in the node layout the bundle also uses
//! ([`super::bundle::layout`]). No I/O here; `crate::download` fetches.
//!
//! | artifact | URL (under its base) | checksum file |
//! |---|---|---|
//! | kubeadm, kubelet, kubectl | `v{k8s}/bin/linux/amd64/NAME` (dl.k8s.io/release) | `NAME.sha256` (the bare hex) |
//! | containerd | `v{c}/containerd-{c}-linux-amd64.tar.gz` | `…tar.gz.sha256sum` (`hex  name`) |
//! | runc | `v{r}/runc.amd64` | `runc.sha256sum` (one line per asset) |
//! | CNI plugins | `v{n}/cni-plugins-linux-amd64-v{n}.tgz` | `…tgz.sha256` (`hex  name`) |

use super::bundle::layout;

/// Official bases, used when `install {}` names no mirror.
pub const KUBERNETES_BASE: &str = "https://dl.k8s.io/release";
/// Where containerd's release assets are published.
pub const CONTAINERD_BASE: &str = "https://github.com/containerd/containerd/releases/download";
/// Where runc's release assets are published.
pub const RUNC_BASE: &str = "https://github.com/opencontainers/runc/releases/download";
/// Where the CNI plugins' release assets are published.
pub const CNI_PLUGINS_BASE: &str = "https://github.com/containernetworking/plugins/releases/download";

/// Default pinned versions of the node runtime (the Kubernetes version is
/// the cluster's `version`).
pub const CONTAINERD_VERSION: &str = "2.1.4";
/// The runc version installed unless `install {}` names another.
pub const RUNC_VERSION: &str = "1.3.0";
/// The CNI plugins version installed unless `install {}` names another.
pub const CNI_PLUGINS_VERSION: &str = "1.7.1";

/// Where the artifacts come from: one base URL and version per upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseSources {
    /// `v1.36.3` (with the `v`).
    pub kubernetes_version: String,
    /// Base URL of the Kubernetes binaries (dl.k8s.io or a mirror of its layout).
    pub kubernetes_base: String,
    /// containerd version, e.g. `2.1.4` (a leading `v` is accepted).
    pub containerd_version: String,
    /// Base URL of containerd's releases or a mirror of their layout.
    pub containerd_base: String,
    /// runc version, e.g. `1.3.0` (a leading `v` is accepted).
    pub runc_version: String,
    /// Base URL of runc's releases or a mirror of their layout.
    pub runc_base: String,
    /// CNI plugins version, e.g. `1.7.1` (a leading `v` is accepted).
    pub cni_plugins_version: String,
    /// Base URL of the CNI plugins' releases or a mirror of their layout.
    pub cni_plugins_base: String,
}

/// What to do with an artifact once its checksum holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unpack {
    /// The file itself, at this node-layout path.
    As(String),
    /// A gzip'd tar: its regular files under `strip` (a directory inside the
    /// archive, `""` for the top) go flat into this node-layout directory.
    TarGz {
        /// The directory inside the archive whose files are taken.
        strip: String,
        /// The node-layout directory they are written to.
        into: String,
    },
}

/// Which release an artifact comes from (each has its own base URL and
/// version setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Kubernetes' own binaries (kubeadm, kubelet, kubectl).
    Kubernetes,
    /// containerd's release tarball.
    Containerd,
    /// runc's binary.
    Runc,
    /// The CNI plugins' tarball.
    CniPlugins,
    /// k3s's binary.
    K3s,
}

/// One file of a release to fetch and check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// For messages: "kubeadm", "containerd", …
    pub name: String,
    /// The release it belongs to.
    pub release: Release,
    /// Where to download the artifact.
    pub url: String,
    /// The published checksum file.
    pub checksum_url: String,
    /// The artifact's file name as the checksum file lists it.
    pub file_name: String,
    /// Where its contents go on the node.
    pub unpack: Unpack,
}

fn join(base: &str, rest: &str) -> String {
    format!("{}/{rest}", base.trim_end_matches('/'))
}

fn with_v(v: &str) -> String {
    if v.starts_with('v') {
        v.to_owned()
    } else {
        format!("v{v}")
    }
}

fn bare(v: &str) -> &str {
    v.strip_prefix('v').unwrap_or(v)
}

/// Every artifact a node needs, in the order they are fetched.
pub fn artifacts(s: &ReleaseSources) -> Vec<Artifact> {
    let mut out = Vec::new();
    let kv = with_v(&s.kubernetes_version);
    for bin in ["kubeadm", "kubelet", "kubectl"] {
        let url = join(&s.kubernetes_base, &format!("{kv}/bin/linux/amd64/{bin}"));
        out.push(Artifact {
            name: bin.to_owned(),
            release: Release::Kubernetes,
            checksum_url: format!("{url}.sha256"),
            url,
            file_name: bin.to_owned(),
            unpack: Unpack::As(format!("{}/{bin}", layout::KUBE_BIN)),
        });
    }
    let cv = bare(&s.containerd_version);
    let file = format!("containerd-{cv}-linux-amd64.tar.gz");
    let url = join(&s.containerd_base, &format!("v{cv}/{file}"));
    out.push(Artifact {
        name: "containerd".to_owned(),
        release: Release::Containerd,
        checksum_url: format!("{url}.sha256sum"),
        url,
        file_name: file,
        unpack: Unpack::TarGz {
            strip: "bin".to_owned(),
            into: layout::CONTAINERD_BIN.to_owned(),
        },
    });
    let rv = bare(&s.runc_version);
    out.push(Artifact {
        name: "runc".to_owned(),
        release: Release::Runc,
        url: join(&s.runc_base, &format!("v{rv}/runc.amd64")),
        checksum_url: join(&s.runc_base, &format!("v{rv}/runc.sha256sum")),
        file_name: "runc.amd64".to_owned(),
        unpack: Unpack::As(layout::RUNC.to_owned()),
    });
    let nv = bare(&s.cni_plugins_version);
    let file = format!("cni-plugins-linux-amd64-v{nv}.tgz");
    let url = join(&s.cni_plugins_base, &format!("v{nv}/{file}"));
    out.push(Artifact {
        name: "CNI plugins".to_owned(),
        release: Release::CniPlugins,
        checksum_url: format!("{url}.sha256"),
        url,
        file_name: file,
        unpack: Unpack::TarGz {
            strip: String::new(),
            into: layout::CNI_BIN.to_owned(),
        },
    });
    out
}

/// The SHA-256 (lowercase hex) a published checksum file gives for
/// `file_name`: either the bare hex (dl.k8s.io's `.sha256`) or
/// `sha256sum` lines (`hex  name`, `hex *name`, `hex  ./name`).
///
/// # Errors
/// What is wrong with the document, for a message.
pub fn checksum_for(doc: &str, file_name: &str) -> Result<String, String> {
    let is_hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let lines: Vec<&str> = doc.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if let [only] = lines.as_slice()
        && is_hex(only)
    {
        return Ok(only.to_ascii_lowercase());
    }
    for line in &lines {
        let mut parts = line.split_whitespace();
        let (Some(hash), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        let name = name.trim_start_matches('*').trim_start_matches("./");
        let name = name.rsplit('/').next().unwrap_or(name);
        if name == file_name {
            return if is_hex(hash) {
                Ok(hash.to_ascii_lowercase())
            } else {
                Err(format!("the line for {file_name} does not start with a SHA-256"))
            };
        }
    }
    Err(format!(
        "it holds no SHA-256 for {file_name} (neither a bare hex digest nor a `<sha256>  {file_name}` line)"
    ))
}

/// The node-layout path of a file unpacked from an archive, or `None` to
/// skip it (outside `strip`, in a subdirectory, or an unsafe name).
pub fn unpacked_path(entry: &str, strip: &str, into: &str) -> Option<String> {
    let entry = entry.trim_start_matches("./");
    let rest = if strip.is_empty() {
        entry
    } else {
        entry.strip_prefix(strip)?.strip_prefix('/')?
    };
    let ok = !rest.is_empty()
        && !rest.contains('/')
        && rest != "."
        && rest != ".."
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'));
    ok.then(|| format!("{into}/{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(base: &str) -> ReleaseSources {
        ReleaseSources {
            kubernetes_version: "v1.36.3".into(),
            kubernetes_base: KUBERNETES_BASE.into(),
            containerd_version: "2.1.4".into(),
            containerd_base: format!("{base}/containerd/"),
            runc_version: "v1.3.0".into(),
            runc_base: RUNC_BASE.into(),
            cni_plugins_version: "1.7.1".into(),
            cni_plugins_base: CNI_PLUGINS_BASE.into(),
        }
    }

    #[test]
    fn urls_follow_the_official_layouts() {
        let a = artifacts(&sources("http://mirror.local"));
        let urls: Vec<(&str, &str)> = a.iter().map(|a| (a.url.as_str(), a.checksum_url.as_str())).collect();
        assert_eq!(
            urls,
            [
                (
                    "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubeadm",
                    "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubeadm.sha256"
                ),
                (
                    "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet",
                    "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet.sha256"
                ),
                (
                    "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubectl",
                    "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubectl.sha256"
                ),
                (
                    "http://mirror.local/containerd/v2.1.4/containerd-2.1.4-linux-amd64.tar.gz",
                    "http://mirror.local/containerd/v2.1.4/containerd-2.1.4-linux-amd64.tar.gz.sha256sum"
                ),
                (
                    "https://github.com/opencontainers/runc/releases/download/v1.3.0/runc.amd64",
                    "https://github.com/opencontainers/runc/releases/download/v1.3.0/runc.sha256sum"
                ),
                (
                    "https://github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz",
                    "https://github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz.sha256"
                ),
            ]
        );
        assert_eq!(a[0].unpack, Unpack::As("kubernetes/bin/linux/amd64/kubeadm".into()));
        assert_eq!(a[4].unpack, Unpack::As("runc/runc.amd64".into()));
    }

    #[test]
    fn checksum_files_of_every_shape() {
        let h = "25EE342E82C9A491BBD63753C0C2F2542E9CFF38AC08FF8995791AB4915CF442";
        let lower = h.to_ascii_lowercase();
        assert_eq!(
            checksum_for(&format!("{h}\n"), "kubeadm").as_deref(),
            Ok(lower.as_str())
        );
        let runc = format!(
            "{}  runc.arm64\n{lower}  runc.amd64\n{}  libseccomp-2.5.5.tar.gz\n",
            "0".repeat(64),
            "1".repeat(64)
        );
        assert_eq!(checksum_for(&runc, "runc.amd64").as_deref(), Ok(lower.as_str()));
        assert_eq!(
            checksum_for(&format!("{lower} *./cni.tgz\n"), "cni.tgz").as_deref(),
            Ok(lower.as_str())
        );
        let e = checksum_for(&runc, "runc.s390x").unwrap_err();
        assert!(e.contains("no SHA-256 for runc.s390x"), "{e}");
        assert!(checksum_for("<html>404</html>", "kubeadm").is_err());
        assert!(checksum_for("abc  kubeadm", "kubeadm").is_err());
    }

    #[test]
    fn only_flat_safe_names_are_unpacked() {
        assert_eq!(
            unpacked_path("bin/ctr", "bin", "containerd/bin").as_deref(),
            Some("containerd/bin/ctr")
        );
        assert_eq!(
            unpacked_path("./bridge", "", "cni/bin").as_deref(),
            Some("cni/bin/bridge")
        );
        assert_eq!(unpacked_path("./", "", "cni/bin"), None);
        assert_eq!(unpacked_path("bin/../../etc/passwd", "bin", "x"), None);
        assert_eq!(unpacked_path("etc/crictl.yaml", "bin", "x"), None);
        assert_eq!(unpacked_path("bin/sub/ctr", "bin", "x"), None);
        assert_eq!(unpacked_path("bin/a b", "bin", "x"), None);
    }
}
