//! Planning driven by the schema, in the order terraform-plugin-framework
//! uses: start from the CLI's proposed new state, null write-only values,
//! fill defaults, mark computed values unknown when the object changes, then
//! run each attribute's plan modifiers (which may restore prior values and
//! ask for replacement).

use super::diagnostics::Diagnostics;
use super::path::AttributePath;
use super::plan_modifier::{AttributePlanRequest, AttributePlanResponse};
use super::schema::{Block, Nesting};
use super::value::{Value, semantically_equal};

/// The schema-driven part of a plan.
pub struct AttributePlan {
    /// The planned value, with unknowns where computed attributes await apply.
    pub planned: Value,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<AttributePath>,
    /// Errors and warnings raised while planning.
    pub diagnostics: Diagnostics,
}

/// Plan an object of `block` from its prior state, the CLI's proposed new
/// state and the configuration.
pub fn plan_block(block: &Block, prior: &Value, proposed: &Value, config: &Value) -> AttributePlan {
    let creating = prior.is_null();
    let mut planned = proposed.clone();
    null_absent_blocks(block, &mut planned, config);
    null_write_only(block, &mut planned);
    fill_defaults(block, &mut planned, config);
    let mut result = AttributePlan {
        planned,
        requires_replace: Vec::new(),
        diagnostics: Diagnostics::new(),
    };
    if creating || !semantically_equal(&result.planned, prior) {
        mark_computed_unknown(block, &mut result.planned, config);
    }
    run_modifiers(block, &AttributePath::default(), config, prior, creating, &mut result);
    result
}

/// A single nested block the configuration leaves out is planned absent.
/// Terraform before 1.3 proposes the prior block instead when the block
/// has computed attributes, and then rejects its own proposal ("planned
/// for existence but config wants absence").
fn null_absent_blocks(block: &Block, planned: &mut Value, config: &Value) {
    let Value::Object(fields) = planned else { return };
    for b in &block.blocks {
        let Some(slot) = fields.get_mut(&b.name) else { continue };
        let c = config.attr(&b.name);
        if b.nesting == Nesting::Single && c.is_null() {
            *slot = Value::Null;
        } else {
            for_each_block_value(b.nesting, slot, c, &mut |v, c| null_absent_blocks(&b.block, v, c));
        }
    }
}

/// Set defaults where the configuration is null.
fn fill_defaults(block: &Block, planned: &mut Value, config: &Value) {
    let Value::Object(fields) = planned else { return };
    for a in &block.attributes {
        if let (Some(default), Some(slot)) = (&a.default, fields.get_mut(&a.name))
            && config.attr(&a.name).is_null()
        {
            *slot = default.clone();
        }
    }
    for b in &block.blocks {
        let Some(slot) = fields.get_mut(&b.name) else { continue };
        for_each_block_value(b.nesting, slot, config.attr(&b.name), &mut |v, c| {
            fill_defaults(&b.block, v, c)
        });
    }
}

/// Null every write-only attribute, at any depth: they never reach plan or state.
pub fn null_write_only(block: &Block, value: &mut Value) {
    let Value::Object(fields) = value else { return };
    for a in block.attributes.iter().filter(|a| a.write_only) {
        if let Some(v) = fields.get_mut(&a.name) {
            *v = Value::Null;
        }
    }
    for b in &block.blocks {
        let Some(slot) = fields.get_mut(&b.name) else { continue };
        for_each_block_value(b.nesting, slot, &Value::Null, &mut |v, _| null_write_only(&b.block, v));
    }
}

/// Computed attributes the configuration leaves null become unknown: the
/// provider may set them anew when the object changes.
pub fn mark_computed_unknown(block: &Block, planned: &mut Value, config: &Value) {
    let Value::Object(fields) = planned else { return };
    for a in &block.attributes {
        if a.computed && a.default.is_none() && config.attr(&a.name).is_null() {
            fields.insert(a.name.clone(), Value::unknown());
        }
    }
    for b in &block.blocks {
        let Some(slot) = fields.get_mut(&b.name) else { continue };
        for_each_block_value(b.nesting, slot, config.attr(&b.name), &mut |v, c| {
            mark_computed_unknown(&b.block, v, c)
        });
    }
}

