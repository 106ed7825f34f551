//! What can go wrong fetching an artifact, each naming the URL.

use std::path::PathBuf;

/// Why an artifact (a release binary, an archive, its checksum file) could
/// not be fetched or installed; every variant names the URL or path.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server answered with an error status.
    #[error("{url}: the server answered HTTP {status}")]
    Status {
        /// The URL fetched (the artifact's, or its checksum file's).
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The connection or the transfer failed.
    #[error("{url}: {detail}")]
    Network {
        /// The URL fetched (the artifact's, or its checksum file's).
        url: String,
        /// What the HTTP client reported.
        detail: String,
    },
    /// The downloaded file's SHA-256 differs from the published one.
    #[error(
        "{url}: SHA-256 mismatch: {checksum_url} publishes {expected}, the file downloaded has {got}. Nothing was installed; check the mirror (install.*_url) or the version"
    )]
    Checksum {
        /// The URL fetched (the artifact's, or its checksum file's).
        url: String,
        /// Where the expected digest was published.
        checksum_url: String,
        /// The published digest (hex).
        expected: String,
        /// The digest of the bytes downloaded (hex).
        got: String,
    },
    /// The checksum file is not text, or lists no digest for the artifact.
    #[error("{url}: unusable checksum file: {detail}")]
    ChecksumFile {
        /// The URL fetched (the artifact's, or its checksum file's).
        url: String,
        /// What was wrong with the checksum file.
        detail: String,
    },
    /// A checksum file is larger than its limit; reading it stopped there.
    #[error("{url}: larger than {limit} bytes")]
    TooLarge {
        /// The URL fetched (the artifact's, or its checksum file's).
        url: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A local file operation failed: the cache, or reading or unpacking an archive.
    #[error("{}: {detail}", path.display())]
    Io {
        /// The local file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        detail: String,
    },
    /// Stopped by StopProvider (Ctrl-C) or the operation's `timeouts {}`.
    #[error("{url}: cancelled")]
    Cancelled {
        /// The URL fetched (the artifact's, or its checksum file's).
        url: String,
    },
}

impl DownloadError {
    /// A [`DownloadError::Io`] for `path` from any displayable error.
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
