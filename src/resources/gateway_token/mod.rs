//! `selfhost_gateway_token`: a random token with rotation. The plan replaces
//! it once it has expired or when `keepers` change. With a `secret {}` block
//! the token is also kept in a Kubernetes Secret, read back for drift.

mod ephemeral;
mod secret_store;
mod secret_token;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::framework::plan_modifier::{RequiresReplace, UseStateForUnknown};
use crate::framework::private::PrivateState;
use crate::framework::resource::{
    ApplyRequest, ApplyResponse, Context, ImportResponse, ModifyPlanRequest, ModifyPlanResponse, ReadRequest,
    ReadResponse, Resource,
};
use crate::framework::typed::{Maybe, decode, to_value_as};
use crate::framework::validator::{IntBetween, OneOf};
use crate::framework::{Attribute, AttributePath, Block, Diagnostics, Schema, Type, Value};

pub use ephemeral::GatewayTokenEphemeral;
use secret_store::SecretRef;
use secret_token::{Alphabet, expiry, fingerprint, generate, parse_timestamp, timestamp};

/// Private-state key set on import: until the first apply after it, plans
/// adopt the configured `length` and `alphabet` (when the token satisfies
/// them) and first `keepers` instead of replacing the imported token. The
/// import leaves `rotation_days` null, so that first plan is always an
/// in-place update, and its apply clears the flag: it cannot linger.
const IMPORTED: &str = "imported";
const DEFAULT_LENGTH: i64 = 48;
const DEFAULT_ROTATION_DAYS: i64 = 90;

/// The resource type.
pub struct GatewayToken;

/// Keepers as Terraform allows them: a `map(string)` may hold nulls.
type Keepers = BTreeMap<String, Option<String>>;

/// The stored state of one token (the resource's typed model). No `Debug`:
/// it holds the token.
#[derive(Serialize, Deserialize)]
struct TokenState {
    id: String,
    length: i64,
    alphabet: String,
    /// Null only between an import and the first apply after it.
    rotation_days: Option<i64>,
    keepers: Option<Keepers>,
    token: String,
    fingerprint: String,
    created_at: String,
    expires_at: Option<String>,
    secret: Option<SecretRef>,
}

impl TokenState {
    fn new(settings: &Settings, keepers: Option<Keepers>, token: String, created_at: OffsetDateTime) -> Self {
        let fp = fingerprint(&token);
        TokenState {
            id: fp[..16].to_owned(),
            length: settings.length,
            alphabet: settings.alphabet.name().to_owned(),
            rotation_days: Some(settings.rotation_days),
            keepers,
            token,
            fingerprint: fp,
            created_at: timestamp(created_at),
            expires_at: expiry(created_at, settings.rotation_days).map(timestamp),
            secret: None,
        }
    }
}

/// The settings a plan or configuration holds. During planning any of them
/// may still be unknown; at apply they are known. (Keepers are compared as
/// values while planning: one of them may be unknown.)
#[derive(Debug, Deserialize)]
struct PlannedSettings {
    length: Maybe<i64>,
    alphabet: Maybe<String>,
    rotation_days: Maybe<i64>,
}

/// The keepers of a plan at apply time, when every value is known.
#[derive(Deserialize)]
struct PlannedKeepers {
    keepers: Option<Keepers>,
}

/// The `secret {}` block of a plan at apply time (known but for
/// `stored_fingerprint`, which apply computes).
#[derive(Deserialize)]
struct PlannedSecret {
    secret: Option<PlannedSecretRef>,
}

#[derive(Deserialize)]
struct PlannedSecretRef {
    kubeconfig: String,
    namespace: String,
    name: String,
    key: String,
}

impl From<PlannedSecretRef> for SecretRef {
    fn from(p: PlannedSecretRef) -> Self {
        SecretRef {
            kubeconfig: p.kubeconfig,
            namespace: p.namespace,
            name: p.name,
            key: p.key,
            stored_fingerprint: None,
        }
    }
}

/// Known settings, with the schema's defaults for anything not known.
struct Settings {
    length: i64,
    alphabet: Alphabet,
    rotation_days: i64,
}

