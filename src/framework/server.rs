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
    /// The value in msgpack encoding; empty when the CLI sent JSON instead.
    pub msgpack: Vec<u8>,
    /// The value as JSON, used only when `msgpack` is empty.
    pub json: Vec<u8>,
}

/// A `RawState` as UpgradeResourceState receives it.
#[derive(Clone, Debug, Default)]
pub struct RawState {
    /// The stored state as JSON, as written by any earlier schema version of the resource.
    pub json: Vec<u8>,
    /// The state in Terraform 0.11's flatmap form; this provider rejects it and asks for a re-import.
    pub flatmap: BTreeMap<String, String>,
}

/// What the client says it can do (from `ClientCapabilities`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientCapabilities {
    /// Whether the CLI accepts a deferred answer instead of a plan or read.
    pub deferral_allowed: bool,
    /// Whether the CLI supports write-only attributes, which are never stored in state.
    pub write_only_attributes_allowed: bool,
}

/// GetProviderSchema's answer.
#[derive(Clone, Debug, Default)]
pub struct SchemasResponse {
    /// The schema of the `provider` block.
    pub provider: Schema,
    /// Each managed resource's schema, by type name (`selfhost_vps_host`, ...).
    pub resources: BTreeMap<String, Schema>,
    /// Each data source's schema, by type name.
    pub data_sources: BTreeMap<String, Schema>,
    /// Each ephemeral resource's schema, by type name.
    pub ephemeral_resources: BTreeMap<String, Schema>,
    /// Errors and warnings raised while building the schemas.
    pub diagnostics: Diagnostics,
}

/// GetMetadata's answer: type names only.
#[derive(Clone, Debug, Default)]
pub struct MetadataResponse {
    /// Type names of the managed resources this provider serves.
    pub resources: Vec<String>,
    /// Type names of the data sources this provider serves.
    pub data_sources: Vec<String>,
    /// Type names of the ephemeral resources this provider serves.
    pub ephemeral_resources: Vec<String>,
    /// Errors and warnings raised while listing the types.
    pub diagnostics: Diagnostics,
}

/// ReadResource.
#[derive(Clone, Debug, Default)]
pub struct ReadResourceRequest {
    /// Resource type to read, e.g. `selfhost_vps_host`.
    pub type_name: String,
    /// The state Terraform holds for the object, to be refreshed against reality.
    pub current_state: RawValue,
    /// Provider-private bytes stored with that state by an earlier plan or apply.
    pub private: Vec<u8>,
    /// The module's `provider_meta` block for this provider (null when absent).
    pub provider_meta: RawValue,
    /// What the calling CLI supports.
    pub client: ClientCapabilities,
}

/// ReadResource's answer; a null `new_state` means the object is gone.
#[derive(Clone, Debug, Default)]
pub struct ReadResourceResponse {
    /// The refreshed state; null when the object no longer exists.
    pub new_state: RawValue,
    /// Provider-private bytes to store with the refreshed state.
    pub private: Vec<u8>,
    /// Errors and warnings for the CLI to show.
    pub diagnostics: Diagnostics,
}

/// PlanResourceChange.
#[derive(Clone, Debug, Default)]
pub struct PlanResourceChangeRequest {
    /// Resource type being planned.
    pub type_name: String,
    /// The state before the change; null when the object is to be created.
    pub prior_state: RawValue,
    /// Terraform's proposal: the configuration merged with the prior state; null on destroy.
    pub proposed_new_state: RawValue,
    /// The configuration as written, with unknowns where values come from other resources.
    pub config: RawValue,
    /// Provider-private bytes stored with the prior state.
    pub prior_private: Vec<u8>,
    /// The module's `provider_meta` block for this provider (null when absent).
    pub provider_meta: RawValue,
    /// What the calling CLI supports.
    pub client: ClientCapabilities,
}

/// PlanResourceChange's answer.
#[derive(Clone, Debug, Default)]
pub struct PlanResourceChangeResponse {
    /// The planned new state; apply must end in exactly these known values.
    pub planned_state: RawValue,
    /// Attributes whose change forces the object to be destroyed and created again.
    pub requires_replace: Vec<AttributePath>,
    /// Provider-private bytes handed back to apply with this plan.
    pub planned_private: Vec<u8>,
    /// Errors and warnings for the CLI to show.
    pub diagnostics: Diagnostics,
}

