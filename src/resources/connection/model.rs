//! Typed views of the `ssh_connection {}` / `bastion {}` blocks and of the
//! provider's `ssh {}` defaults.

use serde::{Deserialize, Serialize};

/// `bastion {}` as configured (or stored).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct BastionConfig {
    /// The jump host's address or name.
    pub host: String,
    /// The jump host's SSH port (22 when unset).
    pub port: Option<i64>,
    /// The user on the jump host; the provider's `ssh.user`, else `root`, when unset.
    pub user: Option<String>,
    /// Private key for the jump host, in OpenSSH or PEM form.
    pub private_key: Option<String>,
    /// Authenticate to the jump host with the SSH agent at `SSH_AUTH_SOCK`.
    pub agent: Option<bool>,
    /// The jump host's public key (`ssh-ed25519 AAAA...`); trusted on first use for this run when unset.
    pub host_key: Option<String>,
}

/// `ssh_connection {}` as configured, planned or stored. `private_key_wo` is
/// only ever present in a configuration (the framework nulls it in plans
/// and state).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectionConfig {
    /// The host's address or name.
    pub host: String,
    /// The SSH port (22 when unset).
    pub port: Option<i64>,
    /// The SSH user; commands run through `sudo -n` when it is not `root`.
    pub user: Option<String>,
    /// Private key in OpenSSH or PEM form; stored in state, unlike `private_key_wo`.
    pub private_key: Option<String>,
    /// Not in the data source's schema: left out when unset (and it is
    /// always unset outside a configuration being applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_wo: Option<String>,
    /// Authenticate with the SSH agent at `SSH_AUTH_SOCK`.
    pub agent: Option<bool>,
    /// The host's public key; a different key is refused when set.
    pub host_key: Option<String>,
    /// How long to keep retrying while the host boots or sshd starts, e.g. "2m".
    pub connect_timeout: Option<String>,
    /// A jump host to reach the host through.
    pub bastion: Option<BastionConfig>,
}

/// The provider's `ssh {}` block.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct SshDefaults {
    /// The default SSH user for every host.
    pub user: Option<String>,
    /// The default private key, never stored in state.
    pub private_key: Option<String>,
    /// Use the SSH agent at `SSH_AUTH_SOCK` by default.
    pub agent: Option<bool>,
    /// The default time to keep retrying while a host boots, e.g. "2m".
    pub connect_timeout: Option<String>,
    /// The default jump host.
    pub bastion: Option<BastionConfig>,
}

// No Debug derive: these hold private keys. A redacted Debug keeps them out
// of any `{:?}` by accident.
macro_rules! redacted_debug {
    ($t:ty, $($field:ident),*) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct(stringify!($t));
                $(d.field(stringify!($field), &self.$field);)*
                d.field("private_key", &self.private_key.as_ref().map(|_| "<redacted>"));
                d.finish_non_exhaustive()
            }
        }
    };
}
redacted_debug!(BastionConfig, host, port, user, agent, host_key);
redacted_debug!(ConnectionConfig, host, port, user, agent, host_key, bastion);
redacted_debug!(SshDefaults, user, agent, connect_timeout, bastion);
