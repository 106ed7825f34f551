//! The provider server driven through raw msgpack values, the way the wire
//! layer calls it: the in-process tier below the real-CLI acceptance tests.

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use terraform_provider_selfhost::framework::codec::msgpack;
use terraform_provider_selfhost::framework::server::{
    ApplyResourceChangeRequest, ClientCapabilities, PlanResourceChangeRequest, ProviderServer, RawState, RawValue,
};
use terraform_provider_selfhost::framework::{AttributePath, Type, Value};
use terraform_provider_selfhost::resources::provider;

const TOKEN: &str = "selfhost_gateway_token";

fn server() -> ProviderServer {
    ProviderServer::new(provider())
}

fn ty(s: &ProviderServer) -> Type {
    s.schemas().resources[TOKEN].value_type()
}

fn raw(v: &Value, t: &Type) -> RawValue {
    RawValue {
        msgpack: msgpack::encode(v, t).unwrap(),
        json: Vec::new(),
    }
}

fn value(r: &RawValue, t: &Type) -> Value {
    msgpack::decode(&r.msgpack, t).unwrap()
}

fn config(pairs: &[(&str, Value)]) -> Value {
    let mut m: BTreeMap<String, Value> = [
        "id",
        "length",
        "alphabet",
        "rotation_days",
        "keepers",
        "token",
        "fingerprint",
        "created_at",
        "expires_at",
    ]
    .iter()
    .map(|k| (k.to_string(), Value::Null))
    .collect();
    for (k, v) in pairs {
        m.insert(k.to_string(), v.clone());
    }
    Value::Object(m)
}

/// What the CLI proposes: the configuration, with prior values where the
/// configuration leaves a computed attribute null.
fn proposed(config: &Value, prior: &Value) -> Value {
    let (Value::Object(c), Value::Object(p)) = (config, prior) else {
        return config.clone();
    };
    Value::Object(
        c.iter()
            .map(|(k, v)| (k.clone(), if v.is_null() { p[k].clone() } else { v.clone() }))
            .collect(),
    )
}

async fn plan(s: &ProviderServer, prior: &Value, config: &Value) -> (Value, Vec<AttributePath>) {
    let t = ty(s);
    let resp = s
        .plan_resource_change(PlanResourceChangeRequest {
            type_name: TOKEN.into(),
            prior_state: raw(prior, &t),
            proposed_new_state: raw(&proposed(config, prior), &t),
            config: raw(config, &t),
            ..Default::default()
        })
        .await;
    assert!(!resp.diagnostics.has_error(), "{:?}", resp.diagnostics);
    (value(&resp.planned_state, &t), resp.requires_replace)
}

async fn apply(s: &ProviderServer, prior: &Value, planned: &Value, config: &Value) -> Value {
    let t = ty(s);
    let resp = s
        .apply_resource_change(ApplyResourceChangeRequest {
            type_name: TOKEN.into(),
            prior_state: raw(prior, &t),
            planned_state: raw(planned, &t),
            config: raw(config, &t),
            ..Default::default()
        })
        .await;
    assert!(!resp.diagnostics.has_error(), "{:?}", resp.diagnostics);
    value(&resp.new_state, &t)
}

#[tokio::test]
async fn validate_names_the_attribute() {
    let s = server();
    let t = ty(&s);
    let d = s
        .validate_resource_config(
            TOKEN,
            raw(&config(&[("length", Value::from(8))]), &t),
            ClientCapabilities::default(),
        )
        .await;
    assert!(d.has_error());
    assert_eq!(d.0[0].attribute, Some(AttributePath::root("length")));
    assert!(d.0[0].detail.contains("between 16 and 512"), "{}", d.0[0].detail);

    let d = s
        .validate_resource_config(
            TOKEN,
            raw(&config(&[("token", Value::from("x"))]), &t),
            ClientCapabilities::default(),
        )
        .await;
    assert_eq!(d.0[0].attribute, Some(AttributePath::root("token")));
    assert_eq!(d.0[0].summary, "Value set on a computed attribute");

    let d = s
        .validate_resource_config(TOKEN, raw(&config(&[]), &t), ClientCapabilities::default())
        .await;
    assert!(d.0.is_empty(), "{d:?}");
}