/// ApplyResourceChange.
#[derive(Clone, Debug, Default)]
pub struct ApplyResourceChangeRequest {
    /// Resource type being applied.
    pub type_name: String,
    /// The state before the change; null when the object is being created.
    pub prior_state: RawValue,
    /// The state planned earlier; null when the object is being destroyed.
    pub planned_state: RawValue,
    /// The configuration as written, fully known at apply time.
    pub config: RawValue,
    /// Provider-private bytes returned by the plan.
    pub planned_private: Vec<u8>,
    /// The module's `provider_meta` block for this provider (null when absent).
    pub provider_meta: RawValue,
}

/// ApplyResourceChange's answer.
#[derive(Clone, Debug, Default)]
pub struct ApplyResourceChangeResponse {
    /// The state after apply; null after a destroy.
    pub new_state: RawValue,
    /// Provider-private bytes to store with the new state.
    pub private: Vec<u8>,
    /// Errors and warnings for the CLI to show.
    pub diagnostics: Diagnostics,
}

/// One object produced by ImportResourceState.
#[derive(Clone, Debug, Default)]
pub struct ImportedResource {
    /// Resource type of the imported object.
    pub type_name: String,
    /// The imported state; may be partial until ReadResource completes it.
    pub state: RawValue,
    /// Provider-private bytes to store with the imported state.
    pub private: Vec<u8>,
}

/// ImportResourceState's answer.
#[derive(Clone, Debug, Default)]
pub struct ImportResourceStateResponse {
    /// The objects the import produced, each to be refreshed by ReadResource.
    pub imported: Vec<ImportedResource>,
    /// Errors and warnings for the CLI to show.
    pub diagnostics: Diagnostics,
}

/// OpenEphemeralResource's answer.
#[derive(Clone, Debug, Default)]
pub struct OpenEphemeralResourceResponse {
    /// The opened ephemeral value (e.g. the gateway token), never written to state.
    pub result: RawValue,
    /// Provider-private bytes passed back to renew and close, if any.
    pub private: Option<Vec<u8>>,
    /// When the CLI should call RenewEphemeralResource; `None` means never.
    pub renew_at: Option<time::OffsetDateTime>,
    /// Errors and warnings for the CLI to show.
    pub diagnostics: Diagnostics,
}

/// RenewEphemeralResource's answer.
#[derive(Clone, Debug, Default)]
pub struct RenewEphemeralResourceResponse {
    /// Replacement provider-private bytes, if the renewal changed them.
    pub private: Option<Vec<u8>>,
    /// When to renew again; `None` means no further renewal.
    pub renew_at: Option<time::OffsetDateTime>,
    /// Errors and warnings for the CLI to show.
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
    pub(crate) provider_schema: Schema,
    pub(crate) resource_schemas: BTreeMap<&'static str, Schema>,
    pub(crate) data_source_schemas: BTreeMap<&'static str, Schema>,
    pub(crate) ephemeral_schemas: BTreeMap<&'static str, Schema>,
    /// Schema mistakes found at start-up, reported with the schemas.
    pub(crate) schema_problems: Vec<(String, Vec<String>)>,
}

