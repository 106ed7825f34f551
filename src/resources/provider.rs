//! The `selfhost` provider: its configuration and the types it offers.

use std::sync::Arc;

use async_trait::async_trait;

use super::gateway_token::{GatewayToken, GatewayTokenEphemeral};
use crate::framework::resource::{Context, DataSource, EphemeralResource, Provider, ProviderData, Resource};
use crate::framework::{Block, Diagnostics, Schema, Value};

/// The provider.
pub struct SelfhostProvider;

#[async_trait]
impl Provider for SelfhostProvider {
    fn type_name(&self) -> &'static str {
        "selfhost"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new().description(
                "Declares a self-hosted platform: hosts prepared over SSH, a Kubernetes cluster and its workloads.",
            ),
        )
    }

    async fn configure(&self, _ctx: &Context, _config: Value) -> (Option<ProviderData>, Diagnostics) {
        (None, Diagnostics::new())
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![Arc::new(GatewayToken)]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        Vec::new()
    }

    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>> {
        vec![Arc::new(GatewayTokenEphemeral)]
    }
}

/// The provider instance the binary serves.
pub fn provider() -> Arc<dyn Provider> {
    Arc::new(SelfhostProvider)
}
