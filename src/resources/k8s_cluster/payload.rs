//! What a node gets installed, in the bundle's node layout, whichever
//! `install.source` it came from: the air-gapped bundle's files, or the
//! official release artifacts fetched and checked on this machine (plus
//! the units and the flannel manifest this provider ships). Assembled
//! before anything runs on a host, so a bad bundle or a wrong checksum
//! stops the apply with every host untouched.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::model::{ClusterConfig, Cni, Distro, InstallModel};
use super::node::error;
use crate::cluster::bundle::{self, BundleFile, layout};
use crate::cluster::release::{self, ReleaseSources, Unpack};
use crate::cluster::{ClusterSpec, cni, k3s};
use crate::download::{DownloadError, Fetcher, sha256_file, unpack_tar_gz};
use crate::framework::{AttributePath, Diagnostic};

/// The units as the official packages install them, and flannel's release
/// manifest (`Documentation/kube-flannel.yml` of flannel v0.28.10).
const KUBELET_UNIT: &str = include_str!("../../cluster/assets/kubelet.service");
const KUBEADM_DROP_IN: &str = include_str!("../../cluster/assets/10-kubeadm.conf");
const CONTAINERD_UNIT: &str = include_str!("../../cluster/assets/containerd.service");
const FLANNEL_RELEASE_MANIFEST: &str = include_str!("../../cluster/assets/kube-flannel-v0.28.10.yml");

/// Where a payload file's bytes are on this machine.
#[derive(Clone, Debug)]
pub enum Bytes {
    File(PathBuf),
    Embedded(&'static str),
}

/// One file for the node: its node-layout path, SHA-256 and bytes.
#[derive(Clone, Debug)]
pub struct PayloadFile {
    pub path: String,
    pub sha256: String,
    pub bytes: Bytes,
}

impl PayloadFile {
    fn embedded(path: &str, text: &'static str) -> PayloadFile {
        PayloadFile {
            path: path.to_owned(),
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            bytes: Bytes::Embedded(text),
        }
    }

    /// Its size, for the progress line.
    pub fn len(&self) -> u64 {
        match &self.bytes {
            Bytes::File(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Bytes::Embedded(t) => t.len() as u64,
        }
    }
}

/// Everything to install on a node.
#[derive(Clone, Debug)]
pub struct Payload {
    pub files: Vec<PayloadFile>,
    /// The sandbox image, when the images came as archives (else kubeadm
    /// on the node says which).
    pub pause_image: Option<String>,
}

fn install_path(attr: &str) -> AttributePath {
    AttributePath::root("install").attr(attr)
}

impl Payload {
    /// The payload for `install {}`: the bundle's files, or the release
    /// artifacts downloaded and checked (`cancel` stops a download).
    pub async fn assemble(config: &ClusterConfig, cancel: &CancellationToken) -> Result<Payload, Diagnostic> {
        let install = config.install();
        let version = &config.version;
        match (install.source.as_deref(), config.distro()) {
            (Some("bundle"), distro) => {
                Payload::from_bundle(install.bundle.as_deref().unwrap_or_default(), version, distro)
            }
            (_, Distro::Kubeadm) => Payload::download(&install, version, cancel).await,
            (_, Distro::K3s) => Payload::download_k3s(&install, &config.k3s_release(), cancel).await,
        }
    }

    /// Read the bundle's index files and check it holds `version` (and,
    /// for k3s, a k3s binary).
    pub fn from_bundle(dir: &str, version: &str, distro: Distro) -> Result<Payload, Diagnostic> {
        let dir = PathBuf::from(dir);
        let bad = |m: String| error("Unusable bundle", m, Some(install_path("bundle")));
        let read = |rel: &str| {
            std::fs::read_to_string(dir.join(rel))
                .map_err(|e| bad(format!("{}: cannot read {rel}: {e}.", dir.display())))
        };
        let manifest: serde_json::Value = serde_json::from_str(&read(layout::MANIFEST)?)
            .map_err(|e| bad(format!("{}: {} is not JSON: {e}.", dir.display(), layout::MANIFEST)))?;
        let held = manifest.get("kubernetes").and_then(|v| v.as_str()).unwrap_or("");
        if held != version {
            return Err(bad(format!(
                "{}: the bundle holds Kubernetes {held:?}, but `version` is {version:?}.",
                dir.display()
            )));
        }
        let needs = match distro {
            Distro::Kubeadm => bundle::kubeadm_node_needs,
            Distro::K3s => bundle::k3s_node_needs,
        };
        let files = bundle::node_files(&read(layout::SHA256SUMS)?, needs)
            .map_err(|m| bad(format!("{}: {m}.", dir.display())))?;
        if distro == Distro::K3s && !files.iter().any(|f| f.path == layout::K3S) {
            return Err(bad(format!(
                "{}: the bundle has no {} (its SHA256SUMS does not list one); distribution = \"k3s\" needs it.",
                dir.display(),
                layout::K3S
            )));
        }
        let pause_image = bundle::pause_image(&read(layout::IMAGE_LIST)?).ok_or_else(|| {
            bad(format!(
                "{}: {} lists no pause image.",
                dir.display(),
                layout::IMAGE_LIST
            ))
        })?;
        Ok(Payload {
            files: files
                .into_iter()
                .map(|BundleFile { path, sha256 }| PayloadFile {
                    bytes: Bytes::File(dir.join(&path)),
                    path,
                    sha256,
                })
                .collect(),
            pause_image: Some(pause_image),
        })
    }

