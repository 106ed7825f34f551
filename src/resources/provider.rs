//! The `selfhost` provider: its configuration and the types it offers.

use std::sync::Arc;

use async_trait::async_trait;

use super::agent::Agent;
use super::backup_schedule::BackupSchedule;
use super::connection::{SshDefaults, provider_ssh_block};
use super::gateway_token::{GatewayToken, GatewayTokenEphemeral};
use super::host_facts::HostFacts;
use super::k8s_cluster::K8sCluster;
use super::network_policy::NetworkPolicy;
use super::state::ProviderState;
use super::vps_host::VpsHost;
use crate::framework::resource::{Context, DataSource, EphemeralResource, Provider, ProviderData, Resource};
use crate::framework::typed::from_value;
use crate::framework::{Block, Diagnostics, Schema, Value};

/// The provider.
pub struct SelfhostProvider;

/// The provider's configuration.
#[derive(serde::Deserialize)]
struct ProviderConfig {
    ssh: Option<SshDefaults>,
}

#[async_trait]
impl Provider for SelfhostProvider {
    fn type_name(&self) -> &'static str {
        "selfhost"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new()
                .description(
                    "Declares a self-hosted platform: hosts prepared over SSH, a Kubernetes cluster and its workloads.",
                )
                .block(provider_ssh_block()),
        )
    }

    async fn configure(&self, _ctx: &Context, config: Value) -> (Option<ProviderData>, Diagnostics) {
        let mut diags = Diagnostics::new();
        let ssh_defaults = match from_value::<ProviderConfig>(&config) {
            Ok(c) => c.ssh.unwrap_or_default(),
            Err(e) => {
                diags.error(
                    "Unreadable provider configuration",
                    format!("{e}. This is a bug in the provider; please report it."),
                );
                return (None, diags);
            }
        };
        let state: ProviderData = Arc::new(ProviderState {
            ssh_defaults,
            ssh_pool: crate::ssh::Pool::new(),
            kube_clients: crate::kube::Clients::new(),
        });
        (Some(state), diags)
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![
            Arc::new(GatewayToken),
            Arc::new(VpsHost),
            Arc::new(K8sCluster),
            Arc::new(Agent),
            Arc::new(NetworkPolicy),
            Arc::new(BackupSchedule),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        vec![Arc::new(HostFacts)]
    }

    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>> {
        vec![Arc::new(GatewayTokenEphemeral)]
    }
}

/// The provider instance the binary serves.
pub fn provider() -> Arc<dyn Provider> {
    Arc::new(SelfhostProvider)
}
