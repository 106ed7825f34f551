//! Property tests for the value codecs and typed conversion: arbitrary types,
//! arbitrary values of them (nulls and refined unknowns at any depth), and
//! random or corrupted bytes that must be rejected without a panic.

use std::collections::{BTreeMap, BTreeSet};

use bigdecimal::BigDecimal;
use bigdecimal::num_bigint::BigInt;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use terraform_provider_selfhost::framework::codec::{json, msgpack};
use terraform_provider_selfhost::framework::typed::{self, Maybe};
use terraform_provider_selfhost::framework::{Number, Refinements, Type, Value};

fn attr_name() -> impl Strategy<Value = String> {
    "[a-z_]{1,6}"
}

/// A type; `Dynamic` only where `allow_dynamic`.
fn arb_type(depth: u32, allow_dynamic: bool) -> BoxedStrategy<Type> {
    let leaf = if allow_dynamic {
        prop_oneof![
            Just(Type::Bool),
            Just(Type::Number),
            Just(Type::String),
            Just(Type::Dynamic)
        ]
        .boxed()
    } else {
        prop_oneof![Just(Type::Bool), Just(Type::Number), Just(Type::String)].boxed()
    };
    leaf.prop_recursive(depth, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Type::Tuple),
            (prop::collection::btree_map(attr_name(), inner, 0..4), any::<u8>()).prop_map(|(attrs, mask)| {
                // Some attributes optional, to exercise the type JSON.
                let optional: BTreeSet<String> = attrs
                    .keys()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, k)| k.clone())
                    .collect();
                Type::Object(attrs, optional)
            }),
        ]
    })
    .boxed()
}

fn arb_number() -> BoxedStrategy<Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(|u| Number(BigDecimal::from(u))),
        (any::<i64>(), -40i64..40).prop_map(|(m, scale)| Number(BigDecimal::new(BigInt::from(m), scale))),
        (any::<u128>(), 0i64..60).prop_map(|(m, e)| Number(BigDecimal::new(BigInt::from(m), -e))),
        // Exactly representable binary fractions m / 2^k, which go as floats.
        (-(1i64 << 53)..(1i64 << 53), 0u32..60).prop_map(|(m, k)| {
            Number(BigDecimal::new(
                BigInt::from(m) * BigInt::from(5u8).pow(k),
                i64::from(k),
            ))
        }),
    ]
    .boxed()
}

/// Refinements that apply to `ty`, as a wire round trip keeps them.
fn arb_refinements(ty: &Type) -> BoxedStrategy<Refinements> {
    let nullable = prop::option::of(any::<bool>());
    match ty {
        Type::Dynamic => Just(Refinements::default()).boxed(),
        Type::String => (nullable, prop::option::of("[a-z🤷-]{0,40}"))
            .prop_map(|(nullable, string_prefix)| Refinements {
                nullable,
                string_prefix,
                ..Default::default()
            })
            .boxed(),
        Type::Number => (
            nullable,
            prop::option::of((arb_number(), any::<bool>())),
            prop::option::of((arb_number(), any::<bool>())),
        )
            .prop_map(|(nullable, number_lower, number_upper)| Refinements {
                nullable,
                number_lower,
                number_upper,
                ..Default::default()
            })
            .boxed(),
        Type::List(_) | Type::Set(_) | Type::Map(_) => {
            (nullable, prop::option::of(any::<u64>()), prop::option::of(any::<u64>()))
                .prop_map(|(nullable, length_lower, length_upper)| Refinements {
                    nullable,
                    length_lower,
                    length_upper,
                    ..Default::default()
                })
                .boxed()
        }
        _ => nullable
            .prop_map(|nullable| Refinements {
                nullable,
                ..Default::default()
            })
            .boxed(),
    }
}

/// A value of `ty`: null, unknown (maybe refined) or known, at any depth.
fn arb_value(ty: &Type, with_unknowns: bool) -> BoxedStrategy<Value> {
    let known = arb_known(ty, with_unknowns);
    if with_unknowns {
        let unknown = arb_refinements(ty).prop_map(|r| Value::Unknown(Box::new(r)));
        prop_oneof![1 => Just(Value::Null), 1 => unknown, 4 => known].boxed()
    } else {
        prop_oneof![1 => Just(Value::Null), 4 => known].boxed()
    }
}

