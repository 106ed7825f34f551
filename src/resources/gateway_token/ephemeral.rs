//! `selfhost_gateway_token` as an ephemeral resource (Terraform 1.10+,
//! OpenTofu 1.11+): a token that is never written to state or plan.

use async_trait::async_trait;

use super::secret_token::{fingerprint, generate};
use super::{DEFAULT_LENGTH, settings, token_attributes};
use crate::framework::resource::{Context, EphemeralResource, OpenResponse};
use crate::framework::{Block, Schema, Value};

/// The ephemeral resource type.
pub struct GatewayTokenEphemeral;

#[async_trait]
impl EphemeralResource for GatewayTokenEphemeral {
    fn type_name(&self) -> &'static str {
        "selfhost_gateway_token"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            token_attributes(
                Block::new().description("A random token that exists only for this run: never stored in state."),
            ),
        )
    }

    async fn open(&self, _ctx: &Context, config: Value) -> OpenResponse {
        let mut resp = OpenResponse::default();
        let s = settings(&config);
        let length = usize::try_from(s.length).unwrap_or(DEFAULT_LENGTH as usize);
        match generate(length, s.alphabet) {
            Ok(token) => {
                let mut result = std::collections::BTreeMap::new();
                result.insert("length".to_owned(), Value::from(s.length));
                result.insert("alphabet".to_owned(), Value::from(s.alphabet.name()));
                result.insert("fingerprint".to_owned(), Value::from(fingerprint(&token)));
                result.insert("token".to_owned(), Value::from(token));
                resp.result = Value::Object(result);
            }
            Err(e) => resp
                .diagnostics
                .error("Could not generate a token", format!("{e}; try again.")),
        }
        resp
    }
}
