//! What every resource gets from the configured provider: a leaf module,
//! so resources depend on it and the provider (which lists them) does not
//! become their dependency.

use std::sync::Arc;

use super::connection::SshDefaults;
use crate::framework::resource::Context;

/// What `configure` hands to every resource: the configured defaults and
/// the clients shared by all resources of this provider process.
pub struct ProviderState {
    pub ssh_defaults: SshDefaults,
    /// One SSH connection per host for this provider process.
    pub ssh_pool: crate::ssh::Pool,
    /// One Kubernetes client per distinct kubeconfig for this provider process.
    pub kube_clients: crate::kube::Clients,
}

/// The provider state a resource was configured with; `None` when the CLI
/// did not configure the provider (validation-only calls).
pub fn provider_state(ctx: &Context) -> Option<Arc<ProviderState>> {
    ctx.provider_data.clone()?.downcast::<ProviderState>().ok()
}

/// The provider's shared Kubernetes clients; a fresh cache when the provider
/// was not configured (unit tests, validation-only calls).
pub fn kube_clients(ctx: &Context) -> crate::kube::Clients {
    provider_state(ctx).map_or_else(crate::kube::Clients::new, |s| s.kube_clients.clone())
}