impl ProviderServer {
    /// A server for `provider`; schemas are built once and checked here.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        let resources: BTreeMap<&'static str, Arc<dyn Resource>> =
            provider.resources().into_iter().map(|r| (r.type_name(), r)).collect();
        let data_sources: BTreeMap<&'static str, Arc<dyn DataSource>> = provider
            .data_sources()
            .into_iter()
            .map(|r| (r.type_name(), r))
            .collect();
        let ephemeral: BTreeMap<&'static str, Arc<dyn EphemeralResource>> = provider
            .ephemeral_resources()
            .into_iter()
            .map(|r| (r.type_name(), r))
            .collect();
        let provider_schema = provider.schema();
        let resource_schemas: BTreeMap<_, _> = resources.iter().map(|(k, r)| (*k, r.schema())).collect();
        let data_source_schemas: BTreeMap<_, _> = data_sources.iter().map(|(k, r)| (*k, r.schema())).collect();
        let ephemeral_schemas: BTreeMap<_, _> = ephemeral.iter().map(|(k, r)| (*k, r.schema())).collect();
        let mut schema_problems = vec![("provider".to_owned(), provider_schema.check())];
        for (k, s) in resource_schemas
            .iter()
            .chain(&data_source_schemas)
            .chain(&ephemeral_schemas)
        {
            schema_problems.push((k.to_string(), s.check()));
        }
        schema_problems.retain(|(_, p)| !p.is_empty());
        ProviderServer {
            provider,
            resources,
            data_sources,
            ephemeral,
            provider_data: std::sync::RwLock::new(None),
            write_only_supported: std::sync::atomic::AtomicBool::new(false),
            stop: std::sync::Mutex::new(CancellationToken::new()),
            provider_schema,
            resource_schemas,
            data_source_schemas,
            ephemeral_schemas,
            schema_problems,
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

mod rpc {
    //! One method per RPC: decode → framework/resource call → encode.

    use std::time::Duration;

    use super::*;
    use crate::framework::codec::{json, msgpack};
    use crate::framework::plan::{contradictions, mark_computed_unknown, null_write_only, plan_block};
    use crate::framework::private::PrivateState;
    use crate::framework::resource::{ApplyRequest, Context, ModifyPlanRequest, ModifyPlanResponse, ReadRequest};
    use crate::framework::timeouts::{self, Operation};
    use crate::framework::validate::validate_block;
    use crate::framework::{Type, Value};

    /// A resource type, its schema and the three values of a change.
    type DecodedChange<'a> = (&'a Arc<dyn Resource>, &'a Schema, [Value; 3]);

    /// Decode a DynamicValue: msgpack, else JSON, else null.
    pub(crate) fn decode(raw: &RawValue, ty: &Type, what: &str) -> Result<Value, Diagnostics> {
        let result = if !raw.msgpack.is_empty() {
            msgpack::decode(&raw.msgpack, ty)
        } else if !raw.json.is_empty() {
            json::decode(&raw.json, ty)
        } else {
            return Ok(Value::Null);
        };
        result.map_err(|e| {
            let mut d = Diagnostics::new();
            d.error(
                format!("Unreadable {what}"),
                format!("The provider could not decode the {what} the CLI sent: {e}. This is a bug in the provider or the CLI; please report it."),
            );
            d
        })
    }

    /// Encode a value as msgpack for the CLI.
    pub(crate) fn encode(value: &Value, ty: &Type, diags: &mut Diagnostics) -> RawValue {
        match msgpack::encode(value, ty) {
            Ok(msgpack) => RawValue {
                msgpack,
                json: Vec::new(),
            },
            Err(e) => {
                diags.error(
                    "Provider produced an unencodable value",
                    format!("The provider built a value that does not match its schema: {e}. This is a bug in the provider; please report it."),
                );
                RawValue::default()
            }
        }
    }

    fn unknown_type(kind: &str, name: &str) -> Diagnostics {
        let mut d = Diagnostics::new();
        d.error(
            format!("Unknown {kind} type"),
            format!("This provider has no {kind} type {name:?}. Check the spelling, or upgrade the provider."),
        );
        d
    }

    impl ProviderServer {
        fn context(&self) -> Context {
            let cancel = self.stop.lock().unwrap_or_else(|p| p.into_inner()).child_token();
            Context {
                cancel,
                provider_data: self.provider_data.read().unwrap_or_else(|p| p.into_inner()).clone(),
                write_only_supported: self.write_only_supported.load(std::sync::atomic::Ordering::Relaxed),
            }
        }

        /// Run `fut` with a context whose token is also cancelled after
        /// `limit`; the resource then stops promptly and reports what exists.
        async fn with_deadline<T>(&self, limit: Option<Duration>, f: impl AsyncFnOnce(Context) -> T) -> T {
            let ctx = self.context();
            let timer = limit.map(|d| {
                let token = ctx.cancel.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    tracing::warn!(limit_secs = d.as_secs(), "operation timed out; cancelling");
                    token.cancel();
                })
            });
            let out = f(ctx).await;
            if let Some(t) = timer {
                t.abort();
            }
            out
        }

        fn resource(&self, name: &str) -> Result<(&Arc<dyn Resource>, &Schema), Diagnostics> {
            match (self.resources.get(name), self.resource_schemas.get(name)) {
                (Some(r), Some(s)) => Ok((r, s)),
                _ => Err(unknown_type("resource", name)),
            }
        }

        /// The resource type and the three values of a plan or apply
        /// request (prior, proposed or planned, configuration), decoded.
        fn decode_change(
            &self,
            type_name: &str,
            values: [(&RawValue, &str); 3],
        ) -> Result<DecodedChange<'_>, Diagnostics> {
            let (resource, schema) = self.resource(type_name)?;
            let ty = schema.value_type();
            let [a, b, c] = values;
            Ok((
                resource,
                schema,
                [decode(a.0, &ty, a.1)?, decode(b.0, &ty, b.1)?, decode(c.0, &ty, c.1)?],
            ))
        }

