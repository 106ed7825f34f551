//! `plugin.GRPCController`: the CLI asks the plugin to shut down (it does so
//! when it is done with the provider, then kills us after ~2 s).

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::proto::plugin::Empty;
use super::proto::plugin::grpc_controller_server::GrpcController;

/// Cancels the server's shutdown token on `Shutdown`.
pub struct Controller {
    shutdown: CancellationToken,
}

impl Controller {
    /// A controller that cancels `shutdown`.
    pub fn new(shutdown: CancellationToken) -> Self {
        Controller { shutdown }
    }
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::debug!("GRPCController.Shutdown: shutting down");
        self.shutdown.cancel();
        Ok(Response::new(Empty {}))
    }
}
