//! cty types and their JSON form (`"string"`, `["list","string"]`, ...).

use std::collections::{BTreeMap, BTreeSet};

/// A cty type, as schemas declare attribute types.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    /// `true` or `false`.
    Bool,
    /// An arbitrary-precision number.
    Number,
    /// A UTF-8 string.
    String,
    /// Any type; values travel as `[type-json, value]`.
    Dynamic,
    /// An ordered sequence of elements of one type.
    List(Box<Type>),
    /// An unordered collection of distinct elements of one type.
    Set(Box<Type>),
    /// String keys to elements of one type.
    Map(Box<Type>),
    /// A fixed-length sequence, each element of its own type.
    Tuple(Vec<Type>),
    /// Object attributes, with the names of optional attributes.
    Object(BTreeMap<String, Type>, BTreeSet<String>),
}

impl Type {
    /// `list(elem)`.
    pub fn list(elem: Type) -> Type {
        Type::List(Box::new(elem))
    }
    /// `set(elem)`.
    pub fn set(elem: Type) -> Type {
        Type::Set(Box::new(elem))
    }
    /// `map(elem)`.
    pub fn map(elem: Type) -> Type {
        Type::Map(Box::new(elem))
    }
    /// `object({...})` with no optional attributes.
    pub fn object<I: IntoIterator<Item = (String, Type)>>(attrs: I) -> Type {
        Type::Object(attrs.into_iter().collect(), BTreeSet::new())
    }

    /// The JSON form used in schemas and dynamic values.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Value as J, json};
        match self {
            Type::Bool => J::from("bool"),
            Type::Number => J::from("number"),
            Type::String => J::from("string"),
            Type::Dynamic => J::from("dynamic"),
            Type::List(e) => json!(["list", e.to_json()]),
            Type::Set(e) => json!(["set", e.to_json()]),
            Type::Map(e) => json!(["map", e.to_json()]),
            Type::Tuple(es) => json!(["tuple", es.iter().map(Type::to_json).collect::<Vec<_>>()]),
            Type::Object(attrs, optional) => {
                let a: serde_json::Map<String, J> = attrs.iter().map(|(k, t)| (k.clone(), t.to_json())).collect();
                if optional.is_empty() {
                    json!(["object", a])
                } else {
                    json!(["object", a, optional.iter().collect::<Vec<_>>()])
                }
            }
        }
    }

    /// Parse the JSON form.
    pub fn from_json(j: &serde_json::Value) -> Result<Type, String> {
        use serde_json::Value as J;
        match j {
            J::String(s) => match s.as_str() {
                "bool" => Ok(Type::Bool),
                "number" => Ok(Type::Number),
                "string" => Ok(Type::String),
                "dynamic" => Ok(Type::Dynamic),
                other => Err(format!("unknown primitive type {other:?}")),
            },
            J::Array(parts) => {
                let kind = parts
                    .first()
                    .and_then(J::as_str)
                    .ok_or("type array must start with a kind")?;
                let arg = parts.get(1).ok_or("type array needs an argument")?;
                match kind {
                    "list" => Ok(Type::list(Type::from_json(arg)?)),
                    "set" => Ok(Type::set(Type::from_json(arg)?)),
                    "map" => Ok(Type::map(Type::from_json(arg)?)),
                    "tuple" => {
                        let es = arg.as_array().ok_or("tuple needs an array of types")?;
                        Ok(Type::Tuple(es.iter().map(Type::from_json).collect::<Result<_, _>>()?))
                    }
                    "object" => {
                        let attrs = arg.as_object().ok_or("object needs a map of types")?;
                        let attrs = attrs
                            .iter()
                            .map(|(k, v)| Ok((k.clone(), Type::from_json(v)?)))
                            .collect::<Result<BTreeMap<_, _>, String>>()?;
                        let optional = match parts.get(2) {
                            Some(J::Array(o)) => o.iter().filter_map(J::as_str).map(str::to_owned).collect(),
                            _ => BTreeSet::new(),
                        };
                        Ok(Type::Object(attrs, optional))
                    }
                    other => Err(format!("unknown type kind {other:?}")),
                }
            }
            _ => Err("a type is a string or an array".to_owned()),
        }
    }
}