impl From<&PlannedSettings> for Settings {
    fn from(p: &PlannedSettings) -> Self {
        Settings {
            length: p.length.known().copied().unwrap_or(DEFAULT_LENGTH),
            alphabet: p
                .alphabet
                .known()
                .and_then(|a| Alphabet::parse(a))
                .unwrap_or(Alphabet::Alphanumeric),
            rotation_days: p.rotation_days.known().copied().unwrap_or(DEFAULT_ROTATION_DAYS),
        }
    }
}

/// Encode a typed model as this resource's object value.
fn encode(state: &TokenState, diags: &mut Diagnostics) -> Value {
    match to_value_as(state, &GatewayToken.schema().value_type()) {
        Ok(v) => v,
        Err(e) => {
            diags.error(
                "Unencodable state",
                format!("{e}. This is a bug in the provider; please report it."),
            );
            Value::Null
        }
    }
}

/// `null` and `{}` keepers mean the same: nothing to keep.
fn keepers_equal(a: &Value, b: &Value) -> bool {
    let empty = |v: &Value| v.is_null() || matches!(v, Value::Map(m) if m.is_empty());
    (empty(a) && empty(b)) || crate::framework::value::semantically_equal(a, b)
}

/// Keepers, imported tokens and expiry: what replaces the token.
fn plan_rotation(req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
    if req.prior.is_null() {
        return;
    }
    let Some(prior) = decode::<TokenState>(&req.prior, "prior state", &mut resp.diagnostics) else {
        return;
    };
    let Some(planned) = decode::<PlannedSettings>(&resp.planned, "plan", &mut resp.diagnostics) else {
        return;
    };
    let imported = req.prior_private.get(IMPORTED).is_some();
    if imported {
        // Adopt the configuration around an imported token when the token
        // already satisfies it, instead of replacing it on the first plan.
        let s = Settings::from(&planned);
        let fits = prior.token.len() as i64 == s.length && s.alphabet.admits(&prior.token);
        resp.requires_replace
            .retain(|p| !(fits && (*p == AttributePath::root("length") || *p == AttributePath::root("alphabet"))));
    }
    // An import cannot know the keepers: the first ones configured after
    // it are adopted; any other change of keepers makes a new token.
    let adopting_keepers = imported && keepers_equal(req.prior.attr("keepers"), &Value::Null);
    if !adopting_keepers && !keepers_equal(req.prior.attr("keepers"), req.config.attr("keepers")) {
        resp.requires_replace.push(AttributePath::root("keepers"));
    }

    let Some(created) = parse_timestamp(&prior.created_at) else {
        return;
    };
    let Some(&days) = planned.rotation_days.known() else {
        return; // unknown until apply: expires_at stays unknown
    };
    let expires = expiry(created, days);
    if let Some(slot) = resp.planned.attr_mut("expires_at") {
        *slot = expires.map(|t| Value::from(timestamp(t))).unwrap_or(Value::Null);
    }
    if let Some(at) = expires
        && at <= OffsetDateTime::now_utc()
    {
        resp.diagnostics.attribute_warning(
            AttributePath::root("expires_at"),
            "Gateway token expired",
            format!(
                "The token expired at {}; this plan replaces it with a new one.",
                timestamp(at)
            ),
        );
        resp.requires_replace.push(AttributePath::root("expires_at"));
    }
}

/// The Secret must end up holding the token: plan `stored_fingerprint` as
/// the token's fingerprint, so a Secret changed or deleted out of band (Read
/// found another fingerprint, or none) is a diff that apply repairs. Unknown
/// when a new token is coming.
fn plan_secret(req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
    let replacing = req.prior.is_null() || !resp.requires_replace.is_empty();
    let fingerprint = match resp.planned.attr("fingerprint") {
        Value::String(fp) if !replacing => Value::from(fp.clone()),
        _ => Value::unknown(),
    };
    if let Some(slot) = resp
        .planned
        .attr_mut(secret_store::BLOCK)
        .filter(|b| !b.is_null())
        .and_then(|b| b.attr_mut("stored_fingerprint"))
    {
        *slot = fingerprint;
    }
}

