//! One accepted connection from the CLI: TLS over the unix socket, or the
//! bare socket when plaintext was explicitly asked for.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

/// A connection tonic serves.
pub enum PluginConn {
    /// Mutual TLS (the normal case).
    Tls(Box<TlsStream<UnixStream>>),
    /// No TLS (`--insecure-plaintext` only).
    Plain(UnixStream),
}

impl PluginConn {
    /// The ALPN protocol agreed in the TLS handshake.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match self {
            PluginConn::Tls(s) => s.get_ref().1.alpn_protocol(),
            PluginConn::Plain(_) => None,
        }
    }
}

impl Connected for PluginConn {
    // The peer is always the CLI that started us; nothing to report.
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for PluginConn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PluginConn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            PluginConn::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PluginConn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PluginConn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            PluginConn::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PluginConn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            PluginConn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            PluginConn::Tls(s) => s.is_write_vectored(),
            PluginConn::Plain(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PluginConn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            PluginConn::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PluginConn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            PluginConn::Plain(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
