//! `terraform-provider-selfhost docs`: the Terraform registry documentation
//! (`docs/index.md`, `docs/resources/<name>.md`, `docs/data-sources/…`,
//! `docs/ephemeral-resources/…`) rendered from the LIVE schema the provider
//! serves, so the docs cannot drift from the code. The layout and wording
//! follow HashiCorp's tfplugindocs, which the registry renders.
//!
//! Rendering ([`render`]) does no I/O: examples are read through a closure.
//! Beside a type's example, an optional `notes.md` is hand-written Markdown
//! placed after the schema (e.g. upgrade notes).
//! [`write`] reads `examples/` and replaces the generated files on disk.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::framework::schema::{Attribute, Block, Description, NestedBlock, Nesting, Schema};
use crate::framework::server::{ProviderServer, SchemasResponse};
use crate::framework::{Type, Value};

/// Why the docs could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// The provider's schema is unsound (a provider bug).
    #[error("the provider schema has problems: {0}")]
    Schema(String),
    /// Reading an example or writing a page failed.
    #[error("{path}: {source}")]
    Io {
        /// The example read or the page written.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// The three kinds of typed pages, with their directory, title word and
/// example file convention (`examples/<dir>/<type>/<file>`).
#[derive(Clone, Copy)]
struct Kind {
    dir: &'static str,
    title: &'static str,
    example_file: &'static str,
}

const RESOURCE: Kind = Kind {
    dir: "resources",
    title: "Resource",
    example_file: "resource.tf",
};
const DATA_SOURCE: Kind = Kind {
    dir: "data-sources",
    title: "Data Source",
    example_file: "data-source.tf",
};
const EPHEMERAL: Kind = Kind {
    dir: "ephemeral-resources",
    title: "Ephemeral Resource",
    example_file: "ephemeral-resource.tf",
};

/// The subdirectories of the docs root that [`write`] owns entirely.
const GENERATED_DIRS: [&str; 3] = [RESOURCE.dir, DATA_SOURCE.dir, EPHEMERAL.dir];

/// Render every page for `provider_name` from `schemas`. `example` maps a
/// path relative to `examples/` (e.g. `resources/selfhost_gateway_token/resource.tf`)
/// to its contents when the file exists. Keys of the result are paths
/// relative to the docs root.
pub fn render(
    provider_name: &str,
    schemas: &SchemasResponse,
    example: &dyn Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    let mut pages = BTreeMap::new();
    pages.insert(
        "index.md".to_owned(),
        render_index(provider_name, &schemas.provider, example("provider/provider.tf")),
    );
    for (kind, map) in [
        (RESOURCE, &schemas.resources),
        (DATA_SOURCE, &schemas.data_sources),
        (EPHEMERAL, &schemas.ephemeral_resources),
    ] {
        for (type_name, schema) in map {
            let short = type_name
                .strip_prefix(&format!("{provider_name}_"))
                .unwrap_or(type_name);
            let ex = example(&format!("{}/{type_name}/{}", kind.dir, kind.example_file));
            let import = if kind.dir == RESOURCE.dir {
                example(&format!("{}/{type_name}/import.sh", kind.dir))
            } else {
                None
            };
            let notes = example(&format!("{}/{type_name}/notes.md", kind.dir));
            pages.insert(
                format!("{}/{short}.md", kind.dir),
                render_type_page(kind, type_name, schema, ex, notes, import),
            );
        }
    }
    pages
}

/// Generate the docs of `server`'s provider into `out_dir`, taking examples
/// from `examples_dir`. Pages of types that no longer exist are removed.
/// Returns the files written.
///
/// # Errors
/// A schema the server itself reports as broken, or any I/O failure.
pub fn write(server: &ProviderServer, out_dir: &Path, examples_dir: &Path) -> Result<Vec<PathBuf>, DocsError> {
    let schemas = server.schemas();
    if schemas.diagnostics.has_error() {
        let text: Vec<String> = schemas
            .diagnostics
            .0
            .iter()
            .map(|d| format!("{}: {}", d.summary, d.detail))
            .collect();
        return Err(DocsError::Schema(text.join("; ")));
    }
    let provider_name = server.provider.type_name();
    let example = |rel: &str| std::fs::read_to_string(examples_dir.join(rel)).ok();
    let pages = render(provider_name, &schemas, &example);

    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DocsError::Io { path, source }
    };
    for dir in GENERATED_DIRS {
        let d = out_dir.join(dir);
        if let Ok(entries) = std::fs::read_dir(&d) {
            for entry in entries.flatten() {
                let p = entry.path();
                let rel = format!("{dir}/{}", entry.file_name().to_string_lossy());
                if p.extension().is_some_and(|e| e == "md") && !pages.contains_key(&rel) {
                    std::fs::remove_file(&p).map_err(io(&p))?;
                }
            }
        }
    }
    let mut written = Vec::new();
    for (rel, text) in pages {
        let p = out_dir.join(&rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&p, text).map_err(io(&p))?;
        written.push(p);
    }
    Ok(written)
}

