//! Shared by the fuzz targets: pick a schema type from the first input bytes.

use std::collections::{BTreeMap, BTreeSet};

use terraform_provider_selfhost::framework::Type;

/// Types that resource schemas really use, chosen by the first byte; a first
/// byte past them means "read a type from the next bytes".
fn fixed() -> Vec<Type> {
    let rule = Type::object([
        ("port".to_string(), Type::Number),
        ("cidrs".to_string(), Type::set(Type::String)),
    ]);
    vec![
        Type::String,
        Type::Number,
        Type::Bool,
        Type::Dynamic,
        Type::list(Type::String),
        Type::map(Type::Number),
        Type::Tuple(vec![Type::String, Type::Bool]),
        Type::Object(
            [
                ("id".to_string(), Type::String),
                ("keepers".to_string(), Type::map(Type::String)),
                ("rules".to_string(), Type::list(rule)),
                ("extra".to_string(), Type::Dynamic),
            ]
            .into(),
            BTreeSet::from(["extra".to_string()]),
        ),
    ]
}

/// A type from a byte code (bounded depth), consuming bytes from `data`.
fn read_type(data: &mut &[u8], depth: u32) -> Type {
    let Some((&b, rest)) = data.split_first() else {
        return Type::String;
    };
    *data = rest;
    let leaf = |b: u8| match b % 4 {
        0 => Type::String,
        1 => Type::Number,
        2 => Type::Bool,
        _ => Type::Dynamic,
    };
    if depth >= 4 {
        return leaf(b);
    }
    match b % 9 {
        4 => Type::list(read_type(data, depth + 1)),
        5 => Type::set(read_type(data, depth + 1)),
        6 => Type::map(read_type(data, depth + 1)),
        7 => {
            let n = data.first().map_or(0, |n| n % 4);
            *data = data.get(1..).unwrap_or_default();
            Type::Tuple((0..n).map(|_| read_type(data, depth + 1)).collect())
        }
        8 => {
            let n = data.first().map_or(0, |n| n % 4);
            *data = data.get(1..).unwrap_or_default();
            let attrs: BTreeMap<String, Type> = (0..n)
                .map(|i| {
                    (
                        ["a", "b", "c", "d"][usize::from(i)].to_string(),
                        read_type(data, depth + 1),
                    )
                })
                .collect();
            Type::Object(attrs, BTreeSet::new())
        }
        _ => leaf(b),
    }
}

/// Split the input into a type and the bytes to decode.
pub fn split(data: &[u8]) -> (Type, &[u8]) {
    let fixed = fixed();
    let Some((&first, mut rest)) = data.split_first() else {
        return (Type::String, data);
    };
    match fixed.get(usize::from(first)) {
        Some(ty) => (ty.clone(), rest),
        None => {
            let ty = read_type(&mut rest, 0);
            (ty, rest)
        }
    }
}
