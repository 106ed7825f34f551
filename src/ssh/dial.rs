//! Opening one authenticated connection: TCP (or a bastion's direct-tcpip
//! channel), the SSH handshake with the host-key check, authentication, all
//! retried with exponential backoff while the machine boots.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::Preferred;
use russh::client::{Config, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use tokio_util::sync::CancellationToken;

use super::connection::Connection;
use super::error::SshError;
use super::handler::ClientHandler;
use super::spec::{ConnectSpec, fingerprint, parse_private_key};

/// First pause between attempts; doubled each time up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// With no packet from the server for this long, send a keepalive; after
/// [`KEEPALIVE_MAX`] unanswered ones the connection is declared dead. So a
/// host that vanishes (no FIN, no RST) is noticed within
/// `(KEEPALIVE_MAX + 1) * KEEPALIVE_INTERVAL` = 12 s, and a command running on
/// it fails with [`SshError::Disconnected`] instead of hanging.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(4);
/// See [`KEEPALIVE_INTERVAL`].
pub const KEEPALIVE_MAX: usize = 2;

/// Connect to `spec`, retrying transient failures until `spec.retry_for`
/// has passed. `jump` gives the bastion's connection (or none) for each
/// attempt: the pool hands out the live one, re-dialing it if it died.
pub(crate) async fn dial<J, F>(spec: &ConnectSpec, cancel: &CancellationToken, jump: J) -> Result<Connection, SshError>
where
    J: Fn() -> F,
    F: Future<Output = Result<Option<Arc<Connection>>, SshError>>,
{
    let target = spec.target();
    // Everything that can be checked offline is checked before the first
    // packet, so a bad key fails at once instead of after the retries.
    let expected = spec.expected_host_key()?;
    let key = match &spec.auth.private_key {
        Some(k) => Some(Arc::new(parse_private_key(k.expose())?)),
        None => None,
    };
    if key.is_none() && !spec.auth.agent {
        return Err(SshError::NoCredentials { target });
    }
    let started = Instant::now();
    let mut backoff = INITIAL_BACKOFF;
    loop {
        // The jump host first, outside this attempt's time limit: it has its
        // own retries, and the pool re-dials it if it died.
        let jump = jump().await?;
        let remaining = spec.retry_for.saturating_sub(started.elapsed());
        let limit = spec.connect_timeout.min(remaining).max(Duration::from_millis(100));
        let one = tokio::time::timeout(limit, attempt(spec, &target, expected.as_ref(), key.clone(), jump));
        let result = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(SshError::Cancelled),
            r = one => r.unwrap_or_else(|_| Err(SshError::Connect {
                target: target.clone(),
                source: Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {limit:?}"),
                )),
            })),
        };
        let err = match result {
            Ok(conn) => return Ok(conn),
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(e),
        };
        let waited = started.elapsed();
        if waited + backoff >= spec.retry_for {
            return Err(SshError::Timeout {
                target,
                waited,
                last: Box::new(err),
            });
        }
        // Jitter so many hosts booting together do not knock in lockstep;
        // the clock's nanoseconds are random enough for that.
        let jitter = backoff / 4 * (started.elapsed().subsec_nanos() % 1000) / 1000;
        tracing::debug!(host = %target, error = %err, retry_in = ?(backoff + jitter), "not reachable yet");
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(SshError::Cancelled),
            () = tokio::time::sleep(backoff + jitter) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// russh's defaults plus keepalives, and the expected key's algorithm
/// negotiated first: a server with several host keys (ed25519, ecdsa, rsa)
/// presents the one of the first algorithm both sides know, so a pinned
/// ecdsa key would otherwise be compared with the server's ed25519 key.
fn client_config(expected: Option<&PublicKey>) -> Arc<Config> {
    let mut preferred = Preferred::default();
    if let Some(want) = expected.map(PublicKey::algorithm) {
        let mut keys = preferred.key.to_vec();
        // Stable: the matching algorithms move to the front in their order.
        let want_rsa = want.clone().is_rsa();
        keys.sort_by_key(|a| !(a == &want || (want_rsa && a.clone().is_rsa())));
        preferred.key = Cow::Owned(keys);
    }
    Arc::new(Config {
        keepalive_interval: Some(KEEPALIVE_INTERVAL),
        keepalive_max: KEEPALIVE_MAX,
        nodelay: true,
        preferred,
        ..Config::default()
    })
}