/// Write the token to the Secret; the returned reference records what is
/// stored now (nothing, after an error, which goes to `diags`).
async fn store(ctx: &Context, mut at: SecretRef, token: &str, diags: &mut Diagnostics) -> SecretRef {
    match secret_store::write(ctx, &at, token).await {
        Ok(fp) => at.stored_fingerprint = Some(fp),
        Err(e) => {
            at.stored_fingerprint = None;
            secret_store::diagnose(&e, diags);
        }
    }
    at
}

pub(crate) fn token_attributes(block: Block) -> Block {
    block
        .attribute(
            Attribute::number("length")
                .optional()
                .computed()
                .default_value(DEFAULT_LENGTH)
                .description("Number of characters in the token (16–512). Changing it creates a new token.")
                .validator(IntBetween { min: 16, max: 512 })
                .plan_modifier(RequiresReplace),
        )
        .attribute(
            Attribute::string("alphabet")
                .optional()
                .computed()
                .default_value("alphanumeric")
                .description(
                    "Characters the token is drawn from: \"alphanumeric\" (A-Z a-z 0-9), \"hex\" or \"base64url\" (adds - and _). Changing it creates a new token.",
                )
                .validator(OneOf(Alphabet::NAMES))
                .plan_modifier(RequiresReplace),
        )
        .attribute(
            Attribute::string("token")
                .computed()
                .sensitive()
                .description("The token. Sensitive: hidden in plans and never logged.")
                .plan_modifier(UseStateForUnknown),
        )
        .attribute(
            Attribute::string("fingerprint")
                .computed()
                .description("SHA-256 of the token in hex: safe to show, log and compare.")
                .plan_modifier(UseStateForUnknown),
        )
}

