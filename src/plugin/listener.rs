//! The unix socket the CLI connects to, in a private temporary directory,
//! and the stream of accepted connections (TLS-handshaken when TLS is on).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::conn::PluginConn;

/// Environment variable naming where go-plugin puts its socket directory.
pub const SOCKET_DIR_KEY: &str = "PLUGIN_UNIX_SOCKET_DIR";

/// A client that opens the socket but does not finish the TLS handshake in
/// this time is dropped, so it cannot hold a task forever.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound socket in its own directory; the directory (0700, so only our
/// user can connect) is removed when this is dropped.
pub struct PluginListener {
    dir: tempfile::TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl PluginListener {
    /// Binds `plugin.sock` in a new directory under `base` (the system
    /// temporary directory when `None`).
    ///
    /// # Errors
    /// When the directory cannot be created or the socket bound.
    pub fn bind(base: Option<&Path>) -> io::Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("plugin");
        let dir = match base {
            Some(b) => builder.tempdir_in(b)?,
            None => builder.tempdir()?,
        };
        let path = dir.path().join("plugin.sock");
        let listener = UnixListener::bind(&path)?;
        Ok(PluginListener { dir, path, listener })
    }

    /// The socket path for the handshake line.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections until `shutdown`, handshaking TLS when `tls` is
    /// set. Refused handshakes (a wrong or missing client certificate) are
    /// logged and dropped; they never reach tonic. Keep the returned guard
    /// alive while serving: dropping it removes the socket directory.
    pub fn incoming(
        self,
        tls: Option<Arc<rustls::ServerConfig>>,
        shutdown: CancellationToken,
    ) -> (ReceiverStream<io::Result<PluginConn>>, tempfile::TempDir) {
        let (tx, rx) = mpsc::channel(16);
        let listener = self.listener;
        let acceptor = tls.map(TlsAcceptor::from);
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    () = shutdown.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            tracing::warn!(error = %e, "accepting a plugin connection failed");
                            // E.g. out of file descriptors: back off instead of
                            // spinning and flooding the CLI's log.
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let Some(acceptor) = acceptor.clone() else {
                    if tx.send(Ok(PluginConn::Plain(stream))).await.is_err() {
                        break;
                    }
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(Ok(PluginConn::Tls(Box::new(tls)))).await;
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "refused a plugin connection: TLS handshake failed"),
                        Err(_) => tracing::warn!("refused a plugin connection: TLS handshake timed out"),
                    }
                });
            }
        });
        (ReceiverStream::new(rx), self.dir)
    }
}