fn render_index(provider_name: &str, schema: &Schema, example: Option<String>) -> String {
    let mut s = String::new();
    let desc = description_text(&schema.block.description);
    front_matter(&mut s, &format!("{provider_name} Provider"), &desc);
    let _ = writeln!(s, "# {provider_name} Provider\n");
    if !desc.is_empty() {
        let _ = writeln!(s, "{desc}\n");
    }
    example_section(&mut s, "Example Usage", example.as_deref());
    schema_section(&mut s, &schema.block, false);
    s
}

fn render_type_page(
    kind: Kind,
    type_name: &str,
    schema: &Schema,
    example: Option<String>,
    notes: Option<String>,
    import: Option<String>,
) -> String {
    let mut s = String::new();
    let desc = description_text(&schema.block.description);
    front_matter(
        &mut s,
        &format!("{type_name} {} - terraform-provider-selfhost", kind.title),
        &desc,
    );
    let _ = writeln!(s, "# {type_name} ({})\n", kind.title);
    if schema.block.deprecated {
        let _ = writeln!(
            s,
            "~> **Deprecated** This {} is deprecated.\n",
            kind.title.to_lowercase()
        );
    }
    if !desc.is_empty() {
        let _ = writeln!(s, "{desc}\n");
    }
    example_section(&mut s, "Example Usage", example.as_deref());
    schema_section(&mut s, &schema.block, kind.dir == RESOURCE.dir);
    // Hand-written Markdown (`notes.md` beside the example): what the
    // schema's one-line descriptions cannot say, e.g. upgrade notes.
    if let Some(notes) = notes.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        let _ = writeln!(s, "{notes}\n");
    }
    if let Some(import) = import {
        let _ = writeln!(s, "## Import\n\nImport is supported using the following syntax:\n");
        let _ = writeln!(s, "```shell\n{}\n```", import.trim_end());
    }
    s
}

fn front_matter(s: &mut String, title: &str, desc: &str) {
    let _ = writeln!(s, "---");
    let _ = writeln!(s, "page_title: \"{title}\"");
    let _ = writeln!(s, "subcategory: \"\"");
    let _ = writeln!(s, "description: |-");
    for line in desc.lines() {
        let _ = writeln!(s, "  {line}");
    }
    let _ = writeln!(s, "---\n");
}

fn example_section(s: &mut String, heading: &str, example: Option<&str>) {
    if let Some(ex) = example {
        let _ = writeln!(s, "## {heading}\n\n```terraform\n{}\n```\n", ex.trim_end());
    }
}

fn description_text(d: &Description) -> String {
    d.markdown.clone().unwrap_or_else(|| d.plain.clone()).trim().to_owned()
}