fn run_modifiers(
    block: &Block,
    path: &AttributePath,
    config: &Value,
    prior: &Value,
    creating: bool,
    result: &mut AttributePlan,
) {
    for a in &block.attributes {
        if a.plan_modifiers.is_empty() {
            continue;
        }
        let at = path.clone().attr(&a.name);
        let current = lookup(&result.planned, &at).cloned().unwrap_or(Value::Null);
        let mut resp = AttributePlanResponse {
            plan: current,
            requires_replace: false,
            diagnostics: Diagnostics::new(),
        };
        let req = AttributePlanRequest {
            path: &at,
            config: config.attr(&a.name),
            state: prior.attr(&a.name),
            creating,
        };
        for m in &a.plan_modifiers {
            m.modify(&req, &mut resp);
        }
        if resp.requires_replace {
            result.requires_replace.push(at.clone());
        }
        result.diagnostics.extend(resp.diagnostics);
        if let Some(slot) = lookup_mut(&mut result.planned, &at) {
            *slot = resp.plan;
        }
    }
    // Nested blocks: modifiers run for single blocks and list elements matched
    // by index (set elements have no stable identity to compare with).
    for b in &block.blocks {
        let at = path.clone().attr(&b.name);
        match b.nesting {
            Nesting::Single | Nesting::Group => run_modifiers(
                &b.block,
                &at,
                config.attr(&b.name),
                prior.attr(&b.name),
                creating,
                result,
            ),
            Nesting::List => {
                if let Value::List(items) = config.attr(&b.name) {
                    for (i, item) in items.iter().enumerate() {
                        let prior_item = match prior.attr(&b.name) {
                            Value::List(p) => p.get(i).cloned().unwrap_or(Value::Null),
                            _ => Value::Null,
                        };
                        let item_creating = creating || prior_item.is_null();
                        run_modifiers(
                            &b.block,
                            &at.clone().index(i as i64),
                            item,
                            &prior_item,
                            item_creating,
                            result,
                        );
                    }
                }
            }
            Nesting::Set | Nesting::Map => {}
        }
    }
}

fn for_each_block_value(nesting: Nesting, value: &mut Value, config: &Value, f: &mut dyn FnMut(&mut Value, &Value)) {
    match (nesting, value) {
        (Nesting::Single | Nesting::Group, v @ Value::Object(_)) => f(v, config),
        (Nesting::List | Nesting::Set, Value::List(items) | Value::Set(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                let c = match config {
                    Value::List(c) | Value::Set(c) => c.get(i).unwrap_or(&Value::Null),
                    _ => &Value::Null,
                };
                f(item, c);
            }
        }
        (Nesting::Map, Value::Map(items)) => {
            for (k, item) in items.iter_mut() {
                let c = match config {
                    Value::Map(c) => c.get(k).unwrap_or(&Value::Null),
                    _ => &Value::Null,
                };
                f(item, c);
            }
        }
        _ => {}
    }
}

/// The value at `path` inside `v`.
pub fn lookup<'a>(v: &'a Value, path: &AttributePath) -> Option<&'a Value> {
    use super::path::PathStep;
    path.0.iter().try_fold(v, |cur, step| match (step, cur) {
        (PathStep::Attribute(n), Value::Object(m)) | (PathStep::Key(n), Value::Map(m)) => m.get(n),
        (PathStep::Index(i), Value::List(l) | Value::Tuple(l)) => usize::try_from(*i).ok().and_then(|i| l.get(i)),
        _ => None,
    })
}

/// The mutable value at `path` inside `v`.
pub fn lookup_mut<'a>(v: &'a mut Value, path: &AttributePath) -> Option<&'a mut Value> {
    use super::path::PathStep;
    path.0.iter().try_fold(v, |cur, step| match (step, cur) {
        (PathStep::Attribute(n), Value::Object(m)) | (PathStep::Key(n), Value::Map(m)) => m.get_mut(n),
        (PathStep::Index(i), Value::List(l) | Value::Tuple(l)) => usize::try_from(*i).ok().and_then(|i| l.get_mut(i)),
        _ => None,
    })
}

