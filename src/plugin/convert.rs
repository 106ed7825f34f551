//! Conversions between framework types and tfplugin6 messages. Pure data
//! mapping: no I/O, no policy.

use std::collections::BTreeMap;

use crate::framework::server::{ClientCapabilities, RawState, RawValue};
use crate::framework::{
    Attribute, AttributePath, Block, Description, Diagnostic, Diagnostics, NestedBlock, Nesting, PathStep, Schema,
    Severity,
};

use super::proto::tfplugin6 as pb;

/// A request's `DynamicValue` (absent means empty: the framework treats it as null).
pub fn raw_from_proto(v: Option<pb::DynamicValue>) -> RawValue {
    v.map(|d| RawValue {
        msgpack: d.msgpack,
        json: d.json,
    })
    .unwrap_or_default()
}

/// An answer's `DynamicValue`. An empty value is sent as absent, which the
/// CLI reads as null, rather than as a message with neither encoding, which
/// it cannot decode.
pub fn raw_to_proto(v: RawValue) -> Option<pb::DynamicValue> {
    if v.msgpack.is_empty() && v.json.is_empty() {
        return None;
    }
    Some(pb::DynamicValue {
        msgpack: v.msgpack,
        json: v.json,
    })
}

/// UpgradeResourceState's and MoveResourceState's stored state.
pub fn raw_state_from_proto(v: Option<pb::RawState>) -> RawState {
    v.map(|s| RawState {
        json: s.json,
        flatmap: s.flatmap.into_iter().collect(),
    })
    .unwrap_or_default()
}

/// What the client can do; an absent message (older CLIs) means nothing extra.
pub fn client_capabilities(c: Option<pb::ClientCapabilities>) -> ClientCapabilities {
    c.map(|c| ClientCapabilities {
        deferral_allowed: c.deferral_allowed,
        write_only_attributes_allowed: c.write_only_attributes_allowed,
    })
    .unwrap_or_default()
}

