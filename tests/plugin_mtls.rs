//! The real binary, started as the CLI starts it, reached over its unix
//! socket with mutual TLS exactly as go-plugin's client does: a self-signed
//! ECDSA P-521 client certificate (CA:true, SAN localhost) passed in
//! `PLUGIN_CLIENT_CERT`, the server certificate from the handshake line as
//! the only trusted root, ALPN h2.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use terraform_provider_selfhost::plugin::proto::plugin::Empty;
use terraform_provider_selfhost::plugin::proto::plugin::grpc_controller_client::GrpcControllerClient;
use terraform_provider_selfhost::plugin::proto::plugin::grpc_stdio_client::GrpcStdioClient;
use terraform_provider_selfhost::plugin::proto::tfplugin6 as pb;
use terraform_provider_selfhost::plugin::proto::tfplugin6::provider_client::ProviderClient;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-selfhost");
const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
const STEP: Duration = Duration::from_secs(20);

/// A client certificate made the way go-plugin's `generateCert` makes it.
struct ClientIdentity {
    pem: String,
    der: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

fn go_plugin_client_identity() -> ClientIdentity {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "localhost");
    dn.push(rcgen::DnType::OrganizationName, "HashiCorp");
    params.distinguished_name = dn;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params.self_signed(&key).unwrap();
    ClientIdentity {
        pem: cert.pem(),
        der: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
    }
}

/// The running plugin process.
struct Plugin {
    child: Child,
    socket: PathBuf,
    server_cert: CertificateDer<'static>,
    /// Everything after the handshake line (must stay empty).
    stdout_rest: std::sync::mpsc::Receiver<String>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for key in [
        "TF_PLUGIN_MAGIC_COOKIE",
        "PLUGIN_PROTOCOL_VERSIONS",
        "PLUGIN_CLIENT_CERT",
        "PLUGIN_UNIX_SOCKET_DIR",
        "TF_LOG",
        "TF_LOG_PROVIDER",
    ] {
        cmd.env_remove(key);
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// Starts the plugin as the CLI does and parses its handshake line.
fn start(client: &ClientIdentity) -> Plugin {
    let mut child = command(&[
        ("TF_PLUGIN_MAGIC_COOKIE", COOKIE),
        ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
        ("PLUGIN_CLIENT_CERT", &client.pem),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx.recv_timeout(STEP).expect("no handshake line within the time limit");
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(fields.len(), 6, "handshake line {line:?}");
    assert_eq!(fields[0], "1", "core protocol version");
    assert_eq!(fields[1], "6", "negotiated protocol version");
    assert_eq!(fields[2], "unix");
    assert_eq!(fields[4], "grpc");
    assert!(!fields[5].ends_with('='), "certificate must be base64 without padding");
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fields[5])
        .expect("certificate field is standard base64 without padding");
    Plugin {
        child,
        socket: PathBuf::from(fields[3]),
        server_cert: CertificateDer::from(der),
        stdout_rest: rx,
    }
}

/// A go-plugin-like client TLS config: the server certificate as the only
/// root, ALPN h2, optionally a client certificate.
fn client_tls(server_cert: &CertificateDer<'static>, auth: Option<&ClientIdentity>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_cert.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match auth {
        Some(id) => builder
            .with_client_auth_cert(vec![id.der.clone()], PrivateKeyDer::Pkcs8(id.key.clone_key()))
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    config
}

/// A gRPC channel over TLS on the unix socket; records the negotiated ALPN.
async fn channel(
    socket: &Path,
    tls: rustls::ClientConfig,
    alpn: Arc<Mutex<Option<Vec<u8>>>>,
) -> Result<Channel, tonic::transport::Error> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let socket = socket.to_owned();
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let (connector, socket, alpn) = (connector.clone(), socket.clone(), alpn.clone());
            async move {
                let stream = UnixStream::connect(&socket).await?;
                let tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), stream)
                    .await?;
                *alpn.lock().unwrap() = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
}

/// Opens TLS and reads what the server sends first: with a refused client
/// certificate this is where its alert arrives (in TLS 1.3 the server
/// checks the client certificate after the client considers the handshake
/// done). Writing first would race the server closing the socket.
async fn raw_probe(socket: &Path, tls: rustls::ClientConfig) -> std::io::Result<usize> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let stream = UnixStream::connect(socket).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await?;
    let mut buf = [0u8; 64];
    tls.read(&mut buf).await
}

async fn get_schema(channel: Channel) -> Result<pb::get_provider_schema::Response, tonic::Status> {
    let mut client = ProviderClient::new(channel).max_decoding_message_size(256 << 20);
    client
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .map(tonic::Response::into_inner)
}

async fn health(channel: Channel) -> ServingStatus {
    let answer = HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(answer.status).unwrap()
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_only_the_client_holding_the_cli_certificate() {
    let cli = go_plugin_client_identity();
    let plugin = start(&cli);

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_shutdown_ends_the_process_and_removes_the_socket() {
    let cli = go_plugin_client_identity();
    let mut plugin = start(&cli);
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
    let mut child = command(env)
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