        /// GetProviderSchema.
        pub fn schemas(&self) -> SchemasResponse {
            let mut diagnostics = Diagnostics::new();
            for (kind, problems) in &self.schema_problems {
                for p in problems {
                    diagnostics.error(
                        "Invalid provider schema",
                        format!("{kind}: {p}. This is a bug in the provider."),
                    );
                }
            }
            SchemasResponse {
                provider: self.provider_schema.clone(),
                resources: self
                    .resource_schemas
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                data_sources: self
                    .data_source_schemas
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                ephemeral_resources: self
                    .ephemeral_schemas
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                diagnostics,
            }
        }

        /// GetMetadata.
        pub fn metadata(&self) -> MetadataResponse {
            MetadataResponse {
                resources: self.resources.keys().map(|k| k.to_string()).collect(),
                data_sources: self.data_sources.keys().map(|k| k.to_string()).collect(),
                ephemeral_resources: self.ephemeral.keys().map(|k| k.to_string()).collect(),
                diagnostics: Diagnostics::new(),
            }
        }

        /// ValidateProviderConfig.
        pub async fn validate_provider_config(&self, config: RawValue) -> Diagnostics {
            match checked_config(&self.provider_schema, &config, "provider configuration", true) {
                Ok((config, mut diags)) => {
                    diags.extend(self.provider.validate(&self.context(), &config).await);
                    diags
                }
                Err(d) => d,
            }
        }

        /// ConfigureProvider.
        pub async fn configure_provider(
            &self,
            config: RawValue,
            client: ClientCapabilities,
            terraform_version: String,
        ) -> Diagnostics {
            tracing::info!(terraform_version = %terraform_version, "configuring provider");
            self.write_only_supported.store(
                client.write_only_attributes_allowed,
                std::sync::atomic::Ordering::Relaxed,
            );
            let config = match decode(&config, &self.provider_schema.value_type(), "provider configuration") {
                Ok(v) => v,
                Err(d) => return d,
            };
            let (data, diags) = self.provider.configure(&self.context(), config).await;
            *self.provider_data.write().unwrap_or_else(|p| p.into_inner()) = data;
            diags
        }

        /// ValidateResourceConfig.
        pub async fn validate_resource_config(
            &self,
            type_name: &str,
            config: RawValue,
            client: ClientCapabilities,
        ) -> Diagnostics {
            let (resource, schema) = match self.resource(type_name) {
                Ok(x) => x,
                Err(d) => return d,
            };
            let write_only_ok = client.write_only_attributes_allowed;
            match checked_config(schema, &config, "resource configuration", write_only_ok) {
                Ok((config, mut diags)) => {
                    diags.extend(resource.validate(&self.context(), &config).await);
                    diags
                }
                Err(d) => d,
            }
        }

