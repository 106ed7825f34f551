//! The traits a provider author implements: a small core (schema + CRUD) with
//! capabilities (import, plan modification, state upgrade) opted into by
//! overriding the default methods.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::diagnostics::Diagnostics;
use super::private::PrivateState;
use super::schema::Schema;
use super::value::Value;

/// Data a provider's `configure` hands to its resources (clients, defaults).
pub type ProviderData = Arc<dyn Any + Send + Sync>;

/// What every resource call gets besides its request.
#[derive(Clone)]
pub struct Context {
    /// Cancelled by StopProvider (Ctrl-C) and by the operation's timeout.
    pub cancel: CancellationToken,
    /// What the provider's `configure` returned, if it was called.
    pub provider_data: Option<ProviderData>,
    /// The client can take write-only attributes (protocol 6.8+ clients say so).
    pub write_only_supported: bool,
}

/// Create or update: the configuration and the planned new state.
pub struct ApplyRequest {
    /// The configuration as written, fully known at apply time.
    pub config: Value,
    /// Planned state; computed attributes may be unknown.
    pub planned: Value,
    /// Prior state (`Null` on create).
    pub prior: Value,
    /// Private data stored with the prior state (or handed over by the plan).
    pub private: PrivateState,
}

/// The new state after create/update. On failure part-way, `state` still
/// carries what now exists so Terraform records it.
#[derive(Default)]
pub struct ApplyResponse {
    /// The object's state as it now exists; null when nothing was created.
    pub state: Value,
    /// Private data to store with the new state.
    pub private: PrivateState,
    /// Errors and warnings for the CLI to show.
    pub diagnostics: Diagnostics,
}

/// Read: refresh prior state from the real world.
pub struct ReadRequest {
    /// The state Terraform holds, to be refreshed.
    pub state: Value,
    /// Private data stored with that state.
    pub private: PrivateState,
}

/// `state` is `Null` when the object is gone.
#[derive(Default)]
pub struct ReadResponse {
    /// The refreshed state.
    pub state: Value,
    /// Private data to store with the refreshed state.
    pub private: PrivateState,
    /// Errors and warnings for the CLI to show.
    pub diagnostics: Diagnostics,
}

/// Resource-level plan adjustment, after the attribute modifiers ran.
pub struct ModifyPlanRequest {
    /// The configuration as written; values from other resources may be unknown.
    pub config: Value,
    /// Prior state (`Null` on create).
    pub prior: Value,
    /// Private data stored with the prior state.
    pub prior_private: PrivateState,
}

/// Changes a resource may make to the plan.
pub struct ModifyPlanResponse {
    /// The planned new state, which the resource may change (e.g. mark attributes unknown).
    pub planned: Value,
    /// Attributes whose change forces the object to be destroyed and created again.
    pub requires_replace: Vec<super::path::AttributePath>,
    /// Private data to hand to apply with this plan.
    pub private: PrivateState,
    /// Errors and warnings for the CLI to show.
    pub diagnostics: Diagnostics,
}

/// An imported object: a partial state that Read then completes.
#[derive(Default)]
pub struct ImportResponse {
    /// The partial state built from the import id.
    pub state: Value,
    /// Private data to store with the imported state (e.g. an "imported" marker).
    pub private: PrivateState,
    /// Errors and warnings for the CLI to show.
    pub diagnostics: Diagnostics,
}

