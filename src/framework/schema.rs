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
    /// The description as plain text, for the CLI and the docs' fallback.
    pub plain: String,
    /// The same description in markdown, used for docs when present.
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
    /// The schema version written with the state; a mismatch makes the server upgrade old state.
    pub version: i64,
    /// The root block: the top-level attributes and nested blocks.
    pub block: Block,
}

/// An object's attributes and nested blocks.
#[derive(Clone, Debug, Default)]
pub struct Block {
    /// The block's attributes, in the order the docs list them.
    pub attributes: Vec<Attribute>,
    /// The nested blocks, such as `timeouts {}`.
    pub blocks: Vec<NestedBlock>,
    /// What the block is for, shown in the docs and by the CLI.
    pub description: Description,
    /// Whether the whole block is deprecated.
    pub deprecated: bool,
}

/// One attribute with the rules the framework applies to it.
#[derive(Clone)]
pub struct Attribute {
    /// The attribute's name in HCL.
    pub name: String,
    /// The attribute's value type.
    pub ty: Type,
    /// What the attribute means, shown in the docs and by the CLI.
    pub description: Description,
    /// The configuration must set it.
    pub required: bool,
    /// The configuration may set it.
    pub optional: bool,
    /// The provider sets it (alone, or when the configuration leaves it null if also optional).
    pub computed: bool,
    /// The CLI hides its value in plan output.
    pub sensitive: bool,
    /// Protocol 6.8: accepted in config, never stored in plan or state.
    pub write_only: bool,
    /// A deprecation message; set attributes warn at validate time.
    pub deprecation: Option<String>,
    /// Checks run on the configured value at validate time.
    pub validators: Vec<Arc<dyn Validator>>,
    /// Adjustments to the planned value (keep the prior value, require replacement, ...).
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
    /// Any number of blocks, in order.
    List,
    /// Any number of blocks, unordered and distinct.
    Set,
    /// Blocks labelled by a key, e.g. `secret "name" {}`.
    Map,
}

/// A nested block such as `timeouts {}` or `secret {}`.
#[derive(Clone, Debug)]
pub struct NestedBlock {
    /// The block's name in HCL, e.g. `timeouts`.
    pub name: String,
    /// How the block repeats.
    pub nesting: Nesting,
    /// The block's own attributes and nested blocks.
    pub block: Block,
    /// The fewest blocks the configuration must contain (0: no minimum).
    pub min_items: i64,
    /// The most blocks the configuration may contain (0: no maximum).
    pub max_items: i64,
}

impl Schema {
    /// A schema at `version` with `block` as its root.
    pub fn new(version: i64, block: Block) -> Self {
        Schema { version, block }
    }

    /// The object type of values of this schema.
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }

    /// Mistakes a provider author can make; empty when the schema is sound.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        self.block.check("", &mut problems);
        problems
    }
}

impl Block {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the description.
    pub fn description(mut self, d: impl Into<Description>) -> Self {
        self.description = d.into();
        self
    }
    /// Add an attribute.
    pub fn attribute(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }
    /// Add a nested block.
    pub fn block(mut self, b: NestedBlock) -> Self {
        self.blocks.push(b);
        self
    }
    /// The attribute called `name`.
    pub fn get_attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
    /// The nested block called `name`.
    pub fn get_block(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }

    /// The object type of this block's values.
    pub fn value_type(&self) -> Type {
        let mut attrs: std::collections::BTreeMap<String, Type> =
            self.attributes.iter().map(|a| (a.name.clone(), a.ty.clone())).collect();
        for b in &self.blocks {
            attrs.insert(b.name.clone(), b.value_type());
        }
        Type::Object(attrs, Default::default())
    }

    fn check(&self, prefix: &str, problems: &mut Vec<String>) {
        let mut seen = std::collections::BTreeSet::new();
        for a in &self.attributes {
            let name = format!("{prefix}{}", a.name);
            if !seen.insert(a.name.as_str()) {
                problems.push(format!("{name}: declared twice"));
            }
            if !a.required && !a.optional && !a.computed {
                problems.push(format!("{name}: must be required, optional or computed"));
            }
            if a.required && (a.optional || a.computed) {
                problems.push(format!("{name}: required excludes optional and computed"));
            }
            if a.default.is_some() && !a.computed {
                problems.push(format!(
                    "{name}: a default needs computed (its value is not in the configuration)"
                ));
            }
            if a.default.is_some() && a.required {
                problems.push(format!("{name}: a required attribute cannot have a default"));
            }
            if a.write_only && a.computed {
                problems.push(format!("{name}: write-only attributes cannot be computed"));
            }
            if a.write_only && !a.plan_modifiers.is_empty() {
                problems.push(format!(
                    "{name}: write-only attributes are never planned; drop the plan modifiers"
                ));
            }
        }
        for b in &self.blocks {
            if !seen.insert(b.name.as_str()) {
                problems.push(format!("{prefix}{}: name used by an attribute and a block", b.name));
            }
            if b.max_items > 0 && b.min_items > b.max_items {
                problems.push(format!("{prefix}{}: min_items above max_items", b.name));
            }
            // The CLIs refuse a single block whose bounds differ ("MinItems
            // and MaxItems must match in NestingSingle mode").
            if b.nesting == Nesting::Single && b.min_items != b.max_items {
                problems.push(format!(
                    "{prefix}{}: a single block needs min_items == max_items (0 or 1)",
                    b.name
                ));
            }
            if b.nesting == Nesting::Set {
                // Set elements have no identity to pair a plan element with its
                // configuration, so the planner cannot apply these inside them.
                for a in &b.block.attributes {
                    if a.computed || a.default.is_some() || !a.plan_modifiers.is_empty() {
                        problems.push(format!(
                            "{prefix}{}.{}: computed attributes, defaults and plan modifiers are not supported inside set blocks; use a list block",
                            b.name, a.name
                        ));
                    }
                }
            }
            b.block.check(&format!("{prefix}{}.", b.name), problems);
        }
    }
}

