//! The provider-wide connection pool: one connection per (user, host, port,
//! bastion chain), shared by every resource, re-dialled when it died.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::connection::Connection;
use super::dial::dial;
use super::error::SshError;
use super::spec::ConnectSpec;

/// What makes two specs share a connection. Credentials are not part of it:
/// once authenticated as a user, the connection serves everyone who asks for
/// that user (they are all this provider's configuration).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    user: String,
    host: String,
    port: u16,
    via: Option<Box<Key>>,
}

impl Key {
    fn of(spec: &ConnectSpec) -> Self {
        Key {
            user: spec.user.clone(),
            host: spec.host.clone(),
            port: spec.port,
            via: spec.bastion.as_deref().map(|b| Box::new(Key::of(b))),
        }
    }
}

/// One slot per key. The async mutex is held while dialling, so concurrent
/// first connects to the same key dial once and the others wait for it.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>;

/// The pool. Clones share the same connections.
#[derive(Clone, Default)]
pub struct Pool {
    /// A std Mutex: held only to find or insert a slot, never across an await.
    slots: Arc<Mutex<HashMap<Key, Slot>>>,
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Self {
        Pool::default()
    }

    /// The connection for `spec`: the pooled one when it is alive (checked
    /// against this spec's host-key policy), otherwise a new one, dialled with
    /// retries while the host boots.
    ///
    /// # Errors
    /// [`SshError::HostKeyMismatch`], [`SshError::Auth`], key and agent
    /// problems at once; [`SshError::Timeout`] once `spec.retry_for` has
    /// passed without a connection; [`SshError::Cancelled`] when `cancel` fires.
    pub async fn connect(&self, spec: &ConnectSpec, cancel: &CancellationToken) -> Result<Arc<Connection>, SshError> {
        if cancel.is_cancelled() {
            return Err(SshError::Cancelled);
        }
        let slot = self.slot(Key::of(spec));
        let mut guard = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(SshError::Cancelled),
            g = slot.lock() => g,
        };
        if let Some(conn) = guard.as_ref() {
            if !conn.is_closed() {
                conn.check(spec)?;
                return Ok(conn.clone());
            }
            tracing::info!(host = %spec.target(), "connection to {} was lost; reconnecting", spec.target());
            *guard = None;
        }
        let jump = || async {
            match &spec.bastion {
                Some(b) => Ok(Some(Box::pin(self.connect(b, cancel)).await?)),
                None => Ok(None),
            }
        };
        let conn = Arc::new(dial(spec, cancel, jump).await?);
        *guard = Some(conn.clone());
        Ok(conn)
    }

    fn slot(&self, key: Key) -> Slot {
        // A poisoned lock only means another thread panicked mid-insert; the
        // map itself is still consistent.
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key).or_default().clone()
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.slots.lock().map(|s| s.len()).unwrap_or(0);
        f.debug_struct("Pool").field("destinations", &n).finish()
    }
}
