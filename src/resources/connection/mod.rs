//! How host resources reach their host: the `ssh_connection {}` block, the
//! provider's `ssh {}` defaults, and turning both into an SSH connection
//! spec for the pool.

mod diagnostic;
mod exec;
mod model;
mod resolve;
mod schema;

pub use diagnostic::{cancelled, ssh_diagnostic};
pub use exec::SshExec;
pub use model::{BastionConfig, ConnectionConfig, SshDefaults};
pub use resolve::{DEFAULT_CONNECT_TIMEOUT, resolve_connection};
pub use schema::{DEFAULT_PORT, data_source_connection_block, provider_ssh_block, resource_connection_block};
