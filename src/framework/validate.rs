//! Configuration validation driven by the schema: computed-only attributes
//! set in configuration, deprecations, write-only support, block counts and
//! every attribute validator. All checks run; their diagnostics add up.

use super::diagnostics::Diagnostics;
use super::path::AttributePath;
use super::schema::{Block, NestedBlock, Nesting};
use super::value::Value;

/// Validate `config` (an object of `block`'s type) found at `path`.
pub fn validate_block(
    block: &Block,
    config: &Value,
    path: &AttributePath,
    write_only_ok: bool,
    diags: &mut Diagnostics,
) {
    if config.is_null() || config.is_unknown() {
        return;
    }
    for a in &block.attributes {
        let value = config.attr(&a.name);
        let at = path.clone().attr(&a.name);
        if value.is_null() {
            continue;
        }
        if a.is_computed_only() {
            diags.attribute_error(
                at.clone(),
                "Value set on a computed attribute",
                format!("{at} is set by the provider and cannot be configured; remove it from the configuration."),
            );
            continue;
        }
        if let Some(msg) = &a.deprecation {
            diags.attribute_warning(at.clone(), "Deprecated attribute", format!("{at} is deprecated: {msg}"));
        }
        if a.write_only && !write_only_ok {
            diags.attribute_error(
                at.clone(),
                "Write-only attribute not supported",
                format!(
                    "{at} is write-only, which needs Terraform 1.11 or OpenTofu 1.11 or later; upgrade the CLI or use the attribute's stored counterpart."
                ),
            );
        }
        if value.is_wholly_known() {
            for v in &a.validators {
                v.validate(&at, value, diags);
            }
        }
    }
    for b in &block.blocks {
        validate_nested(
            b,
            config.attr(&b.name),
            &path.clone().attr(&b.name),
            write_only_ok,
            diags,
        );
    }
}

fn validate_nested(b: &NestedBlock, value: &Value, at: &AttributePath, write_only_ok: bool, diags: &mut Diagnostics) {
    match (b.nesting, value) {
        (_, Value::Null) if b.min_items > 0 => {
            diags.attribute_error(
                at.clone(),
                "Missing required block",
                format!("At least {} {:?} block(s) are required.", b.min_items, b.name),
            );
        }
        (_, Value::Unknown(_) | Value::Null) => {}
        (Nesting::Single | Nesting::Group, v) => validate_block(&b.block, v, at, write_only_ok, diags),
        (Nesting::List | Nesting::Set, Value::List(items) | Value::Set(items)) => {
            check_count(b, items.len(), at, diags);
            for (i, item) in items.iter().enumerate() {
                let item_path = if b.nesting == Nesting::List {
                    at.clone().index(i as i64)
                } else {
                    at.clone()
                };
                validate_block(&b.block, item, &item_path, write_only_ok, diags);
            }
        }
        (Nesting::Map, Value::Map(items)) => {
            check_count(b, items.len(), at, diags);
            for (k, item) in items {
                validate_block(&b.block, item, &at.clone().key(k), write_only_ok, diags);
            }
        }
        _ => {}
    }
}

fn check_count(b: &NestedBlock, n: usize, at: &AttributePath, diags: &mut Diagnostics) {
    let n = n as i64;
    if n < b.min_items {
        diags.attribute_error(
            at.clone(),
            "Too few blocks",
            format!(
                "At least {} {:?} block(s) are required; found {n}.",
                b.min_items, b.name
            ),
        );
    }
    if b.max_items > 0 && n > b.max_items {
        diags.attribute_error(
            at.clone(),
            "Too many blocks",
            format!("At most {} {:?} block(s) are allowed; found {n}.", b.max_items, b.name),
        );
    }
}