        /// UpgradeResourceState: called on every state load, even at the
        /// current version. Attributes the schema no longer has are dropped
        /// and new ones start null.
        pub async fn upgrade_resource_state(
            &self,
            type_name: &str,
            version: i64,
            raw: RawState,
        ) -> (Option<RawValue>, Diagnostics) {
            let (resource, schema) = match self.resource(type_name) {
                Ok(x) => x,
                Err(d) => return (None, d),
            };
            let mut diags = Diagnostics::new();
            if raw.json.is_empty() {
                if !raw.flatmap.is_empty() {
                    diags.error(
                        "Legacy state format",
                        "This state was written in the flatmap format of Terraform 0.11, which this provider cannot read. Remove the object from state and import it again.",
                    );
                }
                return (None, diags);
            }
            let json: serde_json::Value = match serde_json::from_slice(&raw.json) {
                Ok(j) => j,
                Err(e) => {
                    diags.error("Unreadable state", format!("The stored state is not valid JSON: {e}."));
                    return (None, diags);
                }
            };
            // The CLI calls this on every state load; only an older version
            // reaches the resource's own upgrade.
            let upgraded = if version == schema.version {
                Ok(json)
            } else {
                resource.upgrade_state(version, json)
            };
            let upgraded = match upgraded {
                Ok(j) => conform_to_block(&schema.block, j),
                Err(d) => return (None, d),
            };
            let bytes = serde_json::to_vec(&upgraded).unwrap_or_default();
            let value = match json::decode(&bytes, &schema.value_type()) {
                Ok(v) => v,
                Err(e) => {
                    diags.error(
                        "Unreadable state",
                        format!("The stored state does not match the schema of {type_name}: {e}. Remove the object from state and import it again."),
                    );
                    return (None, diags);
                }
            };
            let raw = encode(&value, &schema.value_type(), &mut diags);
            (Some(raw), diags)
        }

        /// ReadResource.
        pub async fn read_resource(&self, req: ReadResourceRequest) -> ReadResourceResponse {
            let mut resp = ReadResourceResponse::default();
            let (resource, schema) = match self.resource(&req.type_name) {
                Ok(x) => x,
                Err(d) => {
                    resp.diagnostics = d;
                    return resp;
                }
            };
            let ty = schema.value_type();
            let state = match decode(&req.current_state, &ty, "resource state") {
                Ok(v) => v,
                Err(d) => {
                    resp.diagnostics = d;
                    return resp;
                }
            };
            let limit = timeouts::configured(&state, Operation::Read);
            let private = PrivateState::from_bytes(&req.private);
            let out = self
                .with_deadline(limit, async |ctx| {
                    resource.read(&ctx, ReadRequest { state, private }).await
                })
                .await;
            resp.diagnostics = out.diagnostics;
            resp.new_state = encode(&out.state, &ty, &mut resp.diagnostics);
            resp.private = out.private.to_bytes();
            resp
        }

        /// PlanResourceChange (also called for destroy: we advertise plan_destroy).
        pub async fn plan_resource_change(&self, req: PlanResourceChangeRequest) -> PlanResourceChangeResponse {
            let mut resp = PlanResourceChangeResponse::default();
            let values = [
                (&req.prior_state, "prior state"),
                (&req.proposed_new_state, "proposed new state"),
                (&req.config, "configuration"),
            ];
            let (resource, schema, [prior, proposed, config]) = match self.decode_change(&req.type_name, values) {
                Ok(x) => x,
                Err(d) => {
                    resp.diagnostics = d;
                    return resp;
                }
            };
            let ty = schema.value_type();
            if proposed.is_null() {
                // Destroy: nothing to plan but the null.
                resp.planned_state = encode(&Value::Null, &ty, &mut resp.diagnostics);
                resp.planned_private = req.prior_private;
                return resp;
            }
            tracing::debug!(type_name = %req.type_name, creating = prior.is_null(), "planning");
            let attr_plan = plan_block(&schema.block, &prior, &proposed, &config);
            let mut modify = ModifyPlanResponse {
                planned: attr_plan.planned,
                requires_replace: attr_plan.requires_replace,
                private: PrivateState::from_bytes(&req.prior_private),
                diagnostics: attr_plan.diagnostics,
            };
            let modify_req = ModifyPlanRequest {
                config: config.clone(),
                prior: prior.clone(),
                prior_private: PrivateState::from_bytes(&req.prior_private),
            };
            resource.modify_plan(&self.context(), &modify_req, &mut modify).await;
            if !modify.requires_replace.is_empty() {
                let paths: Vec<String> = modify.requires_replace.iter().map(ToString::to_string).collect();
                tracing::info!(type_name = %req.type_name, requires_replace = ?paths, "plan replaces the object");
                // A replacement is a new object: every computed value is new.
                mark_computed_unknown(&schema.block, &mut modify.planned, &config);
            }
            resp.diagnostics = modify.diagnostics;
            for path in invalid_plan_paths(&schema.block, &config, &modify.planned) {
                resp.diagnostics.attribute_error(
                    path.clone(),
                    "Provider produced an invalid plan",
                    format!("The planned value of {path} does not follow its configuration. This is a bug in the provider; please report it."),
                );
            }
            resp.planned_state = encode(&modify.planned, &ty, &mut resp.diagnostics);
            resp.requires_replace = modify.requires_replace;
            resp.planned_private = modify.private.to_bytes();
            resp
        }