fn arb_known(ty: &Type, with_unknowns: bool) -> BoxedStrategy<Value> {
    match ty {
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => arb_number().prop_map(Value::Number).boxed(),
        Type::String => any::<String>().prop_map(Value::String).boxed(),
        Type::List(e) => prop::collection::vec(arb_value(e, with_unknowns), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(e) => prop::collection::vec(arb_value(e, with_unknowns), 0..4)
            .prop_map(Value::Set)
            .boxed(),
        Type::Map(e) => prop::collection::btree_map(any::<String>(), arb_value(e, with_unknowns), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Tuple(es) => es
            .iter()
            .map(|e| arb_value(e, with_unknowns))
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
        Type::Object(attrs, _) => {
            let names: Vec<String> = attrs.keys().cloned().collect();
            attrs
                .values()
                .map(|t| arb_value(t, with_unknowns))
                .collect::<Vec<_>>()
                .prop_map(move |vals| Value::Object(names.iter().cloned().zip(vals).collect()))
                .boxed()
        }
        Type::Dynamic => arb_type(1, false)
            .prop_flat_map(move |t| {
                arb_value(&t, with_unknowns).prop_map(move |v| match v {
                    // A dynamic null decodes as a plain null.
                    Value::Null => Value::Null,
                    v => Value::Dynamic(t.clone(), Box::new(v)),
                })
            })
            .boxed(),
    }
}

fn typed_value(with_unknowns: bool) -> impl Strategy<Value = (Type, Value)> {
    arb_type(3, true).prop_flat_map(move |t| arb_value(&t, with_unknowns).prop_map(move |v| (t.clone(), v)))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rule {
    port: u16,
    proto: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Model {
    id: Maybe<String>,
    name: String,
    count: i64,
    size: u64,
    ratio: Option<f64>,
    labels: BTreeMap<String, String>,
    tags: BTreeSet<String>,
    rules: Vec<Rule>,
    enabled: Maybe<bool>,
}

fn model_type() -> Type {
    let rule = Type::object([("port".to_string(), Type::Number), ("proto".to_string(), Type::String)]);
    Type::object([
        ("id".to_string(), Type::String),
        ("name".to_string(), Type::String),
        ("count".to_string(), Type::Number),
        ("size".to_string(), Type::Number),
        ("ratio".to_string(), Type::Number),
        ("labels".to_string(), Type::map(Type::String)),
        ("tags".to_string(), Type::set(Type::String)),
        ("rules".to_string(), Type::list(rule)),
        ("enabled".to_string(), Type::Bool),
    ])
}

fn arb_maybe<T: std::fmt::Debug + Clone + 'static>(s: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Maybe<T>> {
    prop_oneof![Just(Maybe::Null), Just(Maybe::Unknown), s.prop_map(Maybe::Known)].boxed()
}

fn arb_model() -> impl Strategy<Value = Model> {
    (
        arb_maybe(any::<String>()),
        any::<String>(),
        any::<i64>(),
        any::<u64>(),
        prop::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
        prop::collection::btree_map(any::<String>(), any::<String>(), 0..4),
        prop::collection::btree_set(any::<String>(), 0..4),
        prop::collection::vec(
            (any::<u16>(), prop::option::of("[a-z]{1,5}")).prop_map(|(port, proto)| Rule { port, proto }),
            0..3,
        ),
        arb_maybe(any::<bool>()),
    )
        .prop_map(|(id, name, count, size, ratio, labels, tags, rules, enabled)| Model {
            id,
            name,
            count,
            size,
            ratio,
            labels,
            tags,
            rules,
            enabled,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn msgpack_round_trips((ty, v) in typed_value(true)) {
        let bytes = msgpack::encode(&v, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = msgpack::decode(&bytes, &ty).map_err(|e| TestCaseError::fail(format!("{e} in {bytes:02x?}")))?;
        prop_assert_eq!(back, v);
    }

    #[test]
    fn json_round_trips_known_values((ty, v) in typed_value(false)) {
        let bytes = json::encode(&v, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let text = String::from_utf8(bytes.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = json::decode(&bytes, &ty).map_err(|e| TestCaseError::fail(format!("{e} in {text}")))?;
        prop_assert_eq!(&back, &v);
        // Lenient decoding changes nothing for a value of the very type.
        prop_assert_eq!(json::decode_lenient(&bytes, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?, v);
        // What we write is JSON any parser reads.
        prop_assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(), "{}", text);
    }

    #[test]
    fn json_rejects_unknowns((ty, v) in typed_value(true)) {
        let encoded = json::encode(&v, &ty);
        prop_assert_eq!(encoded.is_ok(), v.is_wholly_known());
    }

    #[test]
    fn typed_model_round_trips(m in arb_model()) {
        let ty = model_type();
        let v = typed::to_value_as(&m, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let bytes = msgpack::encode(&v, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = msgpack::decode(&bytes, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let m2: Model = typed::from_value(&back).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(m2, m);
    }

    #[test]
    fn semantic_equality_ignores_set_order((ty, v) in typed_value(true)) {
        prop_assert!(v.semantically_equal(&v));
        let reversed = reverse_sets(v.clone());
        prop_assert!(v.semantically_equal(&reversed));
        prop_assert!(reversed.semantically_equal(&v));
        let _ = ty;
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64), ty in arb_type(3, true)) {
        let _ = msgpack::decode(&bytes, &ty);
        let _ = json::decode(&bytes, &ty);
        let _ = json::decode_lenient(&bytes, &ty);
    }

    #[test]
    fn corrupted_encodings_never_panic(
        (ty, v) in typed_value(true),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let Ok(mut bytes) = msgpack::encode(&v, &ty) else { return Ok(()) };
        for (at, b) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *b;
        }
        let n = cut.index(bytes.len() + 1);
        for input in [&bytes[..], &bytes[..n]] {
            // Whatever is accepted must be stable through encode → decode.
            if let Ok(d) = msgpack::decode(input, &ty) {
                let again = msgpack::encode(&d, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(msgpack::decode(&again, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?, d);
            }
        }
        if v.is_wholly_known()
            && let Ok(mut text) = json::encode(&v, &ty)
        {
            for (at, b) in &edits {
                let i = at.index(text.len());
                text[i] = *b;
            }
            let n = cut.index(text.len() + 1);
            for input in [&text[..], &text[..n]] {
                for decode in [json::decode, json::decode_lenient] {
                    if let Ok(d) = decode(input, &ty) {
                        let again = json::encode(&d, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(json::decode(&again, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?, d);
                    }
                }
            }
        }
    }
}

fn reverse_sets(v: Value) -> Value {
    match v {
        Value::Set(items) => Value::Set(items.into_iter().rev().map(reverse_sets).collect()),
        Value::List(items) => Value::List(items.into_iter().map(reverse_sets).collect()),
        Value::Tuple(items) => Value::Tuple(items.into_iter().map(reverse_sets).collect()),
        Value::Map(m) => Value::Map(m.into_iter().map(|(k, v)| (k, reverse_sets(v))).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, reverse_sets(v))).collect()),
        Value::Dynamic(t, v) => Value::Dynamic(t, Box::new(reverse_sets(*v))),
        v => v,
    }
}
