//! The provider's resources, data sources and ephemeral resources.