#[tokio::test]
async fn create_then_plan_again_is_empty_then_keepers_replace_then_destroy() {
    let s = server();
    let keepers = |v: &str| Value::Map(BTreeMap::from([("gateway".to_owned(), Value::from(v))]));
    let c1 = config(&[("keepers", keepers("v1"))]);
    let (planned, rr) = plan(&s, &Value::Null, &c1).await;
    assert!(rr.is_empty());
    assert!(planned.attr("token").is_unknown());
    assert_eq!(planned.attr("length"), &Value::from(48));
    let state = apply(&s, &Value::Null, &planned, &c1).await;
    assert!(state.is_wholly_known());
    assert_eq!(state.attr("token").as_str().map(str::len), Some(48));

    let (again, rr) = plan(&s, &state, &c1).await;
    assert_eq!(again, state, "second plan must be empty");
    assert!(rr.is_empty());

    let c2 = config(&[("keepers", keepers("v2"))]);
    let (_, rr) = plan(&s, &state, &c2).await;
    assert_eq!(rr, vec![AttributePath::root("keepers")]);

    let t = ty(&s);
    let resp = s
        .plan_resource_change(PlanResourceChangeRequest {
            type_name: TOKEN.into(),
            prior_state: raw(&state, &t),
            proposed_new_state: raw(&Value::Null, &t),
            config: raw(&Value::Null, &t),
            ..Default::default()
        })
        .await;
    assert_eq!(value(&resp.planned_state, &t), Value::Null);
    let gone = apply(&s, &state, &Value::Null, &Value::Null).await;
    assert_eq!(gone, Value::Null);
}

#[tokio::test]
async fn rotation_change_updates_expiry_in_place_exactly_as_planned() {
    let s = server();
    let c1 = config(&[]);
    let (planned, _) = plan(&s, &Value::Null, &c1).await;
    let state = apply(&s, &Value::Null, &planned, &c1).await;
    let c2 = config(&[("rotation_days", Value::from(30))]);
    let (planned, rr) = plan(&s, &state, &c2).await;
    assert!(rr.is_empty());
    assert!(
        planned.is_wholly_known(),
        "expiry is computable at plan time: {planned:?}"
    );
    let updated = apply(&s, &state, &planned, &c2).await;
    assert_eq!(updated, planned);
    assert_eq!(updated.attr("token"), state.attr("token"));
}

#[tokio::test]
async fn unknown_type_is_a_clear_error() {
    let s = server();
    let d = s
        .validate_resource_config("selfhost_nope", RawValue::default(), ClientCapabilities::default())
        .await;
    assert!(d.0[0].detail.contains("selfhost_nope"));
}

#[tokio::test]
async fn upgrade_state_drops_removed_attributes() {
    let s = server();
    let json = br#"{"id":"abc","length":48,"alphabet":"alphanumeric","rotation_days":90,"keepers":null,
        "token":"t","fingerprint":"f","created_at":"2026-01-01T00:00:00Z","expires_at":null,"gone":"x"}"#;
    let (raw_state, d) = s
        .upgrade_resource_state(
            TOKEN,
            0,
            RawState {
                json: json.to_vec(),
                ..Default::default()
            },
        )
        .await;
    assert!(!d.has_error(), "{d:?}");
    let v = value(&raw_state.unwrap(), &ty(&s));
    assert_eq!(v.attr("id").as_str(), Some("abc"));
    let (_, d) = s
        .upgrade_resource_state(
            TOKEN,
            7,
            RawState {
                json: json.to_vec(),
                ..Default::default()
            },
        )
        .await;
    assert!(d.0[0].summary.contains("Unsupported state version"));
}

#[tokio::test]
async fn schemas_are_sound() {
    let s = server();
    let schemas = s.schemas();
    assert!(schemas.diagnostics.0.is_empty(), "{:?}", schemas.diagnostics);
    assert!(schemas.resources[TOKEN].block.get_attribute("token").unwrap().sensitive);
    assert!(schemas.ephemeral_resources.contains_key(TOKEN));
}
