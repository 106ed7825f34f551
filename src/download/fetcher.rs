//! The HTTP side: one client per provider process, checksum files read
//! with a size limit, artifacts streamed to disk while hashed, retried on
//! network and server errors, stopped by Ctrl-C.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::DownloadError;

/// Attempts per URL for transient failures (network, 429, 5xx).
const ATTEMPTS: u32 = 4;
/// A checksum file is a few lines; anything bigger is not one.
const CHECKSUM_FILE_LIMIT: u64 = 64 * 1024;

/// Fetches into a cache directory of files named by their SHA-256.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    cache: PathBuf,
}

impl Fetcher {
    /// A fetcher caching under `cache` (created on first use).
    ///
    /// # Errors
    /// [`DownloadError::Network`] when the TLS client cannot be built.
    pub fn new(cache: PathBuf) -> Result<Fetcher, DownloadError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("terraform-provider-selfhost/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DownloadError::Network {
                url: String::new(),
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Fetcher { client, cache })
    }

    /// `$XDG_CACHE_HOME/terraform-provider-selfhost/downloads`, else under
    /// `$HOME/.cache`, else the temporary directory.
    pub fn default_cache_dir() -> PathBuf {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })
            .unwrap_or_else(std::env::temp_dir);
        base.join("terraform-provider-selfhost").join("downloads")
    }

    /// The cache directory.
    pub fn cache(&self) -> &Path {
        &self.cache
    }

    /// The text of a (small) checksum file.
    ///
    /// # Errors
    /// Status, network, size or cancellation errors naming `url`.
    pub async fn checksum_file(&self, url: &str, cancel: &CancellationToken) -> Result<String, DownloadError> {
        retry(url, cancel, || async {
            let mut resp = self.get(url).await?;
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| network(url, &e))? {
                body.extend_from_slice(&chunk);
                if body.len() as u64 > CHECKSUM_FILE_LIMIT {
                    return Err(DownloadError::TooLarge {
                        url: url.to_owned(),
                        limit: CHECKSUM_FILE_LIMIT,
                    });
                }
            }
            String::from_utf8(body).map_err(|_| DownloadError::ChecksumFile {
                url: url.to_owned(),
                detail: "not text".to_owned(),
            })
        })
        .await
    }

    /// The file at `url`, whose SHA-256 must be `sha256` (lowercase hex, as
    /// `checksum_url` publishes it): from the cache when it holds those
    /// bytes, else downloaded, hashed while written, and kept only if the
    /// digest matches.
    ///
    /// # Errors
    /// [`DownloadError::Checksum`] for other bytes (nothing is kept), or
    /// status, network, I/O and cancellation errors.
    pub async fn verified(
        &self,
        url: &str,
        checksum_url: &str,
        sha256: &str,
        cancel: &CancellationToken,
    ) -> Result<PathBuf, DownloadError> {
        let target = self.cache.join(sha256);
        if target.is_file() && hash_file(&target).await? == sha256 {
            return Ok(target);
        }
        tokio::fs::create_dir_all(&self.cache)
            .await
            .map_err(|e| DownloadError::io(&self.cache, e))?;
        let got = retry(url, cancel, || self.download(url, &target, sha256)).await?;
        if got != sha256 {
            return Err(DownloadError::Checksum {
                url: url.to_owned(),
                checksum_url: checksum_url.to_owned(),
                expected: sha256.to_owned(),
                got,
            });
        }
        Ok(target)
    }

    /// Stream `url` to a temporary file next to `target`; rename it to
    /// `target` when its digest is `expected`. Returns the digest.
    async fn download(&self, url: &str, target: &Path, expected: &str) -> Result<String, DownloadError> {
        let mut resp = self.get(url).await?;
        let tmp = tempfile::Builder::new()
            .prefix(".part-")
            .tempfile_in(&self.cache)
            .map_err(|e| DownloadError::io(&self.cache, e))?;
        let (std_file, tmp_path) = tmp.into_parts();
        let mut file = tokio::fs::File::from_std(std_file);
        let mut hasher = Sha256::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| network(url, &e))? {
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| DownloadError::io(&*tmp_path, e))?;
        }
        file.flush().await.map_err(|e| DownloadError::io(&*tmp_path, e))?;
        drop(file);
        let got = hex::encode(hasher.finalize());
        if got == expected {
            tmp_path.persist(target).map_err(|e| DownloadError::io(target, e))?;
        }
        Ok(got)
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, DownloadError> {
        let resp = self.client.get(url).send().await.map_err(|e| network(url, &e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(DownloadError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        Ok(resp)
    }
}

fn network(url: &str, e: &reqwest::Error) -> DownloadError {
    // The chain says why (DNS, refused, TLS); the top line alone often
    // says only "error sending request".
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    DownloadError::Network {
        url: url.to_owned(),
        detail,
    }
}

async fn hash_file(path: &Path) -> Result<String, DownloadError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || sha256_file(&path).map_err(|e| DownloadError::io(&path, e)))
        .await
        .map_err(|e| DownloadError::io("(hashing task)", e))?
}

