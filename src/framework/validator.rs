//! Attribute validators: each sees a known, non-null value and adds
//! diagnostics with the attribute's path. All validators run; their
//! diagnostics add up.

use super::diagnostics::Diagnostics;
use super::path::AttributePath;
use super::value::Value;

/// Checks one attribute value at validate time.
pub trait Validator: Send + Sync {
    /// A sentence for the docs, e.g. "must be between 16 and 512".
    fn description(&self) -> String;
    /// Add diagnostics for a known, non-null `value` found at `path`.
    fn validate(&self, path: &AttributePath, value: &Value, diags: &mut Diagnostics);
}
