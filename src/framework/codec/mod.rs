//! Value codecs: msgpack (what Terraform sends and we answer) and JSON
//! (fallback input, raw state).

pub mod json;
pub mod msgpack;
pub(crate) mod number;

/// Why bytes could not be decoded into a value of the schema's type, or a
/// value not encoded under a type.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{message} at {path}")]
pub struct CodecError {
    /// What was wrong with the bytes or the value.
    pub message: String,
    /// Where in the value, e.g. `keepers["a"]`; empty at the root.
    pub path: crate::framework::AttributePath,
}