    /// Fetch every release artifact, check each against its published
    /// SHA-256, unpack the tarballs; add the units, and the image archives
    /// of `install.image_archives` if set.
    pub async fn download(
        install: &InstallModel,
        version: &str,
        cancel: &CancellationToken,
    ) -> Result<Payload, Diagnostic> {
        let pick = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_owned());
        let sources = ReleaseSources {
            kubernetes_version: version.to_owned(),
            kubernetes_base: pick(&install.base_url, release::KUBERNETES_BASE),
            containerd_version: pick(&install.containerd_version, release::CONTAINERD_VERSION),
            containerd_base: pick(&install.containerd_url, release::CONTAINERD_BASE),
            runc_version: pick(&install.runc_version, release::RUNC_VERSION),
            runc_base: pick(&install.runc_url, release::RUNC_BASE),
            cni_plugins_version: pick(&install.cni_plugins_version, release::CNI_PLUGINS_VERSION),
            cni_plugins_base: pick(&install.cni_plugins_url, release::CNI_PLUGINS_BASE),
        };
        let fetcher = Fetcher::new(Fetcher::default_cache_dir()).map_err(|e| download_error(&e, "source"))?;
        let mut files = Vec::new();
        for a in release::artifacts(&sources) {
            files.extend(fetch(&fetcher, &a, cancel).await?);
        }
        files.push(PayloadFile::embedded(layout::KUBELET_UNIT, KUBELET_UNIT));
        files.push(PayloadFile::embedded(layout::KUBEADM_DROP_IN, KUBEADM_DROP_IN));
        files.push(PayloadFile::embedded(layout::CONTAINERD_UNIT, CONTAINERD_UNIT));
        let pause_image = match &install.image_archives {
            Some(dir) => {
                let (images, pause) = archives_of(dir).await?;
                files.extend(images);
                pause
            }
            None => {
                files.push(PayloadFile::embedded(layout::IMAGE_LIST, ""));
                None
            }
        };
        Ok(Payload { files, pause_image })
    }

    /// Fetch the k3s binary of `k3s_release`, checked against the
    /// release's `sha256sum-amd64.txt`, and add `install.image_archives`.
    pub async fn download_k3s(
        install: &InstallModel,
        k3s_release: &str,
        cancel: &CancellationToken,
    ) -> Result<Payload, Diagnostic> {
        let base = install.k3s_url.as_deref().unwrap_or(k3s::RELEASE_BASE);
        let artifact = release::Artifact {
            name: "k3s".to_owned(),
            release: release::Release::K3s,
            url: k3s::release_url(base, k3s_release, "k3s"),
            checksum_url: k3s::release_url(base, k3s_release, k3s::RELEASE_SUMS),
            file_name: "k3s".to_owned(),
            unpack: Unpack::As(layout::K3S.to_owned()),
        };
        let fetcher = Fetcher::new(Fetcher::default_cache_dir()).map_err(|e| download_error(&e, "k3s_url"))?;
        let mut files = fetch(&fetcher, &artifact, cancel).await?;
        if let Some(dir) = &install.image_archives {
            files.extend(archives_of(dir).await?.0);
        }
        Ok(Payload {
            files,
            pause_image: None,
        })
    }

