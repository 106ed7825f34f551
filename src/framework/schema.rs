//! Schemas: attributes, nested blocks and their builders.
//!
//! Mistakes in a schema (required and computed at once, a default on a
//! non-computed attribute, ...) are caught by [`Schema::check`] when the
//! provider starts, not at a user's apply.

use std::sync::Arc;

use super::plan_modifier::PlanModifier;
use super::types::Type;
use super::validator::Validator;
use super::value::Value;

/// A description in plain text and, optionally, in markdown (used for docs
/// and sent to the CLI with kind MARKDOWN).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Description {
    pub plain: String,
    pub markdown: Option<String>,
}

impl From<&str> for Description {
    fn from(s: &str) -> Self {
        Description {
            plain: s.to_owned(),
            markdown: None,
        }
    }
}

/// A versioned schema of a provider, resource, data source or ephemeral resource.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
}

/// An object's attributes and nested blocks.
#[derive(Clone, Debug, Default)]
pub struct Block {
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
    pub description: Description,
    pub deprecated: bool,
}

/// One attribute with the rules the framework applies to it.
#[derive(Clone)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    pub description: Description,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    /// Protocol 6.8: accepted in config, never stored in plan or state.
    pub write_only: bool,
    /// A deprecation message; set attributes warn at validate time.
    pub deprecation: Option<String>,
    pub validators: Vec<Arc<dyn Validator>>,
    pub plan_modifiers: Vec<Arc<dyn PlanModifier>>,
    /// Value planned when the configuration leaves the attribute null.
    pub default: Option<Value>,
}

impl std::fmt::Debug for Attribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attribute")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .field("required", &self.required)
            .field("optional", &self.optional)
            .field("computed", &self.computed)
            .field("sensitive", &self.sensitive)
            .field("write_only", &self.write_only)
            .finish_non_exhaustive()
    }
}

/// How a nested block repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// At most one block; null when absent.
    Single,
    /// Exactly one block, its attributes defaulting when absent.
    Group,
    List,
    Set,
    Map,
}

/// A nested block such as `timeouts {}` or `secret {}`.
#[derive(Clone, Debug)]
pub struct NestedBlock {
    pub name: String,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
}
