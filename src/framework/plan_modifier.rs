//! Attribute plan modifiers, run as a chain: each sees the plan value left by
//! the previous one; requires-replace marks accumulate.

use super::diagnostics::Diagnostics;
use super::path::AttributePath;
use super::value::Value;

/// What a plan modifier sees.
pub struct AttributePlanRequest<'a> {
    pub path: &'a AttributePath,
    /// The attribute's value in configuration.
    pub config: &'a Value,
    /// The attribute's value in prior state (`Null` on create).
    pub state: &'a Value,
    /// True when the resource is being created (no prior state).
    pub creating: bool,
}

/// What a plan modifier may change.
pub struct AttributePlanResponse {
    /// The planned value so far; modifiers may replace it.
    pub plan: Value,
    /// Set when a change of this attribute needs a new object.
    pub requires_replace: bool,
    pub diagnostics: Diagnostics,
}

/// Adjusts one attribute's planned value.
pub trait PlanModifier: Send + Sync {
    /// A sentence for the docs.
    fn description(&self) -> String;
    /// Adjust `resp` given `req`.
    fn modify(&self, req: &AttributePlanRequest<'_>, resp: &mut AttributePlanResponse);
}
