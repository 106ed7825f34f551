//! Serving the plugin: check the environment the CLI sets, bind the socket,
//! print the handshake line, then run the gRPC services until the CLI asks
//! us to shut down.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

use crate::framework::resource::Provider;
use crate::framework::server::ProviderServer;

use super::controller::Controller;
use super::handshake::{self, HandshakeError, HandshakeLine};
use super::listener::{self, PluginListener};
use super::proto::plugin::grpc_controller_server::GrpcControllerServer;
use super::proto::plugin::grpc_stdio_server::GrpcStdioServer;
use super::proto::tfplugin6::provider_server::ProviderServer as ProviderGrpcServer;
use super::provider_service::ProviderService;
use super::stdio::Stdio;
use super::tls::{self, ServerIdentity, TlsSetupError};

/// gRPC message limit both ways: schemas and large states exceed tonic's
/// 4 MiB default; HashiCorp's Go servers allow 256 MiB.
pub const MAX_MESSAGE_SIZE: usize = 256 << 20;

/// The name go-plugin's client health-checks.
pub const HEALTH_SERVICE: &str = "plugin";

/// After a shutdown request, connections get this long to close before we
/// exit anyway (the CLI kills us after about 2 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How to serve.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// Serve without TLS when the CLI sends no client certificate. Only
    /// for debugging: it is off unless asked for explicitly.
    pub allow_plaintext: bool,
}

/// What the CLI put in our environment.
#[derive(Clone, Debug, Default)]
pub struct PluginEnv {
    /// `TF_PLUGIN_MAGIC_COOKIE`.
    pub magic_cookie: Option<String>,
    /// `PLUGIN_PROTOCOL_VERSIONS`.
    pub protocol_versions: Option<String>,
    /// `PLUGIN_CLIENT_CERT` (PEM).
    pub client_cert: Option<String>,
    /// `PLUGIN_UNIX_SOCKET_DIR`.
    pub socket_dir: Option<PathBuf>,
}

impl PluginEnv {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        PluginEnv {
            magic_cookie: std::env::var(handshake::MAGIC_COOKIE_KEY).ok(),
            protocol_versions: std::env::var(handshake::PROTOCOL_VERSIONS_KEY).ok(),
            client_cert: std::env::var(tls::CLIENT_CERT_KEY).ok(),
            socket_dir: std::env::var_os(listener::SOCKET_DIR_KEY)
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
        }
    }
}

/// Why serving failed. Display texts are for the user on stderr.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Not started by a CLI, or no common protocol version.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// TLS could not be set up (or would be off without being asked).
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),
    /// The socket could not be bound.
    #[error("cannot listen on a unix socket")]
    Listen(#[source] io::Error),
    /// The handshake line could not be written.
    #[error("cannot write the handshake line to stdout")]
    Stdout(#[source] io::Error),
    /// The gRPC server failed.
    #[error("the gRPC server failed")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `provider` to the CLI that started this process; returns when the
/// CLI shuts us down.
///
/// # Errors
/// See [`ServeError`]; handshake and TLS errors come before anything is
/// written to stdout.
pub fn serve(provider: Arc<dyn Provider>, env: PluginEnv, opts: &ServeOptions) -> Result<(), ServeError> {
    handshake::check_cookie(env.magic_cookie.as_deref())?;
    let version = handshake::negotiate_version(env.protocol_versions.as_deref())?;
    let client_cert = tls::client_cert_from_env(env.client_cert.as_deref(), opts.allow_plaintext)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(run(provider, version, client_cert, env.socket_dir))
}

async fn run(
    provider: Arc<dyn Provider>,
    version: u32,
    client_cert: Option<rustls::pki_types::CertificateDer<'static>>,
    socket_dir: Option<PathBuf>,
) -> Result<(), ServeError> {
    let (tls_config, server_cert) = match client_cert {
        Some(client) => {
            let identity = ServerIdentity::generate()?;
            let config = tls::server_config(&identity, client)?;
            (Some(Arc::new(config)), Some(identity.cert.to_vec()))
        }
        None => {
            tracing::warn!("serving WITHOUT TLS (--insecure-plaintext): any local process of this user can connect");
            (None, None)
        }
    };
    let listener = PluginListener::bind(socket_dir.as_deref()).map_err(ServeError::Listen)?;
    let line = HandshakeLine {
        protocol_version: version,
        network: "unix",
        address: listener.path().display().to_string(),
        server_cert_der: server_cert,
    };

    let shutdown = CancellationToken::new();
    handle_signals(shutdown.clone()).map_err(ServeError::Runtime)?;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(HEALTH_SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    let provider_service = ProviderGrpcServer::new(ProviderService::new(Arc::new(ProviderServer::new(provider))))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let router = Server::builder()
        .add_service(health_service)
        .add_service(GrpcControllerServer::new(Controller::new(shutdown.clone())))
        .add_service(GrpcStdioServer::new(Stdio::new(shutdown.clone())))
        .add_service(provider_service);

    let (incoming, socket_dir_guard) = listener.incoming(tls_config, shutdown.clone());
    write_handshake_line(&line).map_err(ServeError::Stdout)?;
    tracing::debug!(address = %line.address, protocol = version, "plugin serving");

    let server = router.serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::debug!("connections still open after shutdown; exiting anyway"),
    }
    drop(socket_dir_guard);
    Ok(())
}

/// The only thing this process ever writes to stdout.
fn write_handshake_line(line: &HandshakeLine) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// Ctrl-C sends SIGINT to the whole process group, provider included: the
/// CLI handles it and calls StopProvider, so we must not die on it (as
/// go-plugin plugins don't). SIGTERM shuts down gracefully.
fn handle_signals(shutdown: CancellationToken) -> io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        while interrupt.recv().await.is_some() {
            tracing::debug!("interrupt received; ignoring it, the CLI stops the provider");
        }
    });
    tokio::spawn(async move {
        if terminate.recv().await.is_some() {
            tracing::debug!("SIGTERM received; shutting down");
            shutdown.cancel();
        }
    });
    Ok(())
}
