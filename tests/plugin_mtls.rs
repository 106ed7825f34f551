//! The real binary, started as the CLI starts it, reached over its unix
//! socket with mutual TLS exactly as go-plugin's client does (see
//! `support/go_plugin.rs`).

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/go_plugin.rs"]
mod go_plugin;

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use go_plugin::*;
use terraform_provider_selfhost::plugin::proto::plugin::Empty;
use terraform_provider_selfhost::plugin::proto::plugin::grpc_controller_client::GrpcControllerClient;
use terraform_provider_selfhost::plugin::proto::plugin::grpc_stdio_client::GrpcStdioClient;
use tonic_health::pb::health_check_response::ServingStatus;

const BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-selfhost");

fn bin() -> &'static Path {
    Path::new(BIN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_only_the_client_holding_the_cli_certificate() {
    let cli = go_plugin_client_identity();
    let plugin = start(bin(), &cli);

    // (a) No client certificate: refused.
    let no_cert = client_tls(&plugin.server_cert, None);
    let probe = tokio::time::timeout(STEP, raw_probe(&plugin.socket, no_cert.clone()))
        .await
        .unwrap();
    let err = probe.expect_err("a client without a certificate must be refused");
    assert!(err.to_string().contains("CertificateRequired"), "{err}");
    let rpc = tokio::time::timeout(STEP, async {
        let ch = channel(&plugin.socket, no_cert, Arc::default()).await.ok()?;
        get_schema(ch).await.ok()
    })
    .await
    .unwrap();
    assert!(
        rpc.is_none(),
        "GetProviderSchema answered a client without a certificate"
    );

    // (b) A different P-521 certificate (same shape, other key): refused.
    let intruder = go_plugin_client_identity();
    let other = client_tls(&plugin.server_cert, Some(&intruder));
    let probe = tokio::time::timeout(STEP, raw_probe(&plugin.socket, other.clone()))
        .await
        .unwrap();
    let err = probe.expect_err("a client with another certificate must be refused");
    assert!(err.to_string().contains("AccessDenied"), "{err}");
    let rpc = tokio::time::timeout(STEP, async {
        let ch = channel(&plugin.socket, other, Arc::default()).await.ok()?;
        get_schema(ch).await.ok()
    })
    .await
    .unwrap();
    assert!(
        rpc.is_none(),
        "GetProviderSchema answered a client with another certificate"
    );

    // (c) The CLI's certificate: served, over h2.
    let alpn = Arc::new(Mutex::new(None));
    let ch = tokio::time::timeout(
        STEP,
        channel(
            &plugin.socket,
            client_tls(&plugin.server_cert, Some(&cli)),
            alpn.clone(),
        ),
    )
    .await
    .unwrap()
    .expect("the CLI's certificate must be accepted");
    assert_eq!(alpn.lock().unwrap().as_deref(), Some(&b"h2"[..]), "ALPN");
    assert_eq!(health(ch.clone()).await, ServingStatus::Serving);
    let schema = tokio::time::timeout(STEP, get_schema(ch.clone()))
        .await
        .unwrap()
        .unwrap();
    assert!(schema.provider.is_some(), "provider schema");
    let caps = schema.server_capabilities.expect("server capabilities");
    assert!(caps.plan_destroy, "plan_destroy advertised");
    assert!(schema.diagnostics.is_empty(), "{:?}", schema.diagnostics);
    // Every schema decodes to attributes whose types are JSON.
    for (name, s) in schema.resource_schemas.iter().chain(&schema.data_source_schemas) {
        for a in &s.block.as_ref().unwrap().attributes {
            serde_json::from_slice::<serde_json::Value>(&a.r#type)
                .unwrap_or_else(|e| panic!("{name}.{}: type is not JSON: {e}", a.name));
        }
    }

    // The CLI's Ctrl-C reaches the whole process group; the plugin must
    // survive it (the CLI stops it with StopProvider/Shutdown).
    let pid = plugin.child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(health(ch).await, ServingStatus::Serving, "still serving after SIGINT");

    assert!(
        plugin.stdout_rest.try_recv().is_err(),
        "nothing but the handshake line may reach stdout"
    );

    // SIGTERM (what Drop sends) shuts down cleanly, socket directory included.
    let socket_dir = plugin.socket.parent().unwrap().to_owned();
    drop(plugin);
    assert!(!socket_dir.exists(), "socket directory left behind after SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_shutdown_ends_the_process_and_removes_the_socket() {
    let cli = go_plugin_client_identity();
    let mut plugin = start(bin(), &cli);
    let ch = tokio::time::timeout(
        STEP,
        channel(
            &plugin.socket,
            client_tls(&plugin.server_cert, Some(&cli)),
            Arc::default(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    // go-plugin's client keeps a stdio stream open; it must not hold up shutdown.
    let mut stdio = GrpcStdioClient::new(ch.clone())
        .stream_stdio(())
        .await
        .unwrap()
        .into_inner();
    GrpcControllerClient::new(ch).shutdown(Empty {}).await.unwrap();
    let ended = tokio::time::timeout(STEP, stdio.message()).await.unwrap();
    assert!(
        matches!(ended, Ok(None) | Err(_)),
        "stdio stream carried data: {ended:?}"
    );

    let status = wait_exit(&mut plugin.child, Duration::from_secs(5)).expect("plugin still running 5 s after Shutdown");
    assert!(status.success(), "{status}");
    assert!(!plugin.socket.exists(), "socket left behind");
    assert!(
        !plugin.socket.parent().unwrap().exists(),
        "socket directory left behind"
    );
}

/// Runs the binary with `env`, returns (status, stdout, stderr).
fn run_to_exit(env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let mut child = command(bin(), env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, STEP).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("the plugin kept running with env {env:?}");
    });
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status, out, err)
}

#[test]
fn without_the_cookie_it_explains_itself_and_exits_1() {
    let (status, out, err) = run_to_exit(&[]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(out, "", "stdout must stay empty");
    assert!(err.contains("plugin for Terraform/OpenTofu"), "{err}");
    assert!(err.contains("terraform init"), "{err}");
}

#[test]
fn without_a_client_certificate_it_refuses_to_serve() {
    let (status, out, err) = run_to_exit(&[("TF_PLUGIN_MAGIC_COOKIE", COOKIE), ("PLUGIN_PROTOCOL_VERSIONS", "5,6")]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(out, "", "stdout must stay empty");
    assert!(err.contains("PLUGIN_CLIENT_CERT"), "{err}");
}

#[test]
fn a_client_without_protocol_6_gets_a_clear_message() {
    let cli = go_plugin_client_identity();
    let (status, out, err) = run_to_exit(&[
        ("TF_PLUGIN_MAGIC_COOKIE", COOKIE),
        ("PLUGIN_PROTOCOL_VERSIONS", "4,5"),
        ("PLUGIN_CLIENT_CERT", &cli.pem),
    ]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(out, "", "stdout must stay empty");
    assert!(err.contains("protocol 6"), "{err}");
    assert!(err.contains("4,5"), "{err}");
}