/// Known planned values the new state contradicts (each is a provider bug
/// the CLI would report as "produced an unexpected new value").
pub fn contradictions(planned: &Value, new: &Value, path: &AttributePath, out: &mut Vec<AttributePath>) {
    match (planned, new) {
        (Value::Unknown(_), _) => {}
        (Value::Object(p), Value::Object(n)) => {
            for (k, pv) in p {
                contradictions(pv, n.get(k).unwrap_or(&Value::Null), &path.clone().attr(k), out);
            }
        }
        (Value::List(p), Value::List(n)) if p.len() == n.len() => {
            for (i, (pv, nv)) in p.iter().zip(n).enumerate() {
                contradictions(pv, nv, &path.clone().index(i as i64), out);
            }
        }
        (p, n) if p.is_wholly_known() && !semantically_equal(p, n) => out.push(path.clone()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::framework::plan_modifier::{RequiresReplace, UseStateForUnknown};
    use crate::framework::schema::Nesting;
    use crate::framework::{Attribute, Block, NestedBlock};

    fn block() -> Block {
        Block::new()
            .attribute(Attribute::string("id").computed().plan_modifier(UseStateForUnknown))
            .attribute(Attribute::string("stamp").computed())
            .attribute(Attribute::number("size").optional().computed().default_value(3))
            .attribute(Attribute::string("name").required().plan_modifier(RequiresReplace))
            .attribute(Attribute::string("note").optional())
            .attribute(Attribute::string("password").optional().sensitive().write_only())
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn config(name: &str, note: Value) -> Value {
        obj(&[
            ("id", Value::Null),
            ("stamp", Value::Null),
            ("size", Value::Null),
            ("name", Value::from(name)),
            ("note", note),
            ("password", Value::from("hunter2")),
        ])
    }

    fn prior() -> Value {
        obj(&[
            ("id", Value::from("x1")),
            ("stamp", Value::from("t1")),
            ("size", Value::from(3)),
            ("name", Value::from("a")),
            ("note", Value::Null),
            ("password", Value::Null),
        ])
    }

    /// The CLI's proposed new state: config, with prior values for computed
    /// attributes the configuration leaves null.
    fn proposed(config: &Value, prior: &Value) -> Value {
        let mut p = config.clone();
        for k in ["id", "stamp", "size"] {
            if let Some(slot) = p.attr_mut(k) {
                *slot = prior.attr(k).clone();
            }
        }
        p
    }

    #[test]
    fn create_marks_computed_unknown_fills_defaults_and_drops_write_only() {
        let c = config("a", Value::Null);
        let plan = plan_block(&block(), &Value::Null, &proposed(&c, &Value::Null), &c);
        assert!(plan.planned.attr("id").is_unknown());
        assert!(plan.planned.attr("stamp").is_unknown());
        assert_eq!(plan.planned.attr("size"), &Value::from(3));
        assert_eq!(plan.planned.attr("password"), &Value::Null);
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn unchanged_object_plans_exactly_its_prior_state() {
        let c = config("a", Value::Null);
        let plan = plan_block(&block(), &prior(), &proposed(&c, &prior()), &c);
        assert_eq!(plan.planned, prior());
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn in_place_change_keeps_stable_values_and_unknowns_the_rest() {
        let c = config("a", Value::from("hello"));
        let plan = plan_block(&block(), &prior(), &proposed(&c, &prior()), &c);
        assert_eq!(
            plan.planned.attr("id"),
            &Value::from("x1"),
            "UseStateForUnknown keeps the id"
        );
        assert!(
            plan.planned.attr("stamp").is_unknown(),
            "other computed values may change"
        );
        assert_eq!(plan.planned.attr("note"), &Value::from("hello"));
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn requires_replace_names_the_attribute() {
        let c = config("b", Value::Null);
        let plan = plan_block(&block(), &prior(), &proposed(&c, &prior()), &c);
        assert_eq!(plan.requires_replace, vec![AttributePath::root("name")]);
    }

    #[test]
    fn contradictions_point_at_changed_known_values() {
        let planned = obj(&[("a", Value::from("x")), ("b", Value::unknown())]);
        let new = obj(&[("a", Value::from("y")), ("b", Value::from("z"))]);
        let mut bad = Vec::new();
        contradictions(&planned, &new, &AttributePath::default(), &mut bad);
        assert_eq!(bad, vec![AttributePath::root("a")]);
    }

    #[test]
    fn a_single_block_left_out_of_the_configuration_is_planned_absent() {
        let block = Block::new()
            .attribute(Attribute::string("name").required())
            .block(NestedBlock::new(
                "scaling",
                Nesting::Single,
                Block::new().attribute(Attribute::number("min").optional().computed().default_value(1)),
            ));
        let prior = obj(&[("name", Value::from("a")), ("scaling", obj(&[("min", Value::from(1))]))]);
        let config = obj(&[("name", Value::from("a")), ("scaling", Value::Null)]);
        // what Terraform 1.0 proposes: the prior block
        let plan = plan_block(&block, &prior, &prior, &config);
        assert!(plan.planned.attr("scaling").is_null(), "{:?}", plan.planned);
    }
}

#[cfg(test)]
mod write_only_tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::framework::schema::{Attribute, NestedBlock};

    #[test]
    fn nested_write_only_values_are_nulled() {
        let block = Block::new().block(NestedBlock::new(
            "auth",
            Nesting::List,
            Block::new()
                .attribute(Attribute::string("user").optional())
                .attribute(Attribute::string("password").optional().write_only()),
        ));
        let item = |pw: Value| {
            Value::Object(BTreeMap::from([
                ("user".to_owned(), Value::from("u")),
                ("password".to_owned(), pw),
            ]))
        };
        let mut v = Value::Object(BTreeMap::from([(
            "auth".to_owned(),
            Value::List(vec![item(Value::from("s3cret"))]),
        )]));
        null_write_only(&block, &mut v);
        let want = Value::Object(BTreeMap::from([(
            "auth".to_owned(),
            Value::List(vec![item(Value::Null)]),
        )]));
        assert_eq!(v, want);
    }
}

/// A resource's whole plan without the wire, as the server makes it: the
/// schema-driven part, then the resource's own `modify_plan`. For unit
/// tests of a resource's planning.
#[cfg(test)]
pub async fn plan_resource(
    resource: &dyn super::resource::Resource,
    ctx: &super::resource::Context,
    prior: &Value,
    proposed: &Value,
    config: &Value,
) -> super::resource::ModifyPlanResponse {
    use super::private::PrivateState;
    use super::resource::{ModifyPlanRequest, ModifyPlanResponse};
    let ap = plan_block(&resource.schema().block, prior, proposed, config);
    let mut resp = ModifyPlanResponse {
        planned: ap.planned,
        requires_replace: ap.requires_replace,
        private: PrivateState::default(),
        diagnostics: ap.diagnostics,
    };
    let req = ModifyPlanRequest {
        config: config.clone(),
        prior: prior.clone(),
        prior_private: PrivateState::default(),
    };
    resource.modify_plan(ctx, &req, &mut resp).await;
    resp
}