/// `## Schema` with the root block's arguments, then one `### Nested Schema
/// for` section per nested block, depth first. Plan modifiers are described
/// only for managed resources (`planned`), the only kind that is planned.
fn schema_section(s: &mut String, root: &Block, planned: bool) {
    let _ = writeln!(
        s,
        "<!-- generated by `terraform-provider-selfhost docs` from the live schema -->"
    );
    let _ = writeln!(s, "## Schema\n");
    if root.attributes.is_empty() && root.blocks.is_empty() {
        let _ = writeln!(s, "No arguments.\n");
        return;
    }
    let mut nested = Vec::new();
    block_lists(s, root, "", planned, &mut nested);
    let mut i = 0;
    while i < nested.len() {
        let (path, b): (String, NestedBlock) = nested[i].clone();
        let _ = writeln!(s, "<a id=\"{}\"></a>", anchor(&path));
        let _ = writeln!(s, "### Nested Schema for `{path}`\n");
        let mut more = Vec::new();
        block_lists(s, &b.block, &format!("{path}."), planned, &mut more);
        nested.splice(i + 1..i + 1, more);
        i += 1;
    }
}

fn anchor(path: &str) -> String {
    format!("nestedblock--{}", path.replace('.', "--"))
}

/// The Required / Optional / Read-Only lists of one block, each sorted by
/// name; nested blocks are collected into `nested` (with their dotted path)
/// for later sections.
fn block_lists(s: &mut String, block: &Block, prefix: &str, planned: bool, nested: &mut Vec<(String, NestedBlock)>) {
    let mut required = Vec::new();
    let mut optional = Vec::new();
    let mut read_only = Vec::new();
    let mut attributes: Vec<&Attribute> = block.attributes.iter().collect();
    attributes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut blocks: Vec<&NestedBlock> = block.blocks.iter().collect();
    blocks.sort_by(|a, b| a.name.cmp(&b.name));
    for a in attributes {
        let line = attribute_line(a, planned);
        if a.required {
            required.push(line);
        } else if a.optional {
            optional.push(line);
        } else {
            read_only.push(line);
        }
    }
    for b in blocks {
        let path = format!("{prefix}{}", b.name);
        let line = block_line(b, &path);
        if b.min_items > 0 {
            required.push(line);
        } else {
            optional.push(line);
        }
        nested.push((path, b.clone()));
    }
    for (title, mut lines) in [("Required", required), ("Optional", optional), ("Read-Only", read_only)] {
        if lines.is_empty() {
            continue;
        }
        lines.sort();
        let _ = writeln!(s, "### {title}\n");
        for l in lines {
            let _ = writeln!(s, "- {l}");
        }
        let _ = writeln!(s);
    }
}

/// One attribute: flags in parentheses, then its description, default,
/// validators and (for configurable attributes of managed resources) plan
/// modifiers. Modifiers of read-only attributes (UseStateForUnknown and the
/// like) are implementation details and left out.
fn attribute_line(a: &Attribute, planned: bool) -> String {
    let mut flags = vec![type_name(&a.ty)];
    if a.sensitive {
        flags.push("Sensitive".to_owned());
    }
    if a.write_only {
        flags.push("Write-only".to_owned());
    }
    if a.deprecation.is_some() {
        flags.push("Deprecated".to_owned());
    }
    let mut text = vec![description_text(&a.description)];
    if let Some(msg) = &a.deprecation {
        text.push(format!("**Deprecated:** {}", sentence(msg)));
    }
    if a.write_only {
        text.push(
            "Write-only: sent to the provider but never stored in plan or state (Terraform 1.11+, OpenTofu 1.11+)."
                .to_owned(),
        );
    }
    if let Some(d) = &a.default {
        text.push(format!("Defaults to `{}`.", hcl_literal(d)));
    }
    for v in &a.validators {
        text.push(sentence(&v.description()));
    }
    if planned && (a.required || a.optional) {
        for m in &a.plan_modifiers {
            text.push(sentence(&m.description()));
        }
    }
    let text: Vec<String> = text.into_iter().filter(|t| !t.is_empty()).collect();
    format!("`{}` ({}) {}", a.name, flags.join(", "), text.join(" "))
        .trim_end()
        .to_owned()
}