        /// ApplyResourceChange: create, update or delete.
        pub async fn apply_resource_change(&self, req: ApplyResourceChangeRequest) -> ApplyResourceChangeResponse {
            let mut resp = ApplyResourceChangeResponse::default();
            let values = [
                (&req.prior_state, "prior state"),
                (&req.planned_state, "planned state"),
                (&req.config, "configuration"),
            ];
            let (resource, schema, [prior, planned, config]) = match self.decode_change(&req.type_name, values) {
                Ok(x) => x,
                Err(d) => {
                    resp.diagnostics = d;
                    return resp;
                }
            };
            let ty = schema.value_type();
            let private = PrivateState::from_bytes(&req.planned_private);
            if planned.is_null() {
                tracing::info!(type_name = %req.type_name, "deleting");
                let limit = timeouts::configured(&prior, Operation::Delete);
                resp.diagnostics = self
                    .with_deadline(limit, async |ctx| resource.delete(&ctx, prior.clone(), private).await)
                    .await;
                // On failure the object still exists: keep it in state.
                let left = if resp.diagnostics.has_error() {
                    prior
                } else {
                    Value::Null
                };
                resp.new_state = encode(&left, &ty, &mut resp.diagnostics);
                return resp;
            }
            let creating = prior.is_null();
            let op = if creating { Operation::Create } else { Operation::Update };
            let limit = timeouts::configured(&planned, op);
            tracing::info!(type_name = %req.type_name, operation = ?op, "applying");
            let request = ApplyRequest {
                config,
                planned: planned.clone(),
                prior,
                private,
            };
            let out = self
                .with_deadline(limit, async |ctx| {
                    if creating {
                        resource.create(&ctx, request).await
                    } else {
                        resource.update(&ctx, request).await
                    }
                })
                .await;
            resp.diagnostics = out.diagnostics;
            let mut state = out.state;
            // Write-only values never reach state, at any depth.
            null_write_only(&schema.block, &mut state);
            if state.is_null() && !resp.diagnostics.has_error() {
                resp.diagnostics.error(
                    "Provider returned no object",
                    format!(
                        "{} returned no state and no error. This is a bug in the provider; please report it.",
                        req.type_name
                    ),
                );
            }
            if !state.is_null() && !state.is_wholly_known() {
                resp.diagnostics.error(
                    "Provider left values unknown after apply",
                    format!(
                        "{} returned a state with unknown values. This is a bug in the provider; please report it.",
                        req.type_name
                    ),
                );
            }
            if !resp.diagnostics.has_error() {
                let mut bad = Vec::new();
                contradictions(&planned, &state, &AttributePath::default(), &mut bad);
                for path in bad {
                    resp.diagnostics.attribute_error(
                        path.clone(),
                        "Provider produced an unexpected new value",
                        format!(
                            "{path} differs from its planned value. This is a bug in the provider; please report it."
                        ),
                    );
                }
            }
            resp.new_state = encode(&state, &ty, &mut resp.diagnostics);
            resp.private = out.private.to_bytes();
            resp
        }

        /// ImportResourceState: a partial state that ReadResource completes.
        pub async fn import_resource_state(
            &self,
            type_name: &str,
            id: &str,
            _client: ClientCapabilities,
        ) -> ImportResourceStateResponse {
            let mut resp = ImportResourceStateResponse::default();
            let (resource, schema) = match self.resource(type_name) {
                Ok(x) => x,
                Err(d) => {
                    resp.diagnostics = d;
                    return resp;
                }
            };
            // The id may be a secret (a token imported by value): never log it.
            tracing::info!(type_name, "importing");
            let out = resource.import(&self.context(), id).await;
            resp.diagnostics = out.diagnostics;
            if resp.diagnostics.has_error() {
                return resp;
            }
            let state = encode(&out.state, &schema.value_type(), &mut resp.diagnostics);
            resp.imported.push(ImportedResource {
                type_name: type_name.to_owned(),
                state,
                private: out.private.to_bytes(),
            });
            resp
        }

