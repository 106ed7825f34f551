//! Typed views of the `ssh_connection {}` / `bastion {}` blocks and of the
//! provider's `ssh {}` defaults.

use serde::{Deserialize, Serialize};

/// `bastion {}` as configured (or stored).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct BastionConfig {
    pub host: String,
    pub port: Option<i64>,
    pub user: Option<String>,
    pub private_key: Option<String>,
    pub agent: Option<bool>,
    pub host_key: Option<String>,
}

/// `ssh_connection {}` as configured, planned or stored. `private_key_wo` is
/// only ever present in a configuration (the framework nulls it in plans
/// and state).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectionConfig {
    pub host: String,
    pub port: Option<i64>,
    pub user: Option<String>,
    pub private_key: Option<String>,
    /// Not in the data source's schema: left out when unset (and it is
    /// always unset outside a configuration being applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_wo: Option<String>,
    pub agent: Option<bool>,
    pub host_key: Option<String>,
    pub connect_timeout: Option<String>,
    pub bastion: Option<BastionConfig>,
}

/// The provider's `ssh {}` block.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct SshDefaults {
    pub user: Option<String>,
    pub private_key: Option<String>,
    pub agent: Option<bool>,
    pub connect_timeout: Option<String>,
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
