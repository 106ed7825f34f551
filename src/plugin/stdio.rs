//! `plugin.GRPCStdio`: go-plugin mirrors a plugin's stdout/stderr to the CLI
//! through this stream. We never write to stdout after the handshake and log
//! to stderr directly (the CLI reads stderr itself), so the stream carries
//! nothing; it stays open until shutdown so the client does not warn.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::proto::plugin::StdioData;
use super::proto::plugin::grpc_stdio_server::GrpcStdio;

/// An always-empty stdio stream that ends at shutdown.
pub struct Stdio {
    shutdown: CancellationToken,
}

impl Stdio {
    /// A stdio service whose streams end when `shutdown` is cancelled, so
    /// they do not hold up graceful shutdown.
    pub fn new(shutdown: CancellationToken) -> Self {
        Stdio { shutdown }
    }
}

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    type StreamStdioStream = Pin<Box<dyn Stream<Item = Result<StdioData, Status>> + Send + 'static>>;

    async fn stream_stdio(&self, _request: Request<()>) -> Result<Response<Self::StreamStdioStream>, Status> {
        let shutdown = self.shutdown.clone().cancelled_owned();
        let empty = futures_util::stream::once(shutdown).filter_map(|()| async { None });
        Ok(Response::new(Box::pin(empty)))
    }
}
