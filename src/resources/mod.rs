//! The provider's resources, data sources and ephemeral resources.

pub mod gateway_token;
mod provider;

pub use provider::{SelfhostProvider, provider};