#[async_trait]
impl Resource for GatewayToken {
    fn type_name(&self) -> &'static str {
        "selfhost_gateway_token"
    }

    fn schema(&self) -> Schema {
        let block = Block::new()
            .description("A cryptographically random gateway token, replaced when it expires or its keepers change.")
            .attribute(
                Attribute::string("id")
                    .computed()
                    .description("First 16 hex characters of the fingerprint.")
                    .plan_modifier(UseStateForUnknown),
            )
            .attribute(
                Attribute::number("rotation_days")
                    .optional()
                    .computed()
                    .default_value(DEFAULT_ROTATION_DAYS)
                    .description(
                        "Days until the token expires; once expired, the plan replaces it. 0 means never. Changing it moves `expires_at` without a new token.",
                    )
                    .validator(IntBetween { min: 0, max: 36_500 }),
            )
            .attribute(
                Attribute::of_type("keepers", Type::map(Type::String))
                    .optional()
                    .description("Arbitrary values; changing any of them creates a new token."),
            )
            .attribute(
                Attribute::string("created_at")
                    .computed()
                    .description("When the token was generated (RFC 3339).")
                    .plan_modifier(UseStateForUnknown),
            )
            .attribute(
                Attribute::string("expires_at")
                    .computed()
                    .description("When the token expires (RFC 3339); null when `rotation_days` is 0."),
            )
            .block(secret_store::block());
        Schema::new(0, token_attributes(block))
    }

    async fn modify_plan(&self, _ctx: &Context, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        plan_rotation(req, resp);
        plan_secret(req, resp);
    }

    async fn create(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        let mut resp = ApplyResponse::default();
        let Some(planned) = decode::<PlannedSettings>(&req.planned, "plan", &mut resp.diagnostics) else {
            return resp;
        };
        let Some(at) = decode::<PlannedSecret>(&req.planned, "plan", &mut resp.diagnostics) else {
            return resp;
        };
        let s = Settings::from(&planned);
        let length = usize::try_from(s.length).unwrap_or(DEFAULT_LENGTH as usize);
        match generate(length, s.alphabet) {
            Ok(token) => {
                let keepers =
                    decode::<PlannedKeepers>(&req.planned, "plan", &mut resp.diagnostics).and_then(|k| k.keepers);
                let mut state = TokenState::new(&s, keepers, token, OffsetDateTime::now_utc());
                tracing::info!(fingerprint = %state.fingerprint, "generated gateway token");
                if let Some(at) = at.secret {
                    state.secret = Some(store(ctx, at.into(), &state.token, &mut resp.diagnostics).await);
                }
                resp.state = encode(&state, &mut resp.diagnostics);
            }
            Err(e) => resp
                .diagnostics
                .error("Could not generate a token", format!("{e}; try again.")),
        }
        resp
    }

    async fn read(&self, ctx: &Context, req: ReadRequest) -> ReadResponse {
        let mut resp = ReadResponse {
            state: req.state,
            private: req.private,
            diagnostics: Diagnostics::new(),
        };
        if resp.state.attr(secret_store::BLOCK).is_null() {
            return resp; // the token lives only in state: nothing outside can drift
        }
        let Some(mut state) = decode::<TokenState>(&resp.state, "state", &mut resp.diagnostics) else {
            return resp;
        };
        let Some(at) = state.secret.as_mut() else {
            return resp;
        };
        match secret_store::observe(ctx, at).await {
            Ok(seen) => {
                if seen.as_deref() != Some(state.fingerprint.as_str()) {
                    tracing::info!(
                        namespace = %at.namespace,
                        name = %at.name,
                        missing = seen.is_none(),
                        "the token's Secret differs from state (drift): the plan writes it back"
                    );
                }
                at.stored_fingerprint = seen;
                resp.state = encode(&state, &mut resp.diagnostics);
            }
            Err(e) => secret_store::diagnose(&e, &mut resp.diagnostics),
        }
        resp
    }

    async fn update(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        let mut resp = ApplyResponse {
            state: req.prior.clone(),
            ..Default::default()
        };
        let (Some(prior), Some(planned), Some(keepers), Some(at)) = (
            decode::<TokenState>(&req.prior, "prior state", &mut resp.diagnostics),
            decode::<PlannedSettings>(&req.planned, "plan", &mut resp.diagnostics),
            decode::<PlannedKeepers>(&req.planned, "plan", &mut resp.diagnostics),
            decode::<PlannedSecret>(&req.planned, "plan", &mut resp.diagnostics),
        ) else {
            return resp;
        };
        let Some(created_at) = parse_timestamp(&prior.created_at) else {
            resp.diagnostics.error(
                "Corrupt state",
                "created_at in state is not an RFC 3339 time. Remove the token from state (terraform state rm) and apply again.",
            );
            return resp;
        };
        let old = prior.secret.clone();
        let mut state = TokenState::new(&Settings::from(&planned), keepers.keepers, prior.token, created_at);
        let new: Option<SecretRef> = at.secret.map(Into::into);
        if let Some(new) = new.clone() {
            state.secret = Some(store(ctx, new, &state.token, &mut resp.diagnostics).await);
        }
        // The token moved out of a Secret (block removed, or another Secret):
        // take it out of the old one.
        if let Some(old) = old
            && !new.as_ref().is_some_and(|n| n.same_object(&old))
            && !resp.diagnostics.has_error()
            && let Err(e) = secret_store::remove(ctx, &old).await
        {
            secret_store::diagnose(&e, &mut resp.diagnostics);
        }
        let mut private = req.private;
        private.remove(IMPORTED);
        resp.state = encode(&state, &mut resp.diagnostics);
        resp.private = private;
        resp
    }

    async fn delete(&self, ctx: &Context, state: Value, _private: PrivateState) -> Diagnostics {
        let mut diags = Diagnostics::new();
        if state.attr(secret_store::BLOCK).is_null() {
            return diags;
        }
        if let Some(TokenState { secret: Some(at), .. }) = decode::<TokenState>(&state, "state", &mut diags)
            && let Err(e) = secret_store::remove(ctx, &at).await
        {
            secret_store::diagnose(&e, &mut diags);
        }
        diags
    }

    /// Import an existing token by value (`terraform import ADDR TOKEN`), or
    /// from an environment variable (`env:NAME`) to keep it out of shell history.
    async fn import(&self, _ctx: &Context, id: &str) -> ImportResponse {
        let mut resp = ImportResponse::default();
        let token = match id.strip_prefix("env:") {
            Some(name) => {
                match std::env::var(name) {
                    Ok(t) => t,
                    Err(std::env::VarError::NotPresent) => {
                        resp.diagnostics.error(
                            "Import variable not set",
                            format!("The import id asks for the token in ${name}, which is not set in Terraform's environment."),
                        );
                        return resp;
                    }
                    Err(std::env::VarError::NotUnicode(_)) => {
                        resp.diagnostics.error(
                            "Token not importable",
                            format!("${name} is not valid UTF-8; gateway tokens are ASCII."),
                        );
                        return resp;
                    }
                }
            }
            None => id.to_owned(),
        };
        let Some(alphabet) = Alphabet::narrowest_for(&token) else {
            resp.diagnostics.error(
                "Token not importable",
                "The token has characters outside every supported alphabet (alphanumeric, hex, base64url).",
            );
            return resp;
        };
        if !(16..=512).contains(&token.len()) {
            resp.diagnostics.error(
                "Token not importable",
                format!(
                    "The token is {} characters long; gateway tokens are 16 to 512.",
                    token.len()
                ),
            );
            return resp;
        }
        let s = Settings {
            length: token.len() as i64,
            alphabet,
            rotation_days: DEFAULT_ROTATION_DAYS,
        };
        let mut state = TokenState::new(&s, None, token, OffsetDateTime::now_utc());
        // Unknown until the configuration is seen: the first plan then fills
        // them in place (see IMPORTED).
        state.rotation_days = None;
        state.expires_at = None;
        resp.state = encode(&state, &mut resp.diagnostics);
        resp.private.set(IMPORTED, serde_json::Value::Bool(true));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::plan::plan_block;

    fn ctx() -> Context {
        Context {
            cancel: Default::default(),
            provider_data: None,
            write_only_supported: false,
        }
    }

    fn config(keepers: Option<&str>) -> Value {
        let mut m = BTreeMap::new();
        for k in [
            "id",
            "length",
            "alphabet",
            "rotation_days",
            "token",
            "fingerprint",
            "created_at",
            "expires_at",
        ] {
            m.insert(k.to_owned(), Value::Null);
        }
        m.insert(secret_store::BLOCK.to_owned(), Value::Null);
        m.insert(
            "keepers".to_owned(),
            keepers.map_or(Value::Null, |v| {
                Value::Map(BTreeMap::from([("gateway".to_owned(), Value::from(v))]))
            }),
        );
        Value::Object(m)
    }

    fn proposed(config: &Value, prior: &Value) -> Value {
        let mut p = config.clone();
        for k in [
            "id",
            "length",
            "alphabet",
            "rotation_days",
            "token",
            "fingerprint",
            "created_at",
            "expires_at",
        ] {
            if let Some(slot) = p.attr_mut(k)
                && slot.is_null()
            {
                *slot = prior.attr(k).clone();
            }
        }
        p
    }

    async fn plan(prior: &Value, private: PrivateState, config: &Value) -> ModifyPlanResponse {
        let schema = GatewayToken.schema();
        let ap = plan_block(&schema.block, prior, &proposed(config, prior), config);
        let mut resp = ModifyPlanResponse {
            planned: ap.planned,
            requires_replace: ap.requires_replace,
            private: private.clone(),
            diagnostics: ap.diagnostics,
        };
        let req = ModifyPlanRequest {
            config: config.clone(),
            prior: prior.clone(),
            prior_private: private,
        };
        GatewayToken.modify_plan(&ctx(), &req, &mut resp).await;
        resp
    }

    async fn created(keepers: Option<&str>) -> Value {
        let c = config(keepers);
        let p = plan(&Value::Null, PrivateState::default(), &c).await;
        let r = GatewayToken
            .create(
                &ctx(),
                ApplyRequest {
                    config: c,
                    planned: p.planned,
                    prior: Value::Null,
                    private: Default::default(),
                },
            )
            .await;
        assert!(!r.diagnostics.has_error());
        r.state
    }

    #[tokio::test]
    async fn second_plan_is_empty() {
        let state = created(Some("v1")).await;
        assert_eq!(state.attr("token").as_str().map(str::len), Some(48));
        let p = plan(&state, PrivateState::default(), &config(Some("v1"))).await;
        assert_eq!(p.planned, state);
        assert!(p.requires_replace.is_empty());
    }

    #[tokio::test]
    async fn keepers_change_replaces() {
        let state = created(Some("v1")).await;
        let p = plan(&state, PrivateState::default(), &config(Some("v2"))).await;
        assert_eq!(p.requires_replace, vec![AttributePath::root("keepers")]);
    }

    #[tokio::test]
    async fn expired_token_is_replaced_with_a_warning() {
        let mut state = created(None).await;
        if let Some(slot) = state.attr_mut("created_at") {
            *slot = Value::from("2020-01-01T00:00:00Z");
        }
        let p = plan(&state, PrivateState::default(), &config(None)).await;
        assert_eq!(p.requires_replace, vec![AttributePath::root("expires_at")]);
        assert!(p.diagnostics.0.iter().any(|d| d.summary == "Gateway token expired"));
    }

    #[tokio::test]
    async fn never_expiring_token_is_kept() {
        let mut c = config(None);
        if let Some(slot) = c.attr_mut("rotation_days") {
            *slot = Value::from(0);
        }
        let mut state = created(None).await;
        if let Some(slot) = state.attr_mut("created_at") {
            *slot = Value::from("2020-01-01T00:00:00Z");
        }
        let p = plan(&state, PrivateState::default(), &c).await;
        assert!(p.requires_replace.is_empty(), "{:?}", p.requires_replace);
        assert_eq!(p.planned.attr("expires_at"), &Value::Null);
    }

    #[tokio::test]
    async fn import_adopts_configuration_without_replacing() {
        let token = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL";
        let imported = GatewayToken.import(&ctx(), token).await;
        assert!(!imported.diagnostics.has_error());
        let p = plan(&imported.state, imported.private.clone(), &config(Some("v1"))).await;
        assert!(p.requires_replace.is_empty(), "{:?}", p.requires_replace);
        assert_eq!(p.planned.attr("token").as_str(), Some(token));
    }

    fn secret_block(key: Option<&str>, stored: Option<&str>) -> Value {
        let mut m = BTreeMap::new();
        m.insert("kubeconfig".to_owned(), Value::from("apiVersion: v1"));
        m.insert("namespace".to_owned(), Value::from("gw"));
        m.insert("name".to_owned(), Value::from("gateway-token"));
        m.insert("key".to_owned(), key.map_or(Value::Null, Value::from));
        m.insert("stored_fingerprint".to_owned(), stored.map_or(Value::Null, Value::from));
        Value::Object(m)
    }

    #[tokio::test]
    async fn secret_holding_the_token_plans_nothing() {
        let base = created(Some("v1")).await;
        let own = base.attr("fingerprint").as_str().unwrap().to_owned();
        let (state, p) = plan_with_secret_for(&base, Some(&own)).await;
        assert!(!p.diagnostics.has_error(), "{:?}", p.diagnostics);
        assert_eq!(p.planned, state, "no diff when the Secret holds the token");
        assert!(p.requires_replace.is_empty());
    }

    /// `base` with a `secret {}` block whose Secret was last seen holding
    /// `stored`, and the plan for the same configuration (Terraform's
    /// proposed state keeps prior computed values in the block).
    async fn plan_with_secret_for(base: &Value, stored: Option<&str>) -> (Value, ModifyPlanResponse) {
        let mut state = base.clone();
        if let Some(slot) = state.attr_mut(secret_store::BLOCK) {
            *slot = secret_block(Some("token"), stored);
        }
        let mut c = config(Some("v1"));
        if let Some(slot) = c.attr_mut(secret_store::BLOCK) {
            *slot = secret_block(None, None);
        }
        let mut prop = proposed(&c, &state);
        if let Some(slot) = prop.attr_mut(secret_store::BLOCK) {
            *slot = secret_block(Some("token"), stored);
        }
        let resp = crate::framework::plan::plan_resource(&GatewayToken, &ctx(), &state, &prop, &c).await;
        (state, resp)
    }

    #[tokio::test]
    async fn secret_changed_or_deleted_out_of_band_plans_an_update_to_the_same_token() {
        let base = created(Some("v1")).await;
        let own = base.attr("fingerprint").as_str().unwrap().to_owned();
        for stored in [Some("0000"), None] {
            let (state, p) = plan_with_secret_for(&base, stored).await;
            assert!(
                p.requires_replace.is_empty(),
                "never a new token: {:?}",
                p.requires_replace
            );
            assert_ne!(p.planned, state, "drift must show ({stored:?})");
            assert_eq!(
                p.planned.attr(secret_store::BLOCK).attr("stored_fingerprint").as_str(),
                Some(own.as_str())
            );
            assert_eq!(p.planned.attr("token"), state.attr("token"), "same token");
        }
    }

    #[tokio::test]
    async fn import_rejects_short_tokens() {
        assert!(GatewayToken.import(&ctx(), "short").await.diagnostics.has_error());
    }

    fn with_keepers(mut config: Value, keepers: Value) -> Value {
        if let Some(slot) = config.attr_mut("keepers") {
            *slot = keepers;
        }
        config
    }

    #[tokio::test]
    async fn unknown_keeper_value_plans_a_replacement_not_an_error() {
        let state = created(Some("v1")).await;
        let keepers = Value::Map(BTreeMap::from([("gateway".to_owned(), Value::unknown())]));
        let p = plan(&state, PrivateState::default(), &with_keepers(config(None), keepers)).await;
        assert!(!p.diagnostics.has_error(), "{:?}", p.diagnostics);
        assert_eq!(p.requires_replace, vec![AttributePath::root("keepers")]);
    }

    #[tokio::test]
    async fn null_keeper_values_are_kept() {
        let keepers = Value::Map(BTreeMap::from([("a".to_owned(), Value::Null)]));
        let c = with_keepers(config(None), keepers.clone());
        let p = plan(&Value::Null, PrivateState::default(), &c).await;
        let r = GatewayToken
            .create(
                &ctx(),
                ApplyRequest {
                    config: c.clone(),
                    planned: p.planned,
                    prior: Value::Null,
                    private: Default::default(),
                },
            )
            .await;
        assert!(!r.diagnostics.has_error(), "{:?}", r.diagnostics);
        assert_eq!(r.state.attr("keepers"), &keepers);
        let again = plan(&r.state, PrivateState::default(), &c).await;
        assert_eq!(again.planned, r.state);
    }

    #[tokio::test]
    async fn import_flag_ends_with_the_first_apply() {
        let token = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL";
        let imported = GatewayToken.import(&ctx(), token).await;
        // A configuration without keepers: still an in-place update, because
        // the import could not know rotation_days.
        let c = config(None);
        let p = plan(&imported.state, imported.private.clone(), &c).await;
        assert!(p.requires_replace.is_empty());
        assert_ne!(
            p.planned, imported.state,
            "the first plan after import must be an update"
        );
        let updated = GatewayToken
            .update(
                &ctx(),
                ApplyRequest {
                    config: c,
                    planned: p.planned.clone(),
                    prior: imported.state,
                    private: imported.private,
                },
            )
            .await;
        assert!(!updated.diagnostics.has_error(), "{:?}", updated.diagnostics);
        assert_eq!(updated.state, p.planned, "applied as planned");
        assert!(updated.private.get(IMPORTED).is_none());
        // From now on keepers behave as for any token.
        let later = plan(&updated.state, updated.private, &config(Some("v1"))).await;
        assert_eq!(later.requires_replace, vec![AttributePath::root("keepers")]);
    }
}
