//! The SSH layer's one error type. Messages are short and say what to do;
//! the underlying cause is reachable through `source()` and never repeated in
//! the message (so a chain printer shows each fact once).

use std::time::Duration;

/// A boxed cause, as russh and std give them.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while connecting to a host or running a
/// command on it. `target` strings read `user@host:port` (plus `via ...` for
/// a bastion) so every message names the machine it is about.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// One connection attempt failed (refused, unreachable, handshake error).
    #[error("cannot connect to {target}")]
    Connect {
        /// `user@host:port`
        target: String,
        /// What the network or the SSH handshake said.
        #[source]
        source: Cause,
    },

    /// The host did not become reachable before the spec's deadline.
    #[error(
        "gave up connecting to {target} after {waited:?}; check that the host is up and that port is reachable, or raise the connect timeout"
    )]
    Timeout {
        /// `user@host:port`
        target: String,
        /// How long attempts were made.
        waited: Duration,
        /// The last attempt's failure.
        #[source]
        last: Box<SshError>,
    },

    /// The server refused every credential offered.
    #[error("authentication failed for {target} (tried: {tried}); check that the key is in the user's authorized_keys")]
    Auth {
        /// `user@host:port`
        target: String,
        /// The methods and keys offered, e.g. `private key SHA256:..., agent key SHA256:...`.
        tried: String,
    },

    /// The server's host key differs from the pinned or recorded one.
    #[error(
        "host key mismatch for {host}: expected {expected}, the server presented {seen}. \
         Someone may be intercepting the connection, or the host was reinstalled. \
         Verify the host's key out of band (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on it); \
         if the change is legitimate, update `host_key` (or remove the recorded key from the state)"
    )]
    HostKeyMismatch {
        /// `host:port`
        host: String,
        /// `SHA256:...` fingerprint of the expected key.
        expected: String,
        /// `SHA256:...` fingerprint of the key the server presented.
        seen: String,
    },

    /// A pinned or recorded host key is not an OpenSSH public key line.
    #[error("host key for {host} is not an OpenSSH public key line (\"ssh-ed25519 AAAA...\"): {problem}")]
    HostKeyFormat {
        /// `host:port`
        host: String,
        /// What is wrong with it (never the key text itself).
        problem: String,
    },

    /// The private key could not be used. Never contains the key.
    #[error("private key: {problem}")]
    KeyFormat {
        /// What is wrong with it, e.g. "passphrase-protected keys are not supported".
        problem: String,
        /// The decoder's error, when there is one.
        #[source]
        source: Option<Cause>,
    },

    /// The SSH agent could not be reached or used.
    #[error("ssh agent: {problem}")]
    Agent {
        /// What went wrong, e.g. "SSH_AUTH_SOCK is not set".
        problem: String,
        /// The agent client's error, when there is one.
        #[source]
        source: Option<Cause>,
    },

    /// Neither a private key nor the agent was configured.
    #[error("no SSH credentials for {target}: set a private key or enable the agent")]
    NoCredentials {
        /// `user@host:port`
        target: String,
    },

    /// The connection dropped (server gone, keepalive unanswered) while in use.
    #[error("connection to {target} was lost; the next use reconnects")]
    Disconnected {
        /// `user@host:port`
        target: String,
    },

    /// The caller's cancellation token fired (Ctrl-C, StopProvider).
    #[error("cancelled")]
    Cancelled,

    /// The server refused or broke a channel (session, exec, direct-tcpip).
    #[error("{what} on {target} failed")]
    Channel {
        /// `user@host:port`
        target: String,
        /// What was being done, e.g. "opening a session".
        what: &'static str,
        /// russh's error.
        #[source]
        source: Cause,
    },

    /// A local file to upload could not be read.
    #[error("cannot read {path}")]
    Local {
        /// The local path.
        path: String,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },

    /// An argument that can never work (relative upload path, bad mode).
    #[error("{0}")]
    Invalid(String),

    /// A remote command the layer runs itself (upload) exited non-zero.
    #[error("{what} on {target} failed with {status}: {stderr}")]
    Remote {
        /// `user@host:port`
        target: String,
        /// What was being done, e.g. "uploading /etc/foo".
        what: String,
        /// `exit status 1` or `signal KILL`.
        status: String,
        /// The command's stderr (trimmed, at most a few hundred bytes).
        stderr: String,
    },
}

impl SshError {
    /// True for failures worth another attempt while a machine boots:
    /// refused, reset, timed out, unreachable, or a handshake cut short.
    /// Authentication and host-key failures are final: retrying cannot fix
    /// them and would only hammer the server (and lock out accounts).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            SshError::Connect { source, .. } => transient_cause(source.as_ref()),
            _ => false,
        }
    }
}

/// Walk a cause chain looking for a network-level failure that may heal.
fn transient_cause(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io_transient(io);
        }
        if let Some(r) = e.downcast_ref::<russh::Error>() {
            match r {
                // sshd closes the socket before the key exchange while it is
                // starting or over MaxStartups: the next attempt may succeed.
                // SendError: the session task ended (a bastion's connection
                // died under us); the next attempt re-dials it.
                russh::Error::Disconnect
                | russh::Error::HUP
                | russh::Error::ConnectionTimeout
                | russh::Error::SendError => return true,
                // A bastion that cannot reach the target yet (it is booting).
                russh::Error::ChannelOpenFailure(russh::ChannelOpenFailure::ConnectFailed) => return true,
                // `#[error(transparent)]`: its source() skips the io::Error.
                russh::Error::IO(io) => return io_transient(io),
                _ => return false,
            }
        }
        if e.downcast_ref::<tokio::time::error::Elapsed>().is_some() {
            return true;
        }
        cur = e.source();
    }
    false
}

fn io_transient(io: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        io.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | TimedOut
            | HostUnreachable
            | NetworkUnreachable
            | NotConnected
            | BrokenPipe
            | UnexpectedEof
            | AddrNotAvailable
    )
}
