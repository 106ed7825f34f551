//! Attribute plan modifiers, run as a chain: each sees the plan value left by
//! the previous one; requires-replace marks accumulate.

use super::diagnostics::Diagnostics;
use super::path::AttributePath;
use super::value::Value;

/// What a plan modifier sees.
pub struct AttributePlanRequest<'a> {
    /// Where the attribute is in the resource.
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
    /// Errors and warnings raised by the modifier.
    pub diagnostics: Diagnostics,
}

/// Adjusts one attribute's planned value.
pub trait PlanModifier: Send + Sync {
    /// A sentence for the docs.
    fn description(&self) -> String;
    /// Adjust `resp` given `req`.
    fn modify(&self, req: &AttributePlanRequest<'_>, resp: &mut AttributePlanResponse);
}

/// Keep the prior state's value instead of showing "(known after apply)"
/// when the value cannot change on update (ids, creation times, secrets).
pub struct UseStateForUnknown;

impl PlanModifier for UseStateForUnknown {
    fn description(&self) -> String {
        "Once set, the value of this attribute in state will not change.".to_owned()
    }
    fn modify(&self, req: &AttributePlanRequest<'_>, resp: &mut AttributePlanResponse) {
        if !req.creating && !req.state.is_null() && resp.plan.is_unknown() && req.config.is_null() {
            resp.plan = req.state.clone();
        }
    }
}

/// A change of this attribute replaces the object.
pub struct RequiresReplace;

impl PlanModifier for RequiresReplace {
    fn description(&self) -> String {
        "If the value of this attribute changes, Terraform will destroy and recreate the resource.".to_owned()
    }
    fn modify(&self, req: &AttributePlanRequest<'_>, resp: &mut AttributePlanResponse) {
        if !req.creating && !resp.plan.is_unknown() && !super::value::semantically_equal(&resp.plan, req.state) {
            resp.requires_replace = true;
        }
    }
}

/// Like [`RequiresReplace`], but only when the attribute is set in
/// configuration (a value the provider computed may change freely).
pub struct RequiresReplaceIfConfigured;

impl PlanModifier for RequiresReplaceIfConfigured {
    fn description(&self) -> String {
        "If the value of this attribute is configured and changes, Terraform will destroy and recreate the resource."
            .to_owned()
    }
    fn modify(&self, req: &AttributePlanRequest<'_>, resp: &mut AttributePlanResponse) {
        if !req.config.is_null() {
            RequiresReplace.modify(req, resp);
        }
    }
}