        /// MoveResourceState: no resource accepts moves from other types yet.
        pub async fn move_resource_state(&self, source_type: &str, target_type: &str) -> Diagnostics {
            let mut d = Diagnostics::new();
            d.error(
                "Move not supported",
                format!("{target_type} cannot take state moved from {source_type}. Use `terraform state rm` and `terraform import` instead."),
            );
            d
        }

        /// ValidateDataResourceConfig.
        pub async fn validate_data_resource_config(&self, type_name: &str, config: RawValue) -> Diagnostics {
            let (Some(ds), Some(schema)) = (
                self.data_sources.get(type_name),
                self.data_source_schemas.get(type_name),
            ) else {
                return unknown_type("data source", type_name);
            };
            match checked_config(schema, &config, "data source configuration", true) {
                Ok((config, mut diags)) => {
                    diags.extend(ds.validate(&self.context(), &config).await);
                    diags
                }
                Err(d) => d,
            }
        }

        /// ReadDataSource.
        pub async fn read_data_source(
            &self,
            type_name: &str,
            config: RawValue,
            _provider_meta: RawValue,
        ) -> (RawValue, Diagnostics) {
            let (Some(ds), Some(schema)) = (
                self.data_sources.get(type_name),
                self.data_source_schemas.get(type_name),
            ) else {
                return (RawValue::default(), unknown_type("data source", type_name));
            };
            let ty = schema.value_type();
            let config = match decode(&config, &ty, "data source configuration") {
                Ok(v) => v,
                Err(d) => return (RawValue::default(), d),
            };
            let (value, mut diags) = ds.read(&self.context(), config).await;
            let raw = encode(&value, &ty, &mut diags);
            (raw, diags)
        }

        /// ValidateEphemeralResourceConfig.
        pub async fn validate_ephemeral_resource_config(&self, type_name: &str, config: RawValue) -> Diagnostics {
            let (Some(er), Some(schema)) = (self.ephemeral.get(type_name), self.ephemeral_schemas.get(type_name))
            else {
                return unknown_type("ephemeral resource", type_name);
            };
            match checked_config(schema, &config, "ephemeral resource configuration", true) {
                Ok((config, mut diags)) => {
                    diags.extend(er.validate(&self.context(), &config).await);
                    diags
                }
                Err(d) => d,
            }
        }

        /// OpenEphemeralResource.
        pub async fn open_ephemeral_resource(
            &self,
            type_name: &str,
            config: RawValue,
            _client: ClientCapabilities,
        ) -> OpenEphemeralResourceResponse {
            let mut resp = OpenEphemeralResourceResponse::default();
            let (Some(er), Some(schema)) = (self.ephemeral.get(type_name), self.ephemeral_schemas.get(type_name))
            else {
                resp.diagnostics = unknown_type("ephemeral resource", type_name);
                return resp;
            };
            let ty = schema.value_type();
            let config = match decode(&config, &ty, "ephemeral resource configuration") {
                Ok(v) => v,
                Err(d) => {
                    resp.diagnostics = d;
                    return resp;
                }
            };
            let out = er.open(&self.context(), config).await;
            resp.diagnostics = out.diagnostics;
            resp.result = encode(&out.result, &ty, &mut resp.diagnostics);
            resp.private = (!out.private.is_empty()).then_some(out.private);
            resp.renew_at = out.renew_at;
            resp
        }

        /// RenewEphemeralResource.
        pub async fn renew_ephemeral_resource(
            &self,
            type_name: &str,
            private: Vec<u8>,
        ) -> RenewEphemeralResourceResponse {
            let mut resp = RenewEphemeralResourceResponse::default();
            let Some(er) = self.ephemeral.get(type_name) else {
                resp.diagnostics = unknown_type("ephemeral resource", type_name);
                return resp;
            };
            let (private, renew_at, diagnostics) = er.renew(&self.context(), private).await;
            resp.private = (!private.is_empty()).then_some(private);
            resp.renew_at = renew_at;
            resp.diagnostics = diagnostics;
            resp
        }

