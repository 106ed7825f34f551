//! The `timeouts {}` block: per-operation time limits a user may set.

use std::time::Duration;

use super::schema::{Attribute, Block, NestedBlock, Nesting};
use super::validator::{IsDuration, parse_duration};
use super::value::Value;

/// The name of the block.
pub const BLOCK: &str = "timeouts";

/// Which operation a timeout applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Creating the object (`timeouts { create = ... }`).
    Create,
    /// Refreshing the object (`timeouts { read = ... }`).
    Read,
    /// Updating the object in place (`timeouts { update = ... }`).
    Update,
    /// Destroying the object (`timeouts { delete = ... }`).
    Delete,
}

impl Operation {
    fn key(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// A `timeouts` block offering `ops`, each documented with its default.
pub fn block(ops: &[(Operation, Duration)]) -> NestedBlock {
    let mut b = Block::new().description("Time limits for long operations.");
    for (op, default) in ops {
        b = b.attribute(
            Attribute::string(op.key())
                .optional()
                .description(&format!(
                    "How long {} may take, e.g. \"10m\" (default {}s).",
                    op.key(),
                    default.as_secs()
                ))
                .validator(IsDuration),
        );
    }
    NestedBlock::new(BLOCK, Nesting::Single, b)
}

/// The configured limit for `op` in a resource's config or plan value, if any.
pub fn configured(object: &Value, op: Operation) -> Option<Duration> {
    object
        .attr(BLOCK)
        .attr(op.key())
        .as_str()
        .and_then(|s| parse_duration(s).ok())
}