fn block_line(b: &NestedBlock, path: &str) -> String {
    let kind = match b.nesting {
        Nesting::Single | Nesting::Group => "Block",
        Nesting::List => "Block List",
        Nesting::Set => "Block Set",
        Nesting::Map => "Block Map",
    };
    let mut flags = vec![kind.to_owned()];
    if b.min_items > 0 && !matches!(b.nesting, Nesting::Single | Nesting::Group) {
        flags.push(format!("Min: {}", b.min_items));
    }
    if b.max_items > 0 && !matches!(b.nesting, Nesting::Single | Nesting::Group) {
        flags.push(format!("Max: {}", b.max_items));
    }
    if b.block.deprecated {
        flags.push("Deprecated".to_owned());
    }
    let desc = description_text(&b.block.description);
    let mut line = format!("`{}` ({}) ", b.name, flags.join(", "));
    if !desc.is_empty() {
        line.push_str(&desc);
        line.push(' ');
    }
    let _ = write!(line, "(see [below for nested schema](#{}))", anchor(path));
    line
}

/// tfplugindocs' type words: `String`, `List of Number`, `Map of String`, ...
fn type_name(t: &Type) -> String {
    match t {
        Type::Bool => "Boolean".to_owned(),
        Type::Number => "Number".to_owned(),
        Type::String => "String".to_owned(),
        Type::Dynamic => "Dynamic".to_owned(),
        Type::List(e) => format!("List of {}", type_name(e)),
        Type::Set(e) => format!("Set of {}", type_name(e)),
        Type::Map(e) => format!("Map of {}", type_name(e)),
        Type::Tuple(_) => "Tuple".to_owned(),
        Type::Object(attrs, _) => {
            let fields: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}: {}", type_name(v))).collect();
            format!("Object ({})", fields.join(", "))
        }
    }
}