        /// CloseEphemeralResource.
        pub async fn close_ephemeral_resource(&self, type_name: &str, private: Vec<u8>) -> Diagnostics {
            match self.ephemeral.get(type_name) {
                Some(er) => er.close(&self.context(), private).await,
                None => unknown_type("ephemeral resource", type_name),
            }
        }
    }

    /// Decode a configuration and run the schema's own checks on it; the
    /// caller adds the type's cross-attribute validation.
    fn checked_config(
        schema: &Schema,
        config: &RawValue,
        what: &str,
        write_only_ok: bool,
    ) -> Result<(Value, Diagnostics), Diagnostics> {
        let config = decode(config, &schema.value_type(), what)?;
        let mut diags = Diagnostics::new();
        validate_block(
            &schema.block,
            &config,
            &AttributePath::default(),
            write_only_ok,
            &mut diags,
        );
        Ok((config, diags))
    }

    /// Top-level attributes whose plan breaks the CLI's rules: a configured
    /// value must be planned as configured, a non-computed attribute left
    /// null must plan null, a write-only one always plans null. Caught here,
    /// a provider bug names its attribute instead of the CLI's generic
    /// "Provider produced invalid plan".
    fn invalid_plan_paths(block: &crate::framework::Block, config: &Value, planned: &Value) -> Vec<AttributePath> {
        block
            .attributes
            .iter()
            .filter(|a| {
                let (c, p) = (config.attr(&a.name), planned.attr(&a.name));
                if a.write_only {
                    !p.is_null()
                } else if !c.is_null() {
                    !crate::framework::value::semantically_equal(c, p)
                } else {
                    !a.computed && !p.is_null()
                }
            })
            .map(|a| AttributePath::root(&a.name))
            .collect()
    }

    /// Make stored state JSON fit the block: drop attributes the schema no
    /// longer has, add new ones as null.
    pub(crate) fn conform_to_block(block: &crate::framework::Block, json: serde_json::Value) -> serde_json::Value {
        use crate::framework::Nesting;
        use serde_json::Value as J;
        let J::Object(mut fields) = json else { return json };
        let mut out = serde_json::Map::new();
        for a in &block.attributes {
            out.insert(a.name.clone(), fields.remove(&a.name).unwrap_or(J::Null));
        }
        for b in &block.blocks {
            let v = fields.remove(&b.name).unwrap_or(J::Null);
            let v = match (b.nesting, v) {
                (Nesting::Single | Nesting::Group, o @ J::Object(_)) => conform_to_block(&b.block, o),
                (Nesting::List | Nesting::Set, J::Array(items)) => {
                    J::Array(items.into_iter().map(|i| conform_to_block(&b.block, i)).collect())
                }
                (Nesting::Map, J::Object(items)) => J::Object(
                    items
                        .into_iter()
                        .map(|(k, i)| (k, conform_to_block(&b.block, i)))
                        .collect(),
                ),
                (_, other) => other,
            };
            out.insert(b.name.clone(), v);
        }
        J::Object(out)
    }

    #[cfg(test)]
    mod tests {
        use std::collections::BTreeMap;

        use super::*;
        use crate::framework::{Attribute, Block};

        #[test]
        fn invalid_plans_name_the_attribute() {
            let block = Block::new()
                .attribute(Attribute::string("name").optional())
                .attribute(Attribute::string("size").optional().computed())
                .attribute(Attribute::string("id").computed())
                .attribute(Attribute::string("secret").optional().write_only());
            let obj = |pairs: [(&str, Value); 4]| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<BTreeMap<_, _>>(),
                )
            };
            let config = obj([
                ("name", "a".into()),
                ("size", Value::Null),
                ("id", Value::Null),
                ("secret", "s".into()),
            ]);
            let good = obj([
                ("name", "a".into()),
                ("size", "9".into()),
                ("id", Value::unknown()),
                ("secret", Value::Null),
            ]);
            assert!(invalid_plan_paths(&block, &config, &good).is_empty());
            let bad = obj([
                ("name", "b".into()),
                ("size", "9".into()),
                ("id", Value::unknown()),
                ("secret", "s".into()),
            ]);
            assert_eq!(
                invalid_plan_paths(&block, &config, &bad),
                vec![AttributePath::root("name"), AttributePath::root("secret")]
            );
        }
    }
}