/// One attempt: transport, handshake, host-key check, authentication.
async fn attempt(
    spec: &ConnectSpec,
    target: &str,
    expected: Option<&PublicKey>,
    key: Option<Arc<PrivateKey>>,
    jump: Option<Arc<Connection>>,
) -> Result<Connection, SshError> {
    let connect_err = |e: Box<dyn std::error::Error + Send + Sync>| SshError::Connect {
        target: target.to_owned(),
        source: e,
    };
    let seen = Arc::new(Mutex::new(None));
    let handler = ClientHandler {
        expected: expected.cloned(),
        seen: seen.clone(),
    };
    let handshake = match &jump {
        None => {
            let tcp = tokio::net::TcpStream::connect((spec.host.as_str(), spec.port))
                .await
                .map_err(|e| connect_err(Box::new(e)))?;
            // Small request/response packets: do not wait for Nagle.
            let _ = tcp.set_nodelay(true);
            russh::client::connect_stream(client_config(expected), tcp, handler).await
        }
        Some(jump) => {
            let channel = jump
                .open_direct_tcpip(&spec.host, spec.port)
                .await
                .map_err(|e| connect_err(Box::new(e)))?;
            russh::client::connect_stream(client_config(expected), channel.into_stream(), handler).await
        }
    };
    let seen_key = seen.lock().ok().and_then(|mut s| s.take());
    let mut handle = match handshake {
        Ok(h) => h,
        Err(russh::Error::UnknownKey) => {
            return Err(match (expected, seen_key) {
                (Some(exp), Some(seen)) => SshError::HostKeyMismatch {
                    host: spec.host_port(),
                    expected: fingerprint(exp),
                    seen: fingerprint(&seen),
                },
                _ => connect_err(Box::new(russh::Error::UnknownKey)),
            });
        }
        Err(e) => return Err(connect_err(Box::new(e))),
    };
    let Some(host_key) = seen_key else {
        return Err(connect_err(
            "the server completed the handshake without a host key".into(),
        ));
    };
    authenticate(&mut handle, spec, target, key).await?;
    tracing::info!(host = %target, "connected to {target} (host key {})", fingerprint(&host_key));
    Ok(Connection::new(spec, handle, host_key, jump))
}

/// Offer the private key, then each agent key; the first accepted wins.
async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    spec: &ConnectSpec,
    target: &str,
    key: Option<Arc<PrivateKey>>,
) -> Result<(), SshError> {
    let broken = |e: russh::Error| SshError::Connect {
        target: target.to_owned(),
        source: Box::new(e),
    };
    let mut tried = Vec::new();
    if let Some(key) = key {
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
        tried.push(format!("private key {}", fingerprint(key.public_key())));
        let result = handle
            .authenticate_publickey(spec.user.as_str(), PrivateKeyWithHashAlg::new(key, hash))
            .await
            .map_err(broken)?;
        if result.success() {
            return Ok(());
        }
    }
    if spec.auth.agent {
        let mut agent = connect_agent(spec).await?;
        let identities = agent.request_identities().await.map_err(|e| SshError::Agent {
            problem: "listing the agent's keys failed".to_owned(),
            source: Some(Box::new(e)),
        })?;
        let keys: Vec<PublicKey> = identities
            .into_iter()
            .filter_map(|id| match id {
                AgentIdentity::PublicKey { key, .. } => Some(key),
                // Certificates need a CA-aware server setup we do not manage.
                AgentIdentity::Certificate { .. } => None,
            })
            .collect();
        if keys.is_empty() {
            tried.push("agent (it holds no keys)".to_owned());
        }
        for key in keys {
            let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
            tried.push(format!("agent key {}", fingerprint(&key)));
            match handle
                .authenticate_publickey_with(spec.user.as_str(), key, hash, &mut agent)
                .await
            {
                Ok(r) if r.success() => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    return Err(SshError::Agent {
                        problem: "the agent did not sign the authentication request".to_owned(),
                        source: Some(Box::new(e)),
                    });
                }
            }
        }
    }
    Err(SshError::Auth {
        target: target.to_owned(),
        tried: tried.join(", "),
    })
}

async fn connect_agent(spec: &ConnectSpec) -> Result<AgentClient<tokio::net::UnixStream>, SshError> {
    let agent_err = |problem: &str, e: russh::keys::Error| SshError::Agent {
        problem: problem.to_owned(),
        source: Some(Box::new(e)),
    };
    match &spec.auth.agent_socket {
        Some(path) => AgentClient::connect_uds(path)
            .await
            .map_err(|e| agent_err(&format!("cannot connect to {}", path.display()), e)),
        None => AgentClient::connect_env().await.map_err(|e| match e {
            russh::keys::Error::EnvVar(_) => SshError::Agent {
                problem: "SSH_AUTH_SOCK is not set; start an agent or use a private key".to_owned(),
                source: None,
            },
            russh::keys::Error::BadAuthSock => SshError::Agent {
                problem: "SSH_AUTH_SOCK names a socket that does not exist".to_owned(),
                source: None,
            },
            e => agent_err("cannot connect to the agent at SSH_AUTH_SOCK", e),
        }),
    }
}

/// The strongest RSA signature hash the server announced (rsa-sha2-512, then
/// -256); `None` (legacy ssh-rsa) only for servers that announce nothing.
async fn rsa_hash(handle: &Handle<ClientHandler>, is_rsa: bool) -> Option<russh::keys::HashAlg> {
    if !is_rsa {
        return None;
    }
    handle.best_supported_rsa_hash().await.ok().flatten().flatten()
}
