//! The provider server in framework terms: one method per tfplugin6 RPC,
//! taking and returning raw values (msgpack/JSON bytes) so the wire layer in
//! `plugin/` stays a thin decode → call → encode adapter. The rules the CLI
//! enforces (exact plans, no unknowns after apply, computed-only config
//! rejected, ...) live here.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::diagnostics::Diagnostics;
use super::path::AttributePath;
use super::resource::{DataSource, EphemeralResource, Provider, ProviderData, Resource};
use super::schema::Schema;

/// A `DynamicValue`: msgpack, or JSON when msgpack is empty. Answers are
/// always msgpack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawValue {
    pub msgpack: Vec<u8>,
    pub json: Vec<u8>,
}

/// A `RawState` as UpgradeResourceState receives it.
#[derive(Clone, Debug, Default)]
pub struct RawState {
    pub json: Vec<u8>,
    pub flatmap: BTreeMap<String, String>,
}

/// What the client says it can do (from `ClientCapabilities`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientCapabilities {
    pub deferral_allowed: bool,
    pub write_only_attributes_allowed: bool,
}

/// GetProviderSchema's answer.
#[derive(Clone, Debug, Default)]
pub struct SchemasResponse {
    pub provider: Schema,
    pub resources: BTreeMap<String, Schema>,
    pub data_sources: BTreeMap<String, Schema>,
    pub ephemeral_resources: BTreeMap<String, Schema>,
    pub diagnostics: Diagnostics,
}

/// GetMetadata's answer: type names only.
#[derive(Clone, Debug, Default)]
pub struct MetadataResponse {
    pub resources: Vec<String>,
    pub data_sources: Vec<String>,
    pub ephemeral_resources: Vec<String>,
    pub diagnostics: Diagnostics,
}

/// ReadResource.
#[derive(Clone, Debug, Default)]
pub struct ReadResourceRequest {
    pub type_name: String,
    pub current_state: RawValue,
    pub private: Vec<u8>,
    pub provider_meta: RawValue,
    pub client: ClientCapabilities,
}

/// ReadResource's answer; a null `new_state` means the object is gone.
#[derive(Clone, Debug, Default)]
pub struct ReadResourceResponse {
    pub new_state: RawValue,
    pub private: Vec<u8>,
    pub diagnostics: Diagnostics,
}

/// PlanResourceChange.
#[derive(Clone, Debug, Default)]
pub struct PlanResourceChangeRequest {
    pub type_name: String,
    pub prior_state: RawValue,
    pub proposed_new_state: RawValue,
    pub config: RawValue,
    pub prior_private: Vec<u8>,
    pub provider_meta: RawValue,
    pub client: ClientCapabilities,
}

/// PlanResourceChange's answer.
#[derive(Clone, Debug, Default)]
pub struct PlanResourceChangeResponse {
    pub planned_state: RawValue,
    pub requires_replace: Vec<AttributePath>,
    pub planned_private: Vec<u8>,
    pub diagnostics: Diagnostics,
}

/// ApplyResourceChange.
#[derive(Clone, Debug, Default)]
pub struct ApplyResourceChangeRequest {
    pub type_name: String,
    pub prior_state: RawValue,
    pub planned_state: RawValue,
    pub config: RawValue,
    pub planned_private: Vec<u8>,
    pub provider_meta: RawValue,
}

/// ApplyResourceChange's answer.
#[derive(Clone, Debug, Default)]
pub struct ApplyResourceChangeResponse {
    pub new_state: RawValue,
    pub private: Vec<u8>,
    pub diagnostics: Diagnostics,
}

/// One object produced by ImportResourceState.
#[derive(Clone, Debug, Default)]
pub struct ImportedResource {
    pub type_name: String,
    pub state: RawValue,
    pub private: Vec<u8>,
}

/// ImportResourceState's answer.
#[derive(Clone, Debug, Default)]
pub struct ImportResourceStateResponse {
    pub imported: Vec<ImportedResource>,
    pub diagnostics: Diagnostics,
}

/// OpenEphemeralResource's answer.
#[derive(Clone, Debug, Default)]
pub struct OpenEphemeralResourceResponse {
    pub result: RawValue,
    pub private: Option<Vec<u8>>,
    pub renew_at: Option<time::OffsetDateTime>,
    pub diagnostics: Diagnostics,
}

/// RenewEphemeralResource's answer.
#[derive(Clone, Debug, Default)]
pub struct RenewEphemeralResourceResponse {
    pub private: Option<Vec<u8>>,
    pub renew_at: Option<time::OffsetDateTime>,
    pub diagnostics: Diagnostics,
}

/// Serves one provider: owns its resources, the configured provider data and
/// the stop signal.
pub struct ProviderServer {
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) resources: BTreeMap<&'static str, Arc<dyn Resource>>,
    pub(crate) data_sources: BTreeMap<&'static str, Arc<dyn DataSource>>,
    pub(crate) ephemeral: BTreeMap<&'static str, Arc<dyn EphemeralResource>>,
    pub(crate) provider_data: std::sync::RwLock<Option<ProviderData>>,
    pub(crate) write_only_supported: std::sync::atomic::AtomicBool,
    pub(crate) stop: std::sync::Mutex<CancellationToken>,
}

impl ProviderServer {
    /// A server for `provider`.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        let resources = provider.resources().into_iter().map(|r| (r.type_name(), r)).collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|r| (r.type_name(), r))
            .collect();
        let ephemeral = provider
            .ephemeral_resources()
            .into_iter()
            .map(|r| (r.type_name(), r))
            .collect();
        ProviderServer {
            provider,
            resources,
            data_sources,
            ephemeral,
            provider_data: std::sync::RwLock::new(None),
            write_only_supported: std::sync::atomic::AtomicBool::new(false),
            stop: std::sync::Mutex::new(CancellationToken::new()),
        }
    }

    /// StopProvider: cancel every in-flight operation. Later calls get a
    /// fresh token, as the CLI may keep using the provider afterwards.
    pub fn stop(&self) {
        let mut guard = self.stop.lock().unwrap_or_else(|p| p.into_inner());
        guard.cancel();
        *guard = CancellationToken::new();
    }
}
