//! `selfhost_gateway_token` as an ephemeral resource (Terraform 1.10+,
//! OpenTofu 1.11+): a token that is never written to state or plan.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::secret_token::{Alphabet, fingerprint, generate};
use super::{DEFAULT_LENGTH, decode, token_attributes};
use crate::framework::resource::{Context, EphemeralResource, OpenResponse};
use crate::framework::typed::to_value_as;
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
        let Some(config) = decode::<EphemeralConfig>(&config, "configuration", &mut resp.diagnostics) else {
            return resp;
        };
        let length = config.length.unwrap_or(DEFAULT_LENGTH);
        let alphabet = config
            .alphabet
            .as_deref()
            .and_then(Alphabet::parse)
            .unwrap_or(Alphabet::Alphanumeric);
        match generate(usize::try_from(length).unwrap_or(DEFAULT_LENGTH as usize), alphabet) {
            Ok(token) => {
                let result = EphemeralToken {
                    length,
                    alphabet: alphabet.name().to_owned(),
                    fingerprint: fingerprint(&token),
                    token,
                };
                match to_value_as(&result, &self.schema().value_type()) {
                    Ok(v) => resp.result = v,
                    Err(e) => resp
                        .diagnostics
                        .error("Unencodable result", format!("{e}. This is a bug in the provider.")),
                }
            }
            Err(e) => resp
                .diagnostics
                .error("Could not generate a token", format!("{e}; try again.")),
        }
        resp
    }
}

/// The configuration; known when an ephemeral resource is opened.
#[derive(Deserialize)]
struct EphemeralConfig {
    length: Option<i64>,
    alphabet: Option<String>,
}

/// The opened token.
#[derive(Serialize)]
struct EphemeralToken {
    length: i64,
    alphabet: String,
    token: String,
    fingerprint: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_a_token_as_configured() {
        let ctx = Context {
            cancel: Default::default(),
            provider_data: None,
            write_only_supported: false,
        };
        let mut config = std::collections::BTreeMap::new();
        for k in ["length", "alphabet", "token", "fingerprint"] {
            config.insert(k.to_owned(), Value::Null);
        }
        config.insert("length".to_owned(), Value::from(20));
        config.insert("alphabet".to_owned(), Value::from("hex"));
        let out = GatewayTokenEphemeral.open(&ctx, Value::Object(config)).await;
        assert!(!out.diagnostics.has_error(), "{:?}", out.diagnostics);
        let token = out.result.attr("token").as_str().unwrap();
        assert_eq!(token.len(), 20);
        assert!(Alphabet::Hex.admits(token));
        assert_eq!(
            out.result.attr("fingerprint").as_str(),
            Some(fingerprint(token).as_str())
        );
    }
}