/// The SHA-256 (lowercase hex) of a file, read in 64 KiB blocks.
///
/// # Errors
/// The read error.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// `op` up to [`ATTEMPTS`] times while it fails transiently, 1 s, 2 s, 4 s
/// apart; Ctrl-C stops it at once.
async fn retry<T, F, Fut>(url: &str, cancel: &CancellationToken, mut op: F) -> Result<T, DownloadError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DownloadError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(DownloadError::Cancelled { url: url.to_owned() }),
            r = op() => r,
        };
        match r {
            Err(e) if e.transient() && attempt < ATTEMPTS => {
                let wait = Duration::from_secs(1 << (attempt - 1));
                tracing::warn!(url, attempt, "download failed ({e}); retrying in {}s", wait.as_secs());
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Err(DownloadError::Cancelled { url: url.to_owned() }),
                    () = tokio::time::sleep(wait) => {}
                }
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A real HTTP/1.1 server on loopback: `/good` and `/evil` answer with
    /// bodies, anything else 404. Counts requests.
    async fn server() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let path = req.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let (status, body) = match path.as_str() {
                        "/good" => ("200 OK", "hello".to_owned()),
                        "/evil" => ("200 OK", "hellO".to_owned()),
                        "/big.sha256" => ("200 OK", "0".repeat(100_000)),
                        _ => ("404 Not Found", String::new()),
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        (base, hits)
    }

    #[tokio::test]
    async fn verified_downloads_are_cached_by_digest_and_bad_bytes_are_refused() {
        let (base, hits) = server().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let f = Fetcher::new(dir.path().join("dl")).expect("fetcher");
        let cancel = CancellationToken::new();
        let sha = hex::encode(Sha256::digest(b"hello"));

        let p = f
            .verified(&format!("{base}/good"), "x.sha256", &sha, &cancel)
            .await
            .expect("good bytes");
        assert_eq!(std::fs::read(&p).expect("read"), b"hello");
        let n = hits.load(Ordering::SeqCst);
        f.verified(&format!("{base}/good"), "x.sha256", &sha, &cancel)
            .await
            .expect("cached");
        assert_eq!(hits.load(Ordering::SeqCst), n, "a cached file is not fetched again");

        std::fs::remove_file(&p).expect("rm");
        let e = f
            .verified(&format!("{base}/evil"), "x.sha256", &sha, &cancel)
            .await
            .expect_err("other bytes");
        assert!(matches!(e, DownloadError::Checksum { .. }), "{e}");
        assert!(e.to_string().contains(&sha), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("dl")).expect("ls").collect();
        assert!(left.is_empty(), "refused bytes are not kept: {left:?}");

        let e = f
            .verified(&format!("{base}/missing"), "x", &sha, &cancel)
            .await
            .expect_err("404");
        assert!(matches!(e, DownloadError::Status { status: 404, .. }), "{e}");
        let e = f
            .checksum_file(&format!("{base}/big.sha256"), &cancel)
            .await
            .expect_err("too large");
        assert!(matches!(e, DownloadError::TooLarge { .. }), "{e}");
    }

    #[tokio::test]
    async fn ctrl_c_stops_a_download_at_once_and_network_errors_are_transient() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let f = Fetcher::new(tempfile::tempdir().expect("tmp").path().join("dl")).expect("fetcher");
        let cancel = CancellationToken::new();
        cancel.cancel();
        let e = f
            .checksum_file(&format!("http://127.0.0.1:{port}/x.sha256"), &cancel)
            .await
            .expect_err("cancelled");
        assert!(matches!(e, DownloadError::Cancelled { .. }), "{e}");
        assert!(
            DownloadError::Network {
                url: String::new(),
                detail: String::new()
            }
            .transient()
        );
    }
}
