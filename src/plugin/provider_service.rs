//! The tfplugin6 `Provider` service: each RPC decodes the request, calls the
//! matching [`ProviderServer`] method and encodes the answer. Failures are
//! diagnostics, never transport errors, so the CLI shows them properly; a
//! panicking handler becomes an error diagnostic instead of a dropped
//! connection ("plugin did not respond").

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt as _;
use tonic::{Request, Response, Status};

use crate::framework::server::{
    ApplyResourceChangeRequest, PlanResourceChangeRequest, ProviderServer, ReadResourceRequest,
};

use super::convert::{
    client_capabilities, diagnostics_to_proto, error_diagnostics, path_to_proto, raw_from_proto, raw_state_from_proto,
    raw_to_proto, schema_to_proto, schemas_to_proto, timestamp,
};
use super::proto::tfplugin6 as pb;
use super::proto::tfplugin6::provider_server::Provider;

/// What we tell the CLI we support beyond the base protocol.
pub fn server_capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        // PlanResourceChange is called for destroy too (null proposed state),
        // so the framework sees every change it must plan.
        plan_destroy: true,
        // Our schemas are static for a given binary: a cached copy is valid.
        get_provider_schema_optional: true,
        // Moving state between resource types is not offered.
        move_resource_state: false,
    }
}

/// Serves tfplugin6 for one [`ProviderServer`].
pub struct ProviderService {
    server: Arc<ProviderServer>,
}

impl ProviderService {
    /// A service calling into `server`.
    pub fn new(server: Arc<ProviderServer>) -> Self {
        ProviderService { server }
    }
}

