//! The russh client handler shared by a connection and its dialing: the
//! host-key check happens here, during the handshake.

use std::sync::{Arc, Mutex};

use russh::client::Handler;
use russh::keys::{PublicKey, PublicKeyOrCertificate};

use super::spec::same_key;

/// The russh handler: records the key the server presented and accepts it
/// only when it equals the expected one (or when none is expected yet).
pub(crate) struct ClientHandler {
    pub(super) expected: Option<PublicKey>,
    /// A std Mutex: locked only for a store/take, never across an await.
    pub(super) seen: Arc<Mutex<Option<PublicKey>>>,
}

impl Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(&mut self, presented: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // We trust keys, not CAs: a certificate is judged by its key.
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::new(cert.public_key().clone(), ""),
        };
        let ok = self.expected.as_ref().is_none_or(|e| same_key(e, &key));
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(key);
        }
        Ok(ok)
    }
}