/// First letter upper case, a final full stop.
fn sentence(s: &str) -> String {
    let s = s.trim();
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A value as it would be written in HCL, for `Defaults to`.
fn hcl_literal(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Unknown(_) => "(known after apply)".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => serde_json::Value::from(s.as_str()).to_string(),
        Value::List(xs) | Value::Set(xs) | Value::Tuple(xs) => {
            format!("[{}]", xs.iter().map(hcl_literal).collect::<Vec<_>>().join(", "))
        }
        Value::Map(m) | Value::Object(m) => {
            let fields: Vec<String> = m.iter().map(|(k, v)| format!("{k} = {}", hcl_literal(v))).collect();
            format!("{{ {} }}", fields.join(", "))
        }
        Value::Dynamic(_, v) => hcl_literal(v),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::framework::schema::Attribute;
    use crate::framework::validator::IntBetween;

    fn schemas() -> SchemasResponse {
        let mut r = SchemasResponse {
            provider: Schema::new(0, Block::new().description("Declares things.")),
            ..Default::default()
        };
        let nested = NestedBlock {
            name: "secret".into(),
            nesting: Nesting::Single,
            block: Block::new()
                .description("Where to store it.")
                .attribute(Attribute::string("name").required().description("Secret name."))
                .block(NestedBlock {
                    name: "labels".into(),
                    nesting: Nesting::List,
                    block: Block::new().attribute(Attribute::string("key").optional()),
                    min_items: 0,
                    max_items: 3,
                }),
            min_items: 0,
            max_items: 1,
        };
        let mut length = Attribute::number("length")
            .optional()
            .computed()
            .description("How long.");
        length.default = Some(Value::from(48));
        length.validators.push(Arc::new(IntBetween { min: 16, max: 512 }));
        let mut password = Attribute::string("password").optional().description("Write it once.");
        password.write_only = true;
        password.sensitive = true;
        let mut token = Attribute::string("token").computed().description("The token.");
        token.sensitive = true;
        r.resources.insert(
            "demo_token".into(),
            Schema::new(
                0,
                Block::new()
                    .description("A token.")
                    .attribute(Attribute::string("id").computed().description("The id."))
                    .attribute(length)
                    .attribute(password)
                    .attribute(Attribute::of_type("keepers", Type::map(Type::String)).optional())
                    .attribute(token)
                    .block(nested),
            ),
        );
        r.data_sources.insert(
            "demo_facts".into(),
            Schema::new(0, Block::new().attribute(Attribute::string("os").computed())),
        );
        r
    }

    fn examples(rel: &str) -> Option<String> {
        match rel {
            "resources/demo_token/resource.tf" => Some("resource \"demo_token\" \"t\" {}\n".into()),
            "resources/demo_token/import.sh" => Some("terraform import demo_token.t env:TOKEN\n".into()),
            "resources/demo_token/notes.md" => Some("## Upgrading\n\nNothing to do.\n".into()),
            "provider/provider.tf" => Some("provider \"demo\" {}\n".into()),
            _ => None,
        }
    }

    #[test]
    fn registry_layout_without_prefix() {
        let pages = render("demo", &schemas(), &examples);
        let names: Vec<&str> = pages.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["data-sources/facts.md", "index.md", "resources/token.md"]);
    }

    #[test]
    fn resource_page_lists_arguments_by_category() {
        let pages = render("demo", &schemas(), &examples);
        let page = &pages["resources/token.md"];
        assert!(page.starts_with("---\npage_title: \"demo_token Resource - terraform-provider-selfhost\"\n"));
        assert!(page.contains("# demo_token (Resource)\n\nA token.\n"));
        assert!(
            page.contains("```terraform\nresource \"demo_token\" \"t\" {}\n```"),
            "{page}"
        );
        let opt = page.find("### Optional").unwrap();
        let ro = page.find("### Read-Only").unwrap();
        let length = page
            .find("- `length` (Number) How long. Defaults to `48`. Must be a whole number between 16 and 512.")
            .unwrap_or_else(|| panic!("{page}"));
        assert!(opt < length && length < ro, "{page}");
        assert!(page.contains("- `keepers` (Map of String)\n"), "{page}");
        assert!(page.contains("- `token` (String, Sensitive)"), "{page}");
        assert!(page.contains("- `password` (String, Sensitive, Write-only) Write it once. Write-only:"));
        assert!(page.contains("- `id` (String) The id."));
        assert!(page.contains("## Import\n\nImport is supported using the following syntax:\n\n```shell\nterraform import demo_token.t env:TOKEN\n```"));
        let notes = page
            .find("\n## Upgrading\n\nNothing to do.\n\n## Import")
            .unwrap_or_else(|| panic!("notes between the schema and the import: {page}"));
        assert!(ro < notes, "{page}");
    }

    #[test]
    fn nested_blocks_get_their_own_sections() {
        let pages = render("demo", &schemas(), &examples);
        let page = &pages["resources/token.md"];
        assert!(
            page.contains(
                "- `secret` (Block) Where to store it. (see [below for nested schema](#nestedblock--secret))"
            ),
            "{page}"
        );
        let sec = page.find("### Nested Schema for `secret`").unwrap();
        let labels = page.find("### Nested Schema for `secret.labels`").unwrap();
        assert!(sec < labels);
        assert!(page.contains("<a id=\"nestedblock--secret--labels\"></a>"));
        assert!(
            page.contains(
                "- `labels` (Block List, Max: 3) (see [below for nested schema](#nestedblock--secret--labels))"
            ),
            "{page}"
        );
        assert!(page[sec..labels].contains("### Required\n\n- `name` (String) Secret name."));
    }

    #[test]
    fn index_page_has_provider_example() {
        let pages = render("demo", &schemas(), &examples);
        let index = &pages["index.md"];
        assert!(index.contains("# demo Provider\n\nDeclares things.\n"));
        assert!(index.contains("## Example Usage\n\n```terraform\nprovider \"demo\" {}\n```"));
        assert!(index.contains("## Schema"));
    }

    #[test]
    fn write_replaces_stale_pages() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join("resources/gone.md");
        std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
        std::fs::write(&stale, "old").unwrap();
        let keep = dir.path().join("guides/howto.md");
        std::fs::create_dir_all(keep.parent().unwrap()).unwrap();
        std::fs::write(&keep, "mine").unwrap();
        let server = ProviderServer::new(crate::resources::provider());
        let written = write(&server, dir.path(), Path::new("/nonexistent")).unwrap();
        assert!(!stale.exists());
        assert!(keep.exists(), "hand-written guides are left alone");
        assert!(written.iter().any(|p| p.ends_with("index.md")));
        assert!(written.iter().any(|p| p.ends_with("resources/gateway_token.md")));
    }
}