impl Attribute {
    fn new(name: &str, ty: Type) -> Self {
        Attribute {
            name: name.to_owned(),
            ty,
            description: Description::default(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecation: None,
            validators: Vec::new(),
            plan_modifiers: Vec::new(),
            default: None,
        }
    }
    /// A string attribute.
    pub fn string(name: &str) -> Self {
        Self::new(name, Type::String)
    }
    /// A number attribute.
    pub fn number(name: &str) -> Self {
        Self::new(name, Type::Number)
    }
    /// A bool attribute.
    pub fn bool(name: &str) -> Self {
        Self::new(name, Type::Bool)
    }
    /// An attribute of any type.
    pub fn of_type(name: &str, ty: Type) -> Self {
        Self::new(name, ty)
    }
    /// Must be set in configuration.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// May be set in configuration.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    /// Set by the provider (alone: computed-only; with `optional`: a default the provider picks).
    pub fn computed(mut self) -> Self {
        self.computed = true;
        self
    }
    /// Hidden in plan output; never logged.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    /// Accepted in configuration but never stored (protocol 6.8).
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
    /// Deprecated with `message` (warned about when set).
    pub fn deprecated(mut self, message: &str) -> Self {
        self.deprecation = Some(message.to_owned());
        self
    }
    /// Plain-text description.
    pub fn description(mut self, d: &str) -> Self {
        self.description.plain = d.to_owned();
        self
    }
    /// Markdown description (for docs and clients that render it).
    pub fn markdown(mut self, d: &str) -> Self {
        self.description.markdown = Some(d.to_owned());
        self
    }
    /// Add a validator.
    pub fn validator(mut self, v: impl super::validator::Validator + 'static) -> Self {
        self.validators.push(Arc::new(v));
        self
    }
    /// Add a plan modifier (run in the order added).
    pub fn plan_modifier(mut self, m: impl super::plan_modifier::PlanModifier + 'static) -> Self {
        self.plan_modifiers.push(Arc::new(m));
        self
    }
    /// Planned when the configuration leaves it null (needs optional + computed).
    pub fn default_value(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self
    }
    /// Optional and not computed, nor required.
    pub fn is_computed_only(&self) -> bool {
        self.computed && !self.optional && !self.required
    }
}

impl NestedBlock {
    /// A nested block called `name` repeating as `nesting`.
    pub fn new(name: &str, nesting: Nesting, block: Block) -> Self {
        NestedBlock {
            name: name.to_owned(),
            nesting,
            block,
            min_items: 0,
            max_items: 0,
        }
    }
    /// At least `n` blocks.
    pub fn min_items(mut self, n: i64) -> Self {
        self.min_items = n;
        self
    }
    /// At most `n` blocks.
    pub fn max_items(mut self, n: i64) -> Self {
        self.max_items = n;
        self
    }
    /// The type of this block's value in its parent object.
    pub fn value_type(&self) -> Type {
        let inner = self.block.value_type();
        match self.nesting {
            Nesting::Single | Nesting::Group => inner,
            Nesting::List => Type::list(inner),
            Nesting::Set => Type::set(inner),
            Nesting::Map => Type::map(inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_mistakes_are_caught_at_build_time() {
        let bad = Schema::new(
            0,
            Block::new()
                .attribute(Attribute::string("a").required().computed())
                .attribute(Attribute::string("b").optional().default_value("x"))
                .attribute(Attribute::string("c"))
                .block(NestedBlock::new(
                    "rules",
                    Nesting::Set,
                    Block::new().attribute(Attribute::string("port").optional().computed()),
                )),
        );
        let problems = bad.check();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems.iter().any(|p| p.starts_with("rules.port:")), "{problems:#?}");
        let good = Schema::new(
            0,
            Block::new().attribute(Attribute::string("a").optional().computed().default_value("x")),
        );
        assert!(good.check().is_empty());
    }
}
