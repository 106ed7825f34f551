//! What can go wrong fetching an artifact, each naming the URL.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {detail}")]
    Network { url: String, detail: String },
    #[error(
        "{url}: SHA-256 mismatch: {checksum_url} publishes {expected}, the file downloaded has {got}. Nothing was installed; check the mirror (install.*_url) or the version"
    )]
    Checksum {
        url: String,
        checksum_url: String,
        expected: String,
        got: String,
    },
    #[error("{url}: unusable checksum file: {detail}")]
    ChecksumFile { url: String, detail: String },
    #[error("{url}: larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{}: {detail}", path.display())]
    Io { path: PathBuf, detail: String },
    #[error("{url}: cancelled")]
    Cancelled { url: String },
}

impl DownloadError {
    pub fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        DownloadError::Io {
            path: path.into(),
            detail: e.to_string(),
        }
    }

    /// Worth another attempt: the network or the server failed, not the
    /// request or the content.
    pub(super) fn transient(&self) -> bool {
        match self {
            DownloadError::Network { .. } => true,
            DownloadError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