/// A managed resource type.
#[async_trait]
pub trait Resource: Send + Sync + 'static {
    /// The full type name, e.g. `selfhost_gateway_token`.
    fn type_name(&self) -> &'static str;
    /// The schema; its version drives state upgrades.
    fn schema(&self) -> Schema;

    /// Checks beyond the attribute validators (cross-attribute rules).
    async fn validate(&self, _ctx: &Context, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Adjust the plan after defaults and attribute plan modifiers.
    async fn modify_plan(&self, _ctx: &Context, _req: &ModifyPlanRequest, _resp: &mut ModifyPlanResponse) {}

    /// Create the object described by the plan; on failure part-way, return what exists.
    async fn create(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse;
    /// Refresh the state from the real world; a null state means the object is gone.
    async fn read(&self, ctx: &Context, req: ReadRequest) -> ReadResponse;
    /// Bring the object from its prior state to the planned one.
    async fn update(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse;
    /// Delete; an object already gone is success.
    async fn delete(&self, ctx: &Context, state: Value, private: PrivateState) -> Diagnostics;

    /// Import by the user's id; the default refuses with a clear message.
    async fn import(&self, _ctx: &Context, _id: &str) -> ImportResponse {
        let mut r = ImportResponse::default();
        r.diagnostics.error(
            "Import not supported",
            format!("The resource type {} cannot be imported.", self.type_name()),
        );
        r
    }

    /// Upgrade the JSON of a state written at an older (or unknown)
    /// `version` to the current schema version; the server calls this only
    /// when the versions differ. The default refuses with a clear message.
    fn upgrade_state(&self, version: i64, _state: serde_json::Value) -> Result<serde_json::Value, Diagnostics> {
        Err(unsupported_state_version(
            self.type_name(),
            version,
            self.schema().version,
        ))
    }
}

/// The error of a state written at a schema `version` a resource cannot
/// upgrade from (a newer provider's, or one it no longer reads): what
/// [`Resource::upgrade_state`] returns for versions it does not handle.
pub fn unsupported_state_version(type_name: &str, version: i64, current: i64) -> Diagnostics {
    let mut d = Diagnostics::new();
    d.error(
        "Unsupported state version",
        format!(
            "The state of this {type_name} was written at schema version {version}, but this provider knows only version {current}. Use the provider version that wrote it, or remove the object from state and import it again."
        ),
    );
    d
}

/// A data source type.
#[async_trait]
pub trait DataSource: Send + Sync + 'static {
    /// The full type name, e.g. `selfhost_host_facts`.
    fn type_name(&self) -> &'static str;
    /// The schema of the data source's configuration and results.
    fn schema(&self) -> Schema;
    /// Checks beyond the attribute validators (cross-attribute rules).
    async fn validate(&self, _ctx: &Context, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }
    /// Read with the configuration; returns the full object.
    async fn read(&self, ctx: &Context, config: Value) -> (Value, Diagnostics);
}

/// The result of opening an ephemeral resource.
#[derive(Default)]
pub struct OpenResponse {
    /// The opened value, handed to the configuration that references it.
    pub result: Value,
    /// Private bytes the CLI passes back to renew and close.
    pub private: Vec<u8>,
    /// When the CLI should renew the value; `None` means never.
    pub renew_at: Option<time::OffsetDateTime>,
    /// Errors and warnings for the CLI to show.
    pub diagnostics: Diagnostics,
}

/// An ephemeral resource type (protocol 6.7): never stored in state.
#[async_trait]
pub trait EphemeralResource: Send + Sync + 'static {
    /// The full type name, e.g. `selfhost_gateway_token`.
    fn type_name(&self) -> &'static str;
    /// The schema of the ephemeral resource's configuration and result.
    fn schema(&self) -> Schema;
    /// Checks beyond the attribute validators (cross-attribute rules).
    async fn validate(&self, _ctx: &Context, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }
    /// Produce the value for this run, from the configuration.
    async fn open(&self, ctx: &Context, config: Value) -> OpenResponse;
    /// Extend the value's lifetime; returns new private bytes and the next renewal time.
    async fn renew(&self, _ctx: &Context, _private: Vec<u8>) -> (Vec<u8>, Option<time::OffsetDateTime>, Diagnostics) {
        (Vec::new(), None, Diagnostics::new())
    }
    /// Release the value at the end of the run (revoke, delete); the default does nothing.
    async fn close(&self, _ctx: &Context, _private: Vec<u8>) -> Diagnostics {
        Diagnostics::new()
    }
}

/// The provider itself: its configuration and the types it offers.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The provider type name, e.g. `selfhost`.
    fn type_name(&self) -> &'static str;
    /// The schema of the `provider` block.
    fn schema(&self) -> Schema;
    /// Checks beyond the attribute validators (cross-attribute rules).
    async fn validate(&self, _ctx: &Context, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }
    /// Configure clients from the provider block; returns data for resources.
    async fn configure(&self, ctx: &Context, config: Value) -> (Option<ProviderData>, Diagnostics);
    /// The managed resource types this provider offers.
    fn resources(&self) -> Vec<Arc<dyn Resource>>;
    /// The data source types this provider offers.
    fn data_sources(&self) -> Vec<Arc<dyn DataSource>>;
    /// The ephemeral resource types this provider offers.
    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>>;
}
