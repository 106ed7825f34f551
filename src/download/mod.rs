//! Fetching release artifacts on the machine running Terraform, for
//! `install { source = "download" }`: every file is checked against its
//! published SHA-256 before anything uses it, and kept in a cache keyed by
//! that digest, so a second apply (or a second cluster) downloads nothing.
//! What to fetch is decided in `crate::cluster::release`; this is the I/O.

mod error;
mod fetcher;
mod unpack;

pub use error::DownloadError;
pub use fetcher::{Fetcher, sha256_file};
pub use unpack::{UnpackedFile, unpack_tar_gz};
