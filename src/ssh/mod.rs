//! The SSH client layer (issue 7): a provider-wide [`Pool`] of authenticated
//! russh connections with a strict host-key policy, jump hosts, retries while
//! a machine boots, and commands run as multiplexed channels.
//!
//! ```no_run
//! # async fn demo() -> Result<(), terraform_provider_selfhost::ssh::SshError> {
//! use terraform_provider_selfhost::ssh::{ConnectSpec, HostKeyPolicy, Pool};
//! let pool = Pool::new();
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let mut spec = ConnectSpec::new("203.0.113.10", "root");
//! spec.auth.agent = true;
//! let conn = pool.connect(&spec, &cancel).await?;
//! let recorded = conn.host_key(); // FirstUse: store this; next time HostKeyPolicy::Recorded(recorded)
//! let out = conn.run_script("uname -r", b"", &cancel).await?;
//! # Ok(()) }
//! ```
//!
//! russh logs through the `log` crate; the subscriber installed by
//! [`crate::logging::init`] bridges those records into `tracing`.

mod connection;
mod dial;
mod error;
mod handler;
mod pool;
mod spec;

pub use connection::{Connection, ExecOutput};
pub use dial::{KEEPALIVE_INTERVAL, KEEPALIVE_MAX};
pub use error::SshError;
pub use pool::Pool;
pub use spec::{
    Auth, ConnectSpec, DEFAULT_CONNECT_TIMEOUT, DEFAULT_RETRY_FOR, HostKeyPolicy, fingerprint, parse_private_key,
    parse_public_key,
};