/// A framework path as protocol steps.
pub fn path_to_proto(path: &AttributePath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: path
            .0
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    PathStep::Attribute(n) => Selector::AttributeName(n.clone()),
                    PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                    PathStep::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

/// Protocol steps as a framework path; steps without a selector carry no
/// information and are skipped.
pub fn path_from_proto(path: &pb::AttributePath) -> AttributePath {
    use pb::attribute_path::step::Selector;
    AttributePath(
        path.steps
            .iter()
            .filter_map(|s| match s.selector.as_ref()? {
                Selector::AttributeName(n) => Some(PathStep::Attribute(n.clone())),
                Selector::ElementKeyString(k) => Some(PathStep::Key(k.clone())),
                Selector::ElementKeyInt(i) => Some(PathStep::Index(*i)),
            })
            .collect(),
    )
}

/// One diagnostic.
pub fn diagnostic_to_proto(d: &Diagnostic) -> pb::Diagnostic {
    pb::Diagnostic {
        severity: match d.severity {
            Severity::Error => pb::diagnostic::Severity::Error,
            Severity::Warning => pb::diagnostic::Severity::Warning,
        } as i32,
        summary: d.summary.clone(),
        detail: d.detail.clone(),
        attribute: d.attribute.as_ref().map(path_to_proto),
    }
}

/// All diagnostics.
pub fn diagnostics_to_proto(d: &Diagnostics) -> Vec<pb::Diagnostic> {
    d.0.iter().map(diagnostic_to_proto).collect()
}

/// Diagnostics holding one error, for failures of the wire itself (a
/// panicking handler, an unsupported RPC).
pub fn error_diagnostics(summary: &str, detail: &str) -> Vec<pb::Diagnostic> {
    let mut d = Diagnostics::new();
    d.error(summary, detail);
    diagnostics_to_proto(&d)
}

/// A schema. The CLI reads the version from the schema, not the block.
pub fn schema_to_proto(s: &Schema) -> pb::Schema {
    pb::Schema {
        version: s.version,
        block: Some(block_to_proto(&s.block)),
    }
}

/// A map of type name to schema.
pub fn schemas_to_proto(m: &BTreeMap<String, Schema>) -> std::collections::HashMap<String, pb::Schema> {
    m.iter().map(|(k, v)| (k.clone(), schema_to_proto(v))).collect()
}

fn block_to_proto(b: &Block) -> pb::schema::Block {
    let (description, description_kind) = description_to_proto(&b.description);
    pb::schema::Block {
        version: 0,
        attributes: b.attributes.iter().map(attribute_to_proto).collect(),
        block_types: b.blocks.iter().map(nested_block_to_proto).collect(),
        description,
        description_kind,
        deprecated: b.deprecated,
    }
}

fn attribute_to_proto(a: &Attribute) -> pb::schema::Attribute {
    let (description, description_kind) = description_to_proto(&a.description);
    pb::schema::Attribute {
        name: a.name.clone(),
        // A `serde_json::Value` always serialises; the fallback is unreachable.
        r#type: serde_json::to_vec(&a.ty.to_json()).unwrap_or_default(),
        nested_type: None,
        description,
        required: a.required,
        optional: a.optional,
        computed: a.computed,
        sensitive: a.sensitive,
        description_kind,
        deprecated: a.deprecation.is_some(),
        write_only: a.write_only,
    }
}

fn nested_block_to_proto(n: &NestedBlock) -> pb::schema::NestedBlock {
    use pb::schema::nested_block::NestingMode;
    let nesting = match n.nesting {
        Nesting::Single => NestingMode::Single,
        Nesting::Group => NestingMode::Group,
        Nesting::List => NestingMode::List,
        Nesting::Set => NestingMode::Set,
        Nesting::Map => NestingMode::Map,
    };
    pb::schema::NestedBlock {
        type_name: n.name.clone(),
        block: Some(block_to_proto(&n.block)),
        nesting: nesting as i32,
        min_items: n.min_items,
        max_items: n.max_items,
    }
}

/// The markdown text with kind MARKDOWN when there is one, else the plain text.
fn description_to_proto(d: &Description) -> (String, i32) {
    match &d.markdown {
        Some(md) => (md.clone(), pb::StringKind::Markdown as i32),
        None => (d.plain.clone(), pb::StringKind::Plain as i32),
    }
}

/// A time as a protobuf timestamp.
pub fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        // Always below 10^9, so it fits.
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Type;

    fn attr(name: &str, ty: Type) -> Attribute {
        Attribute::of_type(name, ty)
    }

    #[test]
    fn path_round_trips_through_proto() {
        let p = AttributePath::root("hosts").index(2).attr("labels").key("tier");
        let pb = path_to_proto(&p);
        assert_eq!(pb.steps.len(), 4);
        assert_eq!(path_from_proto(&pb), p);
    }

    #[test]
    fn diagnostics_keep_severity_text_and_path() {
        let mut d = Diagnostics::new();
        d.attribute_error(AttributePath::root("port"), "Bad port", "Use 1-65535.");
        d.warning("Deprecated", "Use x instead.");
        let pb = diagnostics_to_proto(&d);
        assert_eq!(pb[0].severity, pb::diagnostic::Severity::Error as i32);
        assert_eq!(pb[0].summary, "Bad port");
        assert_eq!(pb[0].detail, "Use 1-65535.");
        assert_eq!(
            path_from_proto(pb[0].attribute.as_ref().unwrap()),
            AttributePath::root("port")
        );
        assert_eq!(pb[1].severity, pb::diagnostic::Severity::Warning as i32);
        assert!(pb[1].attribute.is_none());
    }

    #[test]
    fn schema_maps_flags_types_descriptions_and_nesting() {
        let mut secret = attr("token", Type::String);
        secret.optional = true;
        secret.sensitive = true;
        secret.write_only = true;
        secret.deprecation = Some("use token_wo".into());
        secret.description = Description {
            plain: "plain".into(),
            markdown: Some("**md**".into()),
        };
        let mut labels = attr("labels", Type::map(Type::String));
        labels.computed = true;
        labels.description = "just plain".into();
        let schema = Schema {
            version: 3,
            block: Block {
                attributes: vec![secret, labels],
                blocks: vec![NestedBlock {
                    name: "timeouts".into(),
                    nesting: Nesting::Single,
                    block: Block::default(),
                    min_items: 0,
                    max_items: 1,
                }],
                description: Description::default(),
                deprecated: true,
            },
        };
        let pb = schema_to_proto(&schema);
        assert_eq!(pb.version, 3);
        let block = pb.block.unwrap();
        assert!(block.deprecated);
        let token = &block.attributes[0];
        assert!(token.optional && token.sensitive && token.write_only && token.deprecated);
        assert!(!token.required && !token.computed);
        assert_eq!(token.r#type, br#""string""#);
        assert_eq!(token.description, "**md**");
        assert_eq!(token.description_kind, pb::StringKind::Markdown as i32);
        let labels = &block.attributes[1];
        assert_eq!(labels.r#type, br#"["map","string"]"#);
        assert_eq!(labels.description, "just plain");
        assert_eq!(labels.description_kind, pb::StringKind::Plain as i32);
        assert!(labels.computed && !labels.deprecated);
        let timeouts = &block.block_types[0];
        assert_eq!(timeouts.type_name, "timeouts");
        assert_eq!(timeouts.nesting, pb::schema::nested_block::NestingMode::Single as i32);
        assert_eq!((timeouts.min_items, timeouts.max_items), (0, 1));
    }

    #[test]
    fn nesting_modes_map_one_to_one() {
        use pb::schema::nested_block::NestingMode as M;
        for (n, m) in [
            (Nesting::Single, M::Single),
            (Nesting::Group, M::Group),
            (Nesting::List, M::List),
            (Nesting::Set, M::Set),
            (Nesting::Map, M::Map),
        ] {
            let b = nested_block_to_proto(&NestedBlock {
                name: "b".into(),
                nesting: n,
                block: Block::default(),
                min_items: 0,
                max_items: 0,
            });
            assert_eq!(b.nesting, m as i32, "{n:?}");
        }
    }

    #[test]
    fn empty_answers_are_absent_and_values_pass_through() {
        assert_eq!(raw_to_proto(RawValue::default()), None);
        let v = RawValue {
            msgpack: vec![0xc0],
            json: Vec::new(),
        };
        assert_eq!(raw_to_proto(v.clone()).unwrap().msgpack, vec![0xc0]);
        assert_eq!(raw_from_proto(raw_to_proto(v.clone())), v);
        assert_eq!(raw_from_proto(None), RawValue::default());
    }

    #[test]
    fn absent_client_capabilities_mean_none() {
        let c = client_capabilities(None);
        assert!(!c.deferral_allowed && !c.write_only_attributes_allowed);
        let c = client_capabilities(Some(pb::ClientCapabilities {
            deferral_allowed: false,
            write_only_attributes_allowed: true,
        }));
        assert!(c.write_only_attributes_allowed);
    }

    #[test]
    fn timestamps_keep_seconds_and_nanos() {
        let t = time::macros::datetime!(2030-01-02 03:04:05.5 UTC);
        let ts = timestamp(t);
        assert_eq!(ts.seconds, t.unix_timestamp());
        assert_eq!(ts.nanos, 500_000_000);
    }
}
