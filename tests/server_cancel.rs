//! StopProvider (Ctrl-C) and `timeouts {}` cancel in-flight work promptly,
//! and what was created before the cancel stays in state.

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use terraform_provider_selfhost::framework::codec::msgpack;
use terraform_provider_selfhost::framework::private::PrivateState;
use terraform_provider_selfhost::framework::resource::{
    ApplyRequest, ApplyResponse, Context, DataSource, EphemeralResource, Provider, ProviderData, ReadRequest,
    ReadResponse, Resource,
};
use terraform_provider_selfhost::framework::server::{ApplyResourceChangeRequest, ProviderServer, RawValue};
use terraform_provider_selfhost::framework::timeouts::{self, Operation};
use terraform_provider_selfhost::framework::{Attribute, Block, Diagnostics, Schema, Value};

/// A resource whose create takes an hour unless cancelled; on cancel it
/// reports the half-made object plus an error, as real resources must.
struct Slow;

#[async_trait]
impl Resource for Slow {
    fn type_name(&self) -> &'static str {
        "test_slow"
    }
    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new()
                .attribute(Attribute::string("id").computed())
                .block(timeouts::block(&[(Operation::Create, Duration::from_secs(3600))])),
        )
    }
    async fn create(&self, ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        let mut resp = ApplyResponse::default();
        let mut state = req.planned;
        if let Some(id) = state.attr_mut("id") {
            *id = Value::from("half-made");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = ctx.cancel.cancelled() => resp.diagnostics.error("Interrupted", "create was cancelled"),
        }
        resp.state = state;
        resp
    }
    async fn read(&self, _ctx: &Context, req: ReadRequest) -> ReadResponse {
        ReadResponse {
            state: req.state,
            private: req.private,
            diagnostics: Diagnostics::new(),
        }
    }
    async fn update(&self, _ctx: &Context, req: ApplyRequest) -> ApplyResponse {
        ApplyResponse {
            state: req.planned,
            ..Default::default()
        }
    }
    async fn delete(&self, _ctx: &Context, _state: Value, _private: PrivateState) -> Diagnostics {
        Diagnostics::new()
    }
}

struct TestProvider;

#[async_trait]
impl Provider for TestProvider {
    fn type_name(&self) -> &'static str {
        "test"
    }
    fn schema(&self) -> Schema {
        Schema::default()
    }
    async fn configure(&self, _ctx: &Context, _config: Value) -> (Option<ProviderData>, Diagnostics) {
        (None, Diagnostics::new())
    }
    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![Arc::new(Slow)]
    }
    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        Vec::new()
    }
    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>> {
        Vec::new()
    }
}

fn planned(timeout: Option<&str>) -> Value {
    let t = timeout.map_or(Value::Null, |t| {
        Value::Object(BTreeMap::from([("create".to_owned(), Value::from(t))]))
    });
    Value::Object(BTreeMap::from([
        ("id".to_owned(), Value::unknown()),
        ("timeouts".to_owned(), t),
    ]))
}

async fn create(server: &ProviderServer, planned: Value) -> (Value, Diagnostics) {
    let ty = Slow.schema().value_type();
    let enc = |v: &Value| RawValue {
        msgpack: msgpack::encode(v, &ty).unwrap(),
        json: Vec::new(),
    };
    let mut config = planned.clone();
    if let Some(id) = config.attr_mut("id") {
        *id = Value::Null;
    }
    let resp = server
        .apply_resource_change(ApplyResourceChangeRequest {
            type_name: "test_slow".into(),
            prior_state: enc(&Value::Null),
            planned_state: enc(&planned),
            config: enc(&config),
            ..Default::default()
        })
        .await;
    (msgpack::decode(&resp.new_state.msgpack, &ty).unwrap(), resp.diagnostics)
}

#[tokio::test]
async fn stop_provider_cancels_in_flight_create_and_keeps_what_exists() {
    let server = Arc::new(ProviderServer::new(Arc::new(TestProvider)));
    let s2 = server.clone();
    let started = Instant::now();
    let task = tokio::spawn(async move { create(&s2, planned(None)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop();
    let (state, diags) = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(diags.has_error());
    assert_eq!(
        state.attr("id").as_str(),
        Some("half-made"),
        "partial state must reach Terraform"
    );
}

#[tokio::test]
async fn create_timeout_cancels() {
    let server = ProviderServer::new(Arc::new(TestProvider));
    let (state, diags) = tokio::time::timeout(Duration::from_secs(10), create(&server, planned(Some("300ms"))))
        .await
        .unwrap();
    assert!(diags.0.iter().any(|d| d.summary == "Interrupted"));
    assert_eq!(state.attr("id").as_str(), Some("half-made"));
}

#[tokio::test]
async fn later_calls_after_stop_are_not_cancelled() {
    let server = ProviderServer::new(Arc::new(TestProvider));
    server.stop();
    // A fresh operation gets a fresh token: it runs until its own timeout
    // instead of being cancelled at once by the earlier stop.
    let started = Instant::now();
    let (_, diags) = tokio::time::timeout(Duration::from_secs(10), create(&server, planned(Some("500ms"))))
        .await
        .unwrap();
    assert!(diags.has_error());
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
}