/// Runs a handler, turning a panic into an answer built by `on_panic` from
/// an error diagnostic that names the RPC.
async fn guarded<T>(
    rpc: &'static str,
    handler: impl Future<Output = T>,
    on_panic: impl FnOnce(Vec<pb::Diagnostic>) -> T,
) -> Result<Response<T>, Status> {
    match AssertUnwindSafe(handler).catch_unwind().await {
        Ok(answer) => Ok(Response::new(answer)),
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            tracing::error!(rpc, panic = %message, "provider handler panicked");
            Ok(Response::new(on_panic(error_diagnostics(
                "Provider internal error",
                &format!(
                    "The provider panicked while handling {rpc}: {message}. This is a bug in \
                     terraform-provider-selfhost; please report it with the provider log (TF_LOG=DEBUG)."
                ),
            ))))
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

#[tonic::async_trait]
impl Provider for ProviderService {
    async fn get_metadata(
        &self,
        _request: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        let server = Arc::clone(&self.server);
        guarded(
            "GetMetadata",
            async move {
                let m = server.metadata();
                pb::get_metadata::Response {
                    server_capabilities: Some(server_capabilities()),
                    diagnostics: diagnostics_to_proto(&m.diagnostics),
                    data_sources: m
                        .data_sources
                        .into_iter()
                        .map(|type_name| pb::get_metadata::DataSourceMetadata { type_name })
                        .collect(),
                    resources: m
                        .resources
                        .into_iter()
                        .map(|type_name| pb::get_metadata::ResourceMetadata { type_name })
                        .collect(),
                    functions: Vec::new(),
                    ephemeral_resources: m
                        .ephemeral_resources
                        .into_iter()
                        .map(|type_name| pb::get_metadata::EphemeralMetadata { type_name })
                        .collect(),
                }
            },
            |diagnostics| pb::get_metadata::Response {
                diagnostics,
                ..Default::default()
            },
        )
        .await
    }

    async fn get_provider_schema(
        &self,
        _request: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        let server = Arc::clone(&self.server);
        guarded(
            "GetProviderSchema",
            async move {
                let s = server.schemas();
                pb::get_provider_schema::Response {
                    provider: Some(schema_to_proto(&s.provider)),
                    resource_schemas: schemas_to_proto(&s.resources),
                    data_source_schemas: schemas_to_proto(&s.data_sources),
                    functions: Default::default(),
                    ephemeral_resource_schemas: schemas_to_proto(&s.ephemeral_resources),
                    diagnostics: diagnostics_to_proto(&s.diagnostics),
                    provider_meta: None,
                    server_capabilities: Some(server_capabilities()),
                }
            },
            |diagnostics| pb::get_provider_schema::Response {
                diagnostics,
                ..Default::default()
            },
        )
        .await
    }

    async fn validate_provider_config(
        &self,
        request: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let req = request.into_inner();
        let server = Arc::clone(&self.server);
        guarded(
            "ValidateProviderConfig",
            async move {
                let d = server.validate_provider_config(raw_from_proto(req.config)).await;
                pb::validate_provider_config::Response {
                    diagnostics: diagnostics_to_proto(&d),
                }
            },
            |diagnostics| pb::validate_provider_config::Response { diagnostics },
        )
        .await
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(type_name = %req.type_name, "ValidateResourceConfig");
        let server = Arc::clone(&self.server);
        guarded(
            "ValidateResourceConfig",
            async move {
                let d = server
                    .validate_resource_config(
                        &req.type_name,
                        raw_from_proto(req.config),
                        client_capabilities(req.client_capabilities),
                    )
                    .await;
                pb::validate_resource_config::Response {
                    diagnostics: diagnostics_to_proto(&d),
                }
            },
            |diagnostics| pb::validate_resource_config::Response { diagnostics },
        )
        .await
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(type_name = %req.type_name, "ValidateDataResourceConfig");
        let server = Arc::clone(&self.server);
        guarded(
            "ValidateDataResourceConfig",
            async move {
                let d = server
                    .validate_data_resource_config(&req.type_name, raw_from_proto(req.config))
                    .await;
                pb::validate_data_resource_config::Response {
                    diagnostics: diagnostics_to_proto(&d),
                }
            },
            |diagnostics| pb::validate_data_resource_config::Response { diagnostics },
        )
        .await
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(type_name = %req.type_name, version = req.version, "UpgradeResourceState");
        let server = Arc::clone(&self.server);
        guarded(
            "UpgradeResourceState",
            async move {
                let (state, d) = server
                    .upgrade_resource_state(&req.type_name, req.version, raw_state_from_proto(req.raw_state))
                    .await;
                pb::upgrade_resource_state::Response {
                    upgraded_state: state.and_then(raw_to_proto),
                    diagnostics: diagnostics_to_proto(&d),
                }
            },
            |diagnostics| pb::upgrade_resource_state::Response {
                diagnostics,
                ..Default::default()
            },
        )
        .await
    }

    async fn get_resource_identity_schemas(
        &self,
        _request: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Result<Response<pb::get_resource_identity_schemas::Response>, Status> {
        // No resource declares an identity: the CLI then keeps using ids.
        Ok(Response::new(pb::get_resource_identity_schemas::Response::default()))
    }

    async fn upgrade_resource_identity(
        &self,
        request: Request<pb::upgrade_resource_identity::Request>,
    ) -> Result<Response<pb::upgrade_resource_identity::Response>, Status> {
        let req = request.into_inner();
        Ok(Response::new(pb::upgrade_resource_identity::Response {
            upgraded_identity: None,
            diagnostics: error_diagnostics(
                "Resource identity not supported",
                &format!(
                    "The resource type {} has no resource identity in this provider, so stored identity data \
                     cannot be upgraded. Remove the identity from the state or use the provider version that wrote it.",
                    req.type_name
                ),
            ),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(terraform_version = %req.terraform_version, "ConfigureProvider");
        let server = Arc::clone(&self.server);
        guarded(
            "ConfigureProvider",
            async move {
                let d = server
                    .configure_provider(
                        raw_from_proto(req.config),
                        client_capabilities(req.client_capabilities),
                        req.terraform_version,
                    )
                    .await;
                pb::configure_provider::Response {
                    diagnostics: diagnostics_to_proto(&d),
                }
            },
            |diagnostics| pb::configure_provider::Response { diagnostics },
        )
        .await
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(type_name = %req.type_name, "ReadResource");
        let server = Arc::clone(&self.server);
        guarded(
            "ReadResource",
            async move {
                let r = server
                    .read_resource(ReadResourceRequest {
                        type_name: req.type_name,
                        current_state: raw_from_proto(req.current_state),
                        private: req.private,
                        provider_meta: raw_from_proto(req.provider_meta),
                        client: client_capabilities(req.client_capabilities),
                    })
                    .await;
                pb::read_resource::Response {
                    new_state: raw_to_proto(r.new_state),
                    diagnostics: diagnostics_to_proto(&r.diagnostics),
                    private: r.private,
                    deferred: None,
                    new_identity: None,
                }
            },
            |diagnostics| pb::read_resource::Response {
                diagnostics,
                ..Default::default()
            },
        )
        .await
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(type_name = %req.type_name, "PlanResourceChange");
        let server = Arc::clone(&self.server);
        guarded(
            "PlanResourceChange",
            async move {
                let r = server
                    .plan_resource_change(PlanResourceChangeRequest {
                        type_name: req.type_name,
                        prior_state: raw_from_proto(req.prior_state),
                        proposed_new_state: raw_from_proto(req.proposed_new_state),
                        config: raw_from_proto(req.config),
                        prior_private: req.prior_private,
                        provider_meta: raw_from_proto(req.provider_meta),
                        client: client_capabilities(req.client_capabilities),
                    })
                    .await;
                pb::plan_resource_change::Response {
                    planned_state: raw_to_proto(r.planned_state),
                    requires_replace: r.requires_replace.iter().map(path_to_proto).collect(),
                    planned_private: r.planned_private,
                    diagnostics: diagnostics_to_proto(&r.diagnostics),
                    legacy_type_system: false,
                    deferred: None,
                    planned_identity: None,
                }
            },
            |diagnostics| pb::plan_resource_change::Response {
                diagnostics,
                ..Default::default()
            },
        )
        .await
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(type_name = %req.type_name, "ApplyResourceChange");
        let server = Arc::clone(&self.server);
        guarded(
            "ApplyResourceChange",
            async move {
                let r = server
                    .apply_resource_change(ApplyResourceChangeRequest {
                        type_name: req.type_name,
                        prior_state: raw_from_proto(req.prior_state),
                        planned_state: raw_from_proto(req.planned_state),
                        config: raw_from_proto(req.config),
                        planned_private: req.planned_private,
                        provider_meta: raw_from_proto(req.provider_meta),
                    })
                    .await;
                pb::apply_resource_change::Response {
                    new_state: raw_to_proto(r.new_state),
                    private: r.private,
                    diagnostics: diagnostics_to_proto(&r.diagnostics),
                    legacy_type_system: false,
                    new_identity: None,
                }
            },
            |diagnostics| pb::apply_resource_change::Response {
                diagnostics,
                ..Default::default()
            },
        )
        .await
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(type_name = %req.type_name, "ImportResourceState");
        let server = Arc::clone(&self.server);
        guarded(
            "ImportResourceState",
            async move {
                let r = server
                    .import_resource_state(&req.type_name, &req.id, client_capabilities(req.client_capabilities))
                    .await;
                pb::import_resource_state::Response {
                    imported_resources: r
                        .imported
                        .into_iter()
                        .map(|i| pb::import_resource_state::ImportedResource {
                            type_name: i.type_name,
                            state: raw_to_proto(i.state),
                            private: i.private,
                            identity: None,
                        })
                        .collect(),
                    diagnostics: diagnostics_to_proto(&r.diagnostics),
                    deferred: None,
                }
            },
            |diagnostics| pb::import_resource_state::Response {
                diagnostics,
                ..Default::default()
            },
        )
        .await
    }

    async fn move_resource_state(
        &self,
        request: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        let req = request.into_inner();
        let server = Arc::clone(&self.server);
        guarded(
            "MoveResourceState",
            async move {
                let d = server
                    .move_resource_state(&req.source_type_name, &req.target_type_name)
                    .await;
                pb::move_resource_state::Response {
                    diagnostics: diagnostics_to_proto(&d),
                    ..Default::default()
                }
            },
            |diagnostics| pb::move_resource_state::Response {
                diagnostics,
                ..Default::default()
            },
        )
        .await
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(type_name = %req.type_name, "ReadDataSource");
        let server = Arc::clone(&self.server);
        guarded(
            "ReadDataSource",
            async move {
                let (state, d) = server
                    .read_data_source(
                        &req.type_name,
                        raw_from_proto(req.config),
                        raw_from_proto(req.provider_meta),
                    )
                    .await;
                pb::read_data_source::Response {
                    state: raw_to_proto(state),
                    diagnostics: diagnostics_to_proto(&d),
                    deferred: None,
                }
            },
            |diagnostics| pb::read_data_source::Response {
                diagnostics,
                ..Default::default()
            },
        )
        .await
    }

    async fn validate_ephemeral_resource_config(
        &self,
        request: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(type_name = %req.type_name, "ValidateEphemeralResourceConfig");
        let server = Arc::clone(&self.server);
        guarded(
            "ValidateEphemeralResourceConfig",
            async move {
                let d = server
                    .validate_ephemeral_resource_config(&req.type_name, raw_from_proto(req.config))
                    .await;
                pb::validate_ephemeral_resource_config::Response {
                    diagnostics: diagnostics_to_proto(&d),
                }
            },
            |diagnostics| pb::validate_ephemeral_resource_config::Response { diagnostics },
        )
        .await
    }

    async fn open_ephemeral_resource(
        &self,
        request: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(type_name = %req.type_name, "OpenEphemeralResource");
        let server = Arc::clone(&self.server);
        guarded(
            "OpenEphemeralResource",
            async move {
                let r = server
                    .open_ephemeral_resource(
                        &req.type_name,
                        raw_from_proto(req.config),
                        client_capabilities(req.client_capabilities),
                    )
                    .await;
                pb::open_ephemeral_resource::Response {
                    diagnostics: diagnostics_to_proto(&r.diagnostics),
                    renew_at: r.renew_at.map(timestamp),
                    result: raw_to_proto(r.result),
                    private: r.private,
                    deferred: None,
                }
            },
            |diagnostics| pb::open_ephemeral_resource::Response {
                diagnostics,
                ..Default::default()
            },
        )
        .await
    }

    async fn renew_ephemeral_resource(
        &self,
        request: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(type_name = %req.type_name, "RenewEphemeralResource");
        let server = Arc::clone(&self.server);
        guarded(
            "RenewEphemeralResource",
            async move {
                let r = server
                    .renew_ephemeral_resource(&req.type_name, req.private.unwrap_or_default())
                    .await;
                pb::renew_ephemeral_resource::Response {
                    diagnostics: diagnostics_to_proto(&r.diagnostics),
                    renew_at: r.renew_at.map(timestamp),
                    private: r.private,
                }
            },
            |diagnostics| pb::renew_ephemeral_resource::Response {
                diagnostics,
                ..Default::default()
            },
        )
        .await
    }

    async fn close_ephemeral_resource(
        &self,
        request: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        let req = request.into_inner();
        tracing::debug!(type_name = %req.type_name, "CloseEphemeralResource");
        let server = Arc::clone(&self.server);
        guarded(
            "CloseEphemeralResource",
            async move {
                let d = server
                    .close_ephemeral_resource(&req.type_name, req.private.unwrap_or_default())
                    .await;
                pb::close_ephemeral_resource::Response {
                    diagnostics: diagnostics_to_proto(&d),
                }
            },
            |diagnostics| pb::close_ephemeral_resource::Response { diagnostics },
        )
        .await
    }

    async fn get_functions(
        &self,
        _request: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        // The provider offers no functions.
        Ok(Response::new(pb::get_functions::Response::default()))
    }

    async fn call_function(
        &self,
        request: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        let req = request.into_inner();
        Ok(Response::new(pb::call_function::Response {
            result: None,
            error: Some(pb::FunctionError {
                text: format!("terraform-provider-selfhost has no function named {:?}.", req.name),
                function_argument: None,
            }),
        }))
    }

    async fn stop_provider(
        &self,
        _request: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        tracing::info!("StopProvider: cancelling in-flight operations");
        self.server.stop();
        Ok(Response::new(pb::stop_provider::Response { error: String::new() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_an_error_diagnostic() {
        let answer = guarded("ReadResource", async { panic!("boom at index 3") }, |diagnostics| {
            pb::read_resource::Response {
                diagnostics,
                ..Default::default()
            }
        })
        .await
        .unwrap()
        .into_inner();
        assert_eq!(answer.diagnostics.len(), 1);
        let d = &answer.diagnostics[0];
        assert_eq!(d.severity, pb::diagnostic::Severity::Error as i32);
        assert!(d.detail.contains("ReadResource"), "{}", d.detail);
        assert!(d.detail.contains("boom at index 3"), "{}", d.detail);
    }

    #[tokio::test]
    async fn a_normal_handler_answers_as_is() {
        let answer = guarded(
            "GetFunctions",
            async { pb::get_functions::Response::default() },
            |diagnostics| pb::get_functions::Response {
                diagnostics,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .into_inner();
        assert!(answer.diagnostics.is_empty());
    }
}
