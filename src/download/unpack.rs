//! Unpacking a verified release tarball (containerd, the CNI plugins) into
//! a directory named by its digest, written once and then reused.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::DownloadError;
use crate::cluster::release::unpacked_path;

/// A file taken out of an archive: where it goes in the node layout, where
/// it is on this machine, and its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnpackedFile {
    /// Where the file goes in the node layout.
    pub node_path: String,
    /// Where the unpacked file is on this machine.
    pub local: PathBuf,
    /// Its SHA-256 (hex), checked again on the node.
    pub sha256: String,
}

/// The regular files of the gzip'd tar `archive` under `strip`, into
/// `dest` (created here; an existing `dest` was complete: it is renamed
/// into place only at the end). Names outside `strip`, in subdirectories
/// or not plain are skipped, so an archive cannot write outside `dest`.
///
/// # Errors
/// [`DownloadError::Io`] for an unreadable archive or a write failure.
pub fn unpack_tar_gz(archive: &Path, strip: &str, into: &str, dest: &Path) -> Result<Vec<UnpackedFile>, DownloadError> {
    if !dest.is_dir() {
        let parent = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| DownloadError::io(parent, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".unpack-")
            .tempdir_in(parent)
            .map_err(|e| DownloadError::io(parent, e))?;
        let file = std::fs::File::open(archive).map_err(|e| DownloadError::io(archive, e))?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let entries = tar.entries().map_err(|e| DownloadError::io(archive, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| DownloadError::io(archive, e))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()
                .map_err(|e| DownloadError::io(archive, e))?
                .to_string_lossy()
                .into_owned();
            let Some(rel) = unpacked_path(&name, strip, into) else {
                continue;
            };
            let Some(file_name) = rel.rsplit('/').next() else {
                continue;
            };
            let out = tmp.path().join(file_name);
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| DownloadError::io(archive, e))?;
            std::fs::write(&out, bytes).map_err(|e| DownloadError::io(&out, e))?;
        }
        let tmp = tmp.keep();
        if let Err(e) = std::fs::rename(&tmp, dest) {
            // Another process unpacked it meanwhile: theirs is as good.
            let _ = std::fs::remove_dir_all(&tmp);
            if !dest.is_dir() {
                return Err(DownloadError::io(dest, e));
            }
        }
    }
    let mut out = Vec::new();
    let listing = std::fs::read_dir(dest).map_err(|e| DownloadError::io(dest, e))?;
    for entry in listing {
        let entry = entry.map_err(|e| DownloadError::io(dest, e))?;
        let local = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let sha256 = super::sha256_file(&local).map_err(|e| DownloadError::io(&local, e))?;
        out.push(UnpackedFile {
            node_path: format!("{into}/{name}"),
            local,
            sha256,
        });
    }
    out.sort_by(|a, b| a.node_path.cmp(&b.node_path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    fn tarball(dir: &Path, entries: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("a.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).expect("create"),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            b.append_data(&mut h, name, *data).expect("append");
        }
        b.into_inner().expect("tar").finish().expect("gz");
        path
    }

    #[test]
    fn unpacks_only_the_flat_files_under_strip() {
        let d = tempfile::tempdir().expect("tempdir");
        let a = tarball(
            d.path(),
            &[
                ("bin/ctr", b"ctr"),
                ("bin/containerd", b"cd"),
                ("etc/x.conf", b"x"),
                ("bin/sub/y", b"y"),
            ],
        );
        let dest = d.path().join("out");
        let files = unpack_tar_gz(&a, "bin", "containerd/bin", &dest).expect("unpack");
        let paths: Vec<&str> = files.iter().map(|f| f.node_path.as_str()).collect();
        assert_eq!(paths, ["containerd/bin/containerd", "containerd/bin/ctr"]);
        assert_eq!(files[1].sha256, hex::encode(Sha256::digest(b"ctr")));
        // A second call reuses the directory.
        std::fs::remove_file(&a).expect("rm");
        assert_eq!(unpack_tar_gz(&a, "bin", "containerd/bin", &dest).expect("again"), files);
    }
}
