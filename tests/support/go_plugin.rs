//! A client that starts and reaches the plugin the way go-plugin's client
//! (inside Terraform/OpenTofu) does: magic cookie, `PLUGIN_PROTOCOL_VERSIONS`,
//! a self-signed ECDSA P-521 client certificate (CA:true, SAN localhost) in
//! `PLUGIN_CLIENT_CERT`, the handshake line's certificate as the only trusted
//! root, ALPN h2. Shared by the integration tests and the handshake bench.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use terraform_provider_selfhost::plugin::proto::tfplugin6 as pb;
use terraform_provider_selfhost::plugin::proto::tfplugin6::provider_client::ProviderClient;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

pub const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
pub const STEP: Duration = Duration::from_secs(20);

/// A client certificate made the way go-plugin's `generateCert` makes it.
pub struct ClientIdentity {
    pub pem: String,
    pub der: CertificateDer<'static>,
    pub key: PrivatePkcs8KeyDer<'static>,
}

pub fn go_plugin_client_identity() -> ClientIdentity {
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
pub struct Plugin {
    pub child: Child,
    pub socket: PathBuf,
    pub server_cert: CertificateDer<'static>,
    /// Everything after the handshake line (must stay empty).
    pub stdout_rest: std::sync::mpsc::Receiver<String>,
}

impl Drop for Plugin {
    /// SIGTERM first, so the plugin removes its socket directory; SIGKILL
    /// if it is still there after a second.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            if wait_exit(&mut self.child, Duration::from_secs(1)).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

pub fn command(bin: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin);
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
pub fn start(bin: &Path, client: &ClientIdentity) -> Plugin {
    let mut child = command(
        bin,
        &[
            ("TF_PLUGIN_MAGIC_COOKIE", COOKIE),
            ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
            ("PLUGIN_CLIENT_CERT", &client.pem),
        ],
    )
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
pub fn client_tls(server_cert: &CertificateDer<'static>, auth: Option<&ClientIdentity>) -> rustls::ClientConfig {
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
pub async fn channel(
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
pub async fn raw_probe(socket: &Path, tls: rustls::ClientConfig) -> std::io::Result<usize> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let stream = UnixStream::connect(socket).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await?;
    let mut buf = [0u8; 64];
    tls.read(&mut buf).await
}

pub async fn get_schema(channel: Channel) -> Result<pb::get_provider_schema::Response, tonic::Status> {
    let mut client = ProviderClient::new(channel).max_decoding_message_size(256 << 20);
    client
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .map(tonic::Response::into_inner)
}

pub async fn health(channel: Channel) -> ServingStatus {
    let answer = HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(answer.status).unwrap()
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}