    /// The node's `SHA256SUMS`: exactly the files it gets.
    pub fn sums(&self) -> String {
        self.files
            .iter()
            .map(|f| format!("{}  {}\n", f.sha256, f.path))
            .collect()
    }
}

/// The CNI manifest for `spec`, `None` for `cni = "none"`: flannel from
/// the bundle (`manifests/kube-flannel.yml`), or flannel's release manifest
/// this provider ships, its network set to the pod CIDR.
pub fn cni_manifest(install: &InstallModel, cni: Cni, spec: &ClusterSpec) -> Result<Option<String>, Diagnostic> {
    match cni {
        Cni::None => Ok(None),
        Cni::Flannel => {
            let manifest = match (install.source.as_deref(), &install.bundle) {
                (Some("bundle"), Some(dir)) => {
                    let path = Path::new(dir).join(layout::FLANNEL_MANIFEST);
                    std::fs::read_to_string(&path).map_err(|e| {
                        error(
                            "Unusable bundle",
                            format!("{}: {e}.", path.display()),
                            Some(install_path("bundle")),
                        )
                    })?
                }
                _ => FLANNEL_RELEASE_MANIFEST.to_owned(),
            };
            cni::flannel_manifest(&manifest, &spec.pod_cidr).map(Some).map_err(|m| {
                error(
                    "Unusable flannel manifest",
                    format!("{m}."),
                    Some(AttributePath::root("cni")),
                )
            })
        }
    }
}

/// Fetch one release artifact, checked against its published checksum
/// (unpacked when it is a tarball): the payload files it makes.
async fn fetch(
    fetcher: &Fetcher,
    a: &release::Artifact,
    cancel: &CancellationToken,
) -> Result<Vec<PayloadFile>, Diagnostic> {
    let attr = artifact_attr(a.release);
    let doc = fetcher
        .checksum_file(&a.checksum_url, cancel)
        .await
        .map_err(|e| download_error(&e, attr))?;
    let sha = release::checksum_for(&doc, &a.file_name).map_err(|m| {
        download_error(
            &DownloadError::ChecksumFile {
                url: a.checksum_url.clone(),
                detail: m,
            },
            attr,
        )
    })?;
    tracing::info!(url = %a.url, sha256 = %sha, "fetching {} (checked against {})", a.name, a.checksum_url);
    let local = fetcher
        .verified(&a.url, &a.checksum_url, &sha, cancel)
        .await
        .map_err(|e| download_error(&e, attr))?;
    match &a.unpack {
        Unpack::As(path) => Ok(vec![PayloadFile {
            path: path.clone(),
            sha256: sha,
            bytes: Bytes::File(local),
        }]),
        Unpack::TarGz { strip, into } => {
            let (strip, into) = (strip.clone(), into.clone());
            let dest = fetcher.cache().join("unpacked").join(&sha);
            let unpacked = tokio::task::spawn_blocking(move || unpack_tar_gz(&local, &strip, &into, &dest))
                .await
                .map_err(|e| download_error(&DownloadError::io("(unpacking task)", e), attr))?
                .map_err(|e| download_error(&e, attr))?;
            if unpacked.is_empty() {
                return Err(error(
                    "Unusable release archive",
                    format!(
                        "{}: the archive holds no files where the release layout puts them.",
                        a.url
                    ),
                    Some(install_path(attr)),
                ));
            }
            Ok(unpacked
                .into_iter()
                .map(|u| PayloadFile {
                    path: u.node_path,
                    sha256: u.sha256,
                    bytes: Bytes::File(u.local),
                })
                .collect())
        }
    }
}

/// The `install` attribute a download failure points at: the URL setting
/// of the artifact's release.
fn artifact_attr(release: release::Release) -> &'static str {
    match release {
        release::Release::Kubernetes => "base_url",
        release::Release::Containerd => "containerd_url",
        release::Release::Runc => "runc_url",
        release::Release::CniPlugins => "cni_plugins_url",
        release::Release::K3s => "k3s_url",
    }
}

fn download_error(e: &DownloadError, attr: &str) -> Diagnostic {
    let summary = match e {
        DownloadError::Checksum { .. } => "Checksum mismatch: download refused",
        DownloadError::ChecksumFile { .. } => "Unusable checksum file",
        DownloadError::Cancelled { .. } => "Download cancelled",
        _ => "Download failed",
    };
    error(summary, format!("{e}."), Some(install_path(attr)))
}

/// [`image_archives`] off the async threads (it hashes every archive).
async fn archives_of(dir: &str) -> Result<(Vec<PayloadFile>, Option<String>), Diagnostic> {
    let dir = PathBuf::from(dir);
    tokio::task::spawn_blocking(move || image_archives(&dir))
        .await
        .map_err(|e| {
            error(
                "Unusable image archives",
                e.to_string(),
                Some(install_path("image_archives")),
            )
        })?
}

/// The archives `images.txt` in `dir` lists (`reference<TAB>file…`), with
/// their digests, and the pause image among them.
fn image_archives(dir: &Path) -> Result<(Vec<PayloadFile>, Option<String>), Diagnostic> {
    let bad = |m: String| {
        error(
            "Unusable image archives",
            format!("{}: {m}.", dir.display()),
            Some(install_path("image_archives")),
        )
    };
    let list_path = dir.join("images.txt");
    let list = std::fs::read_to_string(&list_path).map_err(|e| bad(format!("cannot read images.txt: {e}")))?;
    let mut files = Vec::new();
    for line in list.lines().filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split('\t');
        let (Some(_reference), Some(file)) = (cols.next(), cols.next()) else {
            return Err(bad(format!("images.txt line {line:?} is not `reference<TAB>file`")));
        };
        let plain = !file.is_empty()
            && file
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'));
        if !plain || file.starts_with('.') {
            return Err(bad(format!(
                "images.txt names {file:?}, not a plain file name in the directory"
            )));
        }
        let local = dir.join(file);
        let sha256 = sha256_file(&local).map_err(|e| bad(format!("{file}: {e}")))?;
        files.push(PayloadFile {
            path: format!("{}/{file}", layout::IMAGES),
            sha256,
            bytes: Bytes::File(local),
        });
    }
    files.push(PayloadFile {
        path: layout::IMAGE_LIST.to_owned(),
        sha256: hex::encode(Sha256::digest(list.as_bytes())),
        bytes: Bytes::File(list_path),
    });
    Ok((files, bundle::pause_image(&list)))
}
