//! A resource's own Rust struct ↔ [`Value`], through serde.
//!
//! Structs are objects (field name = attribute name), `Vec` and other
//! sequences are lists, string-keyed maps are maps, `Option` is null, integers
//! and floats are numbers, unit enum variants are strings. An attribute that
//! may be unknown (a computed value during planning) is held in a
//! [`Maybe<T>`]; any other field errors on an unknown, naming its path.
//!
//! [`to_value`] cannot know whether a `Vec` is meant as a list, set or tuple,
//! nor a struct as an object or a map; [`to_value_as`] (or [`conform`])
//! retags the result to a schema type, which the codecs also do on their own.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::ser::{self, Serialize};
use serde::{Deserialize, Deserializer, Serializer};

use super::codec::number;
use super::diagnostics::{Diagnostic, Severity};
use super::path::{AttributePath, PathStep};
use super::types::Type;
use super::value::{Number, Value};

/// Why a value could not be converted to or from a Rust type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypedError {
    /// Where in the value; empty at the root.
    pub path: AttributePath,
    /// What was wrong, e.g. the expected type.
    pub message: String,
}

impl fmt::Display for TypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.0.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for TypedError {}

impl de::Error for TypedError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TypedError {
            path: AttributePath::default(),
            message: msg.to_string(),
        }
    }
}

impl ser::Error for TypedError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TypedError {
            path: AttributePath::default(),
            message: msg.to_string(),
        }
    }
}

impl TypedError {
    fn at(path: &AttributePath, message: impl Into<String>) -> Self {
        TypedError {
            path: path.clone(),
            message: message.into(),
        }
    }

    /// Give a path to an error raised without one (by a serde visitor).
    fn or_at(mut self, path: &AttributePath) -> Self {
        if self.path.0.is_empty() {
            self.path = path.clone();
        }
        self
    }

    /// Put `step` in front of the path (errors bubbling out of a field).
    fn under(mut self, step: PathStep) -> Self {
        self.path.0.insert(0, step);
        self
    }
}

/// A model that does not match its schema is the provider's bug, not the
/// user's: say so, and point at the attribute.
impl From<TypedError> for Diagnostic {
    fn from(e: TypedError) -> Self {
        Diagnostic {
            severity: Severity::Error,
            summary: "Provider could not convert an attribute value".to_owned(),
            detail: format!("{e}. This is a bug in the provider; please report it."),
            attribute: (!e.path.0.is_empty()).then_some(e.path),
        }
    }
}

/// Convert a value into `T`.
///
/// # Errors
/// When the value's shape does not fit `T`, or an unknown meets a field that
/// is not a [`Maybe`]; the error's path names the attribute.
pub fn from_value<T: DeserializeOwned>(v: &Value) -> Result<T, TypedError> {
    let path = AttributePath::default();
    T::deserialize(De { v, path: &path })
}

/// Convert `v` into `T`, or record in `diags` why not: a resource's model
/// not fitting its own schema is a provider bug, said as such.
pub fn decode<T: DeserializeOwned>(v: &Value, what: &str, diags: &mut super::diagnostics::Diagnostics) -> Option<T> {
    match from_value(v) {
        Ok(t) => Some(t),
        Err(e) => {
            diags.error(
                format!("Unreadable {what}"),
                format!("{e}. This is a bug in the provider; please report it."),
            );
            None
        }
    }
}

/// Convert `t` into a value (sequences become lists, structs objects).
///
/// # Errors
/// When `t` holds something with no value form (non-string map keys, bytes,
/// non-finite floats).
pub fn to_value<T: Serialize + ?Sized>(t: &T) -> Result<Value, TypedError> {
    t.serialize(Ser)
}

/// Convert `t` into a value shaped as `ty` (see [`conform`]).
///
/// # Errors
/// As [`to_value`] and [`conform`].
pub fn to_value_as<T: Serialize + ?Sized>(t: &T, ty: &Type) -> Result<Value, TypedError> {
    conform(to_value(t)?, ty)
}

/// Retag `v` to the kinds `ty` names: sequences become lists, sets or tuples,
/// maps and objects swap, missing object attributes become null.
///
/// # Errors
/// When `v` has an attribute `ty` lacks, a tuple of the wrong length, or a
/// primitive of another kind.
pub fn conform(v: Value, ty: &Type) -> Result<Value, TypedError> {
    conform_at(v, ty, &mut Vec::new())
}

fn conform_at(v: Value, ty: &Type, path: &mut Vec<PathStep>) -> Result<Value, TypedError> {
    let here = |path: &[PathStep], m: String| TypedError {
        path: AttributePath(path.to_vec()),
        message: m,
    };
    let kind = v.kind();
    Ok(match (ty, v) {
        (_, v @ (Value::Null | Value::Unknown(_))) => v,
        (Type::Dynamic, v) => v,
        (Type::Bool, v @ Value::Bool(_)) | (Type::Number, v @ Value::Number(_)) => v,
        (Type::String, v @ Value::String(_)) => v,
        (Type::List(elem) | Type::Set(elem), Value::List(items) | Value::Set(items) | Value::Tuple(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                path.push(PathStep::Index(i as i64));
                out.push(conform_at(item, elem, path)?);
                path.pop();
            }
            if matches!(ty, Type::List(_)) {
                Value::List(out)
            } else {
                Value::Set(out)
            }
        }
        (Type::Tuple(elems), Value::List(items) | Value::Set(items) | Value::Tuple(items)) => {
            if items.len() != elems.len() {
                return Err(here(
                    path,
                    format!("{} elements given where the tuple has {}", items.len(), elems.len()),
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, (item, elem)) in items.into_iter().zip(elems).enumerate() {
                path.push(PathStep::Index(i as i64));
                out.push(conform_at(item, elem, path)?);
                path.pop();
            }
            Value::Tuple(out)
        }
        (Type::Map(elem), Value::Map(items) | Value::Object(items)) => {
            let mut out = BTreeMap::new();
            for (k, item) in items {
                path.push(PathStep::Key(k.clone()));
                out.insert(k, conform_at(item, elem, path)?);
                path.pop();
            }
            Value::Map(out)
        }
        (Type::Object(attrs, _), Value::Object(mut items) | Value::Map(mut items)) => {
            if let Some(extra) = items.keys().find(|k| !attrs.contains_key(*k)) {
                path.push(PathStep::Attribute(extra.clone()));
                return Err(here(path, "the schema has no such attribute".to_owned()));
            }
            let mut out = BTreeMap::new();
            for (name, attr_ty) in attrs {
                path.push(PathStep::Attribute(name.clone()));
                let item = items.remove(name).unwrap_or(Value::Null);
                out.insert(name.clone(), conform_at(item, attr_ty, path)?);
                path.pop();
            }
            Value::Object(out)
        }
        _ => {
            return Err(here(
                path,
                format!("{kind} given where the schema says {}", ty.to_json()),
            ));
        }
    })
}

// ---------------------------------------------------------------------------
// Maybe

/// Name by which [`Maybe`] asks our deserializer for null/unknown/known.
const MAYBE_TOKEN: &str = "$selfhost::typed::Maybe";
/// Name by which [`Maybe::Unknown`] asks our serializer for an unknown.
const UNKNOWN_TOKEN: &str = "$selfhost::typed::Unknown";

/// A model field that may be null, not yet known (during planning) or known.
///
/// With other serde formats, `Unknown` serializes as null and deserializing
/// never yields it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Maybe<T> {
    /// Null in configuration or state.
    #[default]
    Null,
    /// Known only after apply.
    Unknown,
    /// A known value.
    Known(T),
}

impl<T> Maybe<T> {
    /// The known value, if any.
    pub fn known(&self) -> Option<&T> {
        match self {
            Maybe::Known(v) => Some(v),
            _ => None,
        }
    }
    /// The known value, consuming `self`.
    pub fn into_known(self) -> Option<T> {
        match self {
            Maybe::Known(v) => Some(v),
            _ => None,
        }
    }
    /// True for [`Maybe::Unknown`].
    pub fn is_unknown(&self) -> bool {
        matches!(self, Maybe::Unknown)
    }
    /// True for [`Maybe::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Maybe::Null)
    }
    /// True for [`Maybe::Known`].
    pub fn is_known(&self) -> bool {
        matches!(self, Maybe::Known(_))
    }
    /// Borrow the known value.
    pub fn as_ref(&self) -> Maybe<&T> {
        match self {
            Maybe::Null => Maybe::Null,
            Maybe::Unknown => Maybe::Unknown,
            Maybe::Known(v) => Maybe::Known(v),
        }
    }
    /// Map the known value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Maybe<U> {
        match self {
            Maybe::Null => Maybe::Null,
            Maybe::Unknown => Maybe::Unknown,
            Maybe::Known(v) => Maybe::Known(f(v)),
        }
    }
}

impl<T> From<Option<T>> for Maybe<T> {
    fn from(o: Option<T>) -> Self {
        o.map_or(Maybe::Null, Maybe::Known)
    }
}

impl<T: Serialize> Serialize for Maybe<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Maybe::Null => s.serialize_none(),
            Maybe::Unknown => s.serialize_unit_struct(UNKNOWN_TOKEN),
            Maybe::Known(v) => s.serialize_some(v),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Maybe<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_newtype_struct(MAYBE_TOKEN, MaybeVisitor(PhantomData))
    }
}

struct MaybeVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for MaybeVisitor<T> {
    type Value = Maybe<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value, null or unknown")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Maybe::Null)
    }
    /// Only our deserializer calls this for a `Maybe`: the value is unknown.
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Maybe::Unknown)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        T::deserialize(d).map(Maybe::Known)
    }
    /// Other formats: null or a value.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Option::<T>::deserialize(d).map(Maybe::from)
    }
}

// ---------------------------------------------------------------------------
// Deserializer: &Value → T

struct De<'a, 'p> {
    v: &'a Value,
    path: &'p AttributePath,
}

impl<'a> De<'a, '_> {
    fn unknown_error(&self) -> TypedError {
        TypedError::at(
            self.path,
            "value is not yet known; the model needs Maybe<T> for this attribute",
        )
    }

    fn invalid(&self, expected: &str) -> TypedError {
        TypedError::at(self.path, format!("expected {expected}, found {}", self.v.kind()))
    }

    /// Follow dynamic values to what they wrap.
    fn inner(&self) -> &'a Value {
        let mut v = self.v;
        while let Value::Dynamic(_, inner) = v {
            v = inner;
        }
        v
    }

    fn integer<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.inner() {
            Value::Number(n) => {
                use bigdecimal::ToPrimitive;
                if !n.0.is_integer() {
                    return Err(TypedError::at(self.path, format!("expected a whole number, found {n}")));
                }
                let r = if let Some(i) = n.0.to_i64() {
                    visitor.visit_i64(i)
                } else if let Some(u) = n.0.to_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.0.to_i128() {
                    visitor.visit_i128(i)
                } else if let Some(u) = n.0.to_u128() {
                    visitor.visit_u128(u)
                } else {
                    return Err(TypedError::at(self.path, format!("{n} is too large")));
                };
                r.map_err(|e: TypedError| e.or_at(self.path))
            }
            Value::Unknown(_) => Err(self.unknown_error()),
            _ => Err(self.invalid("a number")),
        }
    }

    fn float<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.inner() {
            Value::Number(n) => match n.to_f64().filter(|f| f.is_finite()) {
                Some(f) => visitor.visit_f64(f).map_err(|e: TypedError| e.or_at(self.path)),
                None => Err(TypedError::at(self.path, format!("{n} does not fit a float"))),
            },
            Value::Unknown(_) => Err(self.unknown_error()),
            _ => Err(self.invalid("a number")),
        }
    }
}

macro_rules! forward_integer {
    ($($name:ident)*) => {$(
        fn $name<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
            self.integer(visitor)
        }
    )*};
}

impl<'a> Deserializer<'a> for De<'a, '_> {
    type Error = TypedError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        let path = self.path;
        let r = match self.inner() {
            Value::Null => visitor.visit_unit(),
            Value::Unknown(_) => return Err(self.unknown_error()),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) if n.0.is_integer() => return self.integer(visitor),
            Value::Number(_) => return self.float(visitor),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => visitor.visit_seq(Seq {
                items: items.iter().enumerate(),
                path,
            }),
            Value::Map(m) => visitor.visit_map(Map {
                entries: Entries::All(m.iter()),
                path,
                next: None,
                keys: true,
            }),
            Value::Object(m) => visitor.visit_map(Map {
                entries: Entries::All(m.iter()),
                path,
                next: None,
                keys: false,
            }),
            Value::Dynamic(..) => return Err(TypedError::at(path, "dynamic value could not be unwrapped")),
        };
        r.map_err(|e: TypedError| e.or_at(path))
    }

    forward_integer!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128);

    fn deserialize_f32<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.float(visitor)
    }
    fn deserialize_f64<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.float(visitor)
    }

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.inner() {
            Value::Bool(b) => visitor.visit_bool(*b).map_err(|e: TypedError| e.or_at(self.path)),
            Value::Unknown(_) => Err(self.unknown_error()),
            _ => Err(self.invalid("a bool")),
        }
    }

    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.inner() {
            Value::String(s) => visitor
                .visit_borrowed_str(s)
                .map_err(|e: TypedError| e.or_at(self.path)),
            Value::Unknown(_) => Err(self.unknown_error()),
            _ => Err(self.invalid("a string")),
        }
    }
    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_char<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_identifier<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_bytes<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.inner() {
            Value::String(s) => visitor
                .visit_borrowed_bytes(s.as_bytes())
                .map_err(|e: TypedError| e.or_at(self.path)),
            Value::Unknown(_) => Err(self.unknown_error()),
            _ => Err(self.invalid("a string")),
        }
    }
    fn deserialize_byte_buf<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.inner() {
            Value::Null => visitor.visit_none().map_err(|e: TypedError| e.or_at(self.path)),
            Value::Unknown(_) => Err(self.unknown_error()),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.inner() {
            Value::Null => visitor.visit_unit().map_err(|e: TypedError| e.or_at(self.path)),
            Value::Unknown(_) => Err(self.unknown_error()),
            _ => Err(self.invalid("null")),
        }
    }
    fn deserialize_unit_struct<V: Visitor<'a>>(self, _name: &'static str, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        if name == MAYBE_TOKEN {
            return match self.inner() {
                Value::Null => visitor.visit_none(),
                Value::Unknown(_) => visitor.visit_unit(),
                _ => visitor.visit_some(self),
            };
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.inner() {
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => visitor
                .visit_seq(Seq {
                    items: items.iter().enumerate(),
                    path: self.path,
                })
                .map_err(|e: TypedError| e.or_at(self.path)),
            Value::Unknown(_) => Err(self.unknown_error()),
            _ => Err(self.invalid("a list")),
        }
    }
    fn deserialize_tuple<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.inner() {
            Value::Map(m) | Value::Object(m) => visitor
                .visit_map(Map {
                    entries: Entries::All(m.iter()),
                    path: self.path,
                    next: None,
                    keys: matches!(self.inner(), Value::Map(_)),
                })
                .map_err(|e: TypedError| e.or_at(self.path)),
            Value::Unknown(_) => Err(self.unknown_error()),
            _ => Err(self.invalid("a map")),
        }
    }

    /// Every field of the struct is offered, a missing attribute as null, so
    /// `Option` and [`Maybe`] fields need no `#[serde(default)]`; attributes
    /// the struct does not name are ignored.
    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        match self.inner() {
            Value::Object(m) | Value::Map(m) => visitor
                .visit_map(Map {
                    entries: Entries::Fields(fields.iter(), m),
                    path: self.path,
                    next: None,
                    keys: matches!(self.inner(), Value::Map(_)),
                })
                .map_err(|e: TypedError| e.or_at(self.path)),
            Value::Unknown(_) => Err(self.unknown_error()),
            _ => Err(self.invalid("an object")),
        }
    }

    /// Unit variants from strings; others from a one-attribute object.
    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        match self.inner() {
            Value::String(s) => visitor
                .visit_enum(de::value::BorrowedStrDeserializer::<TypedError>::new(s))
                .map_err(|e: TypedError| e.or_at(self.path)),
            Value::Object(m) | Value::Map(m) if m.len() == 1 => {
                let Some((variant, value)) = m.iter().next() else {
                    return Err(self.invalid("an enum"));
                };
                visitor
                    .visit_enum(Enum {
                        variant,
                        value,
                        path: self.path,
                    })
                    .map_err(|e: TypedError| e.or_at(self.path))
            }
            Value::Unknown(_) => Err(self.unknown_error()),
            _ => Err(self.invalid("a string naming a variant")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, TypedError> {
        visitor.visit_unit()
    }
}

struct Seq<'a, 'p, I: Iterator<Item = (usize, &'a Value)>> {
    items: I,
    path: &'p AttributePath,
}

impl<'a, I: Iterator<Item = (usize, &'a Value)>> de::SeqAccess<'a> for Seq<'a, '_, I> {
    type Error = TypedError;

    fn next_element_seed<T: de::DeserializeSeed<'a>>(&mut self, seed: T) -> Result<Option<T::Value>, TypedError> {
        let Some((i, v)) = self.items.next() else {
            return Ok(None);
        };
        let path = self.path.clone().index(i as i64);
        seed.deserialize(De { v, path: &path })
            .map(Some)
            .map_err(|e| e.or_at(&path))
    }
}

enum Entries<'a> {
    All(std::collections::btree_map::Iter<'a, String, Value>),
    Fields(std::slice::Iter<'static, &'static str>, &'a BTreeMap<String, Value>),
}

struct Map<'a, 'p> {
    entries: Entries<'a>,
    path: &'p AttributePath,
    next: Option<(&'a str, &'a Value)>,
    /// Map keys (`["k"]`) rather than attributes (`.k`) in paths.
    keys: bool,
}

impl<'a> de::MapAccess<'a> for Map<'a, '_> {
    type Error = TypedError;

    fn next_key_seed<K: de::DeserializeSeed<'a>>(&mut self, seed: K) -> Result<Option<K::Value>, TypedError> {
        static NULL: Value = Value::Null;
        let entry = match &mut self.entries {
            Entries::All(it) => it.next().map(|(k, v)| (k.as_str(), v)),
            Entries::Fields(it, m) => it.next().map(|f| (*f, m.get(*f).unwrap_or(&NULL))),
        };
        let Some((k, v)) = entry else { return Ok(None) };
        self.next = Some((k, v));
        seed.deserialize(de::value::BorrowedStrDeserializer::new(k)).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, TypedError> {
        let Some((k, v)) = self.next.take() else {
            return Err(TypedError::at(self.path, "map value requested before its key"));
        };
        let path = if self.keys {
            self.path.clone().key(k)
        } else {
            self.path.clone().attr(k)
        };
        seed.deserialize(De { v, path: &path }).map_err(|e| e.or_at(&path))
    }
}

struct Enum<'a, 'p> {
    variant: &'a str,
    value: &'a Value,
    path: &'p AttributePath,
}

impl<'a, 'p> de::EnumAccess<'a> for Enum<'a, 'p> {
    type Error = TypedError;
    type Variant = De<'a, 'p>;

    fn variant_seed<V: de::DeserializeSeed<'a>>(self, seed: V) -> Result<(V::Value, De<'a, 'p>), TypedError> {
        let v = seed.deserialize(de::value::BorrowedStrDeserializer::new(self.variant))?;
        Ok((
            v,
            De {
                v: self.value,
                path: self.path,
            },
        ))
    }
}

impl<'a> de::VariantAccess<'a> for De<'a, '_> {
    type Error = TypedError;

    fn unit_variant(self) -> Result<(), TypedError> {
        Ok(())
    }
    fn newtype_variant_seed<T: de::DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, TypedError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_seq(visitor)
    }
    fn struct_variant<V: Visitor<'a>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        self.deserialize_struct("", fields, visitor)
    }
}

// ---------------------------------------------------------------------------
// Serializer: T → Value

struct Ser;

fn float_value(f: f64) -> Result<Value, TypedError> {
    if !f.is_finite() {
        return Err(ser::Error::custom(format!("{f} has no Terraform number form")));
    }
    // The shortest text that reads back as `f`: 0.1 stays 0.1, not its
    // binary expansion.
    number::parse_decimal(&format!("{f}"))
        .map(Value::Number)
        .map_err(ser::Error::custom)
}

impl Serializer for Ser {
    type Ok = Value;
    type Error = TypedError;
    type SerializeSeq = SeqSer;
    type SerializeTuple = SeqSer;
    type SerializeTupleStruct = SeqSer;
    type SerializeTupleVariant = VariantSer<SeqSer>;
    type SerializeMap = MapSer;
    type SerializeStruct = MapSer;
    type SerializeStructVariant = VariantSer<MapSer>;

    fn serialize_bool(self, v: bool) -> Result<Value, TypedError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, TypedError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, TypedError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, TypedError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, TypedError> {
        Ok(Value::from(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, TypedError> {
        Ok(Value::Number(Number(v.into())))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, TypedError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, TypedError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, TypedError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, TypedError> {
        Ok(Value::Number(Number(v.into())))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, TypedError> {
        Ok(Value::Number(Number(v.into())))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, TypedError> {
        if !v.is_finite() {
            return Err(ser::Error::custom(format!("{v} has no Terraform number form")));
        }
        number::parse_decimal(&format!("{v}"))
            .map(Value::Number)
            .map_err(ser::Error::custom)
    }
    fn serialize_f64(self, v: f64) -> Result<Value, TypedError> {
        float_value(v)
    }
    fn serialize_char(self, v: char) -> Result<Value, TypedError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, TypedError> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, TypedError> {
        String::from_utf8(v.to_vec())
            .map(Value::String)
            .map_err(|_| ser::Error::custom("bytes that are not UTF-8 have no Terraform form"))
    }
    fn serialize_none(self) -> Result<Value, TypedError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, TypedError> {
        v.serialize(Ser)
    }
    fn serialize_unit(self) -> Result<Value, TypedError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<Value, TypedError> {
        Ok(if name == UNKNOWN_TOKEN {
            Value::unknown()
        } else {
            Value::Null
        })
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<Value, TypedError> {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<Value, TypedError> {
        v.serialize(Ser)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, TypedError> {
        let inner = v
            .serialize(Ser)
            .map_err(|e| e.under(PathStep::Attribute(variant.to_owned())))?;
        Ok(Value::Object([(variant.to_owned(), inner)].into()))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer, TypedError> {
        Ok(SeqSer {
            items: Vec::with_capacity(len.unwrap_or(0).min(1024)),
            tuple: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer, TypedError> {
        Ok(SeqSer {
            items: Vec::with_capacity(len.min(1024)),
            tuple: true,
        })
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqSer, TypedError> {
        self.serialize_tuple(len)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSer<SeqSer>, TypedError> {
        Ok(VariantSer {
            variant,
            inner: self.serialize_tuple(len)?,
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapSer, TypedError> {
        Ok(MapSer {
            entries: BTreeMap::new(),
            key: None,
            object: false,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<MapSer, TypedError> {
        Ok(MapSer {
            entries: BTreeMap::new(),
            key: None,
            object: true,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<VariantSer<MapSer>, TypedError> {
        Ok(VariantSer {
            variant,
            inner: MapSer {
                entries: BTreeMap::new(),
                key: None,
                object: true,
            },
        })
    }
}

struct SeqSer {
    items: Vec<Value>,
    tuple: bool,
}

impl SeqSer {
    fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        let i = self.items.len() as i64;
        self.items
            .push(v.serialize(Ser).map_err(|e| e.under(PathStep::Index(i)))?);
        Ok(())
    }
    fn finish(self) -> Value {
        if self.tuple {
            Value::Tuple(self.items)
        } else {
            Value::List(self.items)
        }
    }
}

impl ser::SerializeSeq for SeqSer {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.push(v)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SeqSer {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.push(v)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SeqSer {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.push(v)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(self.finish())
    }
}

struct MapSer {
    entries: BTreeMap<String, Value>,
    key: Option<String>,
    object: bool,
}

impl MapSer {
    fn insert<T: Serialize + ?Sized>(&mut self, key: String, v: &T) -> Result<(), TypedError> {
        let step = if self.object {
            PathStep::Attribute(key.clone())
        } else {
            PathStep::Key(key.clone())
        };
        let value = v.serialize(Ser).map_err(|e| e.under(step))?;
        self.entries.insert(key, value);
        Ok(())
    }
    fn finish(self) -> Value {
        if self.object {
            Value::Object(self.entries)
        } else {
            Value::Map(self.entries)
        }
    }
}

impl ser::SerializeMap for MapSer {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), TypedError> {
        match key.serialize(Ser)? {
            Value::String(s) => {
                self.key = Some(s);
                Ok(())
            }
            other => Err(ser::Error::custom(format!(
                "map keys must be strings, found {}",
                other.kind()
            ))),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ser::Error::custom("map value serialized before its key"))?;
        self.insert(key, v)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapSer {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), TypedError> {
        self.insert(key.to_owned(), v)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(self.finish())
    }
}

struct VariantSer<S> {
    variant: &'static str,
    inner: S,
}

impl ser::SerializeTupleVariant for VariantSer<SeqSer> {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.inner
            .push(v)
            .map_err(|e| e.under(PathStep::Attribute(self.variant.to_owned())))
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(Value::Object([(self.variant.to_owned(), self.inner.finish())].into()))
    }
}

impl ser::SerializeStructVariant for VariantSer<MapSer> {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), TypedError> {
        self.inner
            .insert(key.to_owned(), v)
            .map_err(|e| e.under(PathStep::Attribute(self.variant.to_owned())))
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(Value::Object([(self.variant.to_owned(), self.inner.finish())].into()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Fast,
        Safe,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rule {
        port: u16,
        cidrs: Vec<String>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Model {
        id: Maybe<String>,
        name: String,
        replicas: i64,
        ratio: Option<f64>,
        labels: BTreeMap<String, String>,
        tags: BTreeSet<String>,
        rules: Vec<Rule>,
        mode: Mode,
        enabled: Maybe<bool>,
    }

    fn model_type() -> Type {
        let rule = Type::object([
            ("port".to_string(), Type::Number),
            ("cidrs".to_string(), Type::list(Type::String)),
        ]);
        Type::object([
            ("id".to_string(), Type::String),
            ("name".to_string(), Type::String),
            ("replicas".to_string(), Type::Number),
            ("ratio".to_string(), Type::Number),
            ("labels".to_string(), Type::map(Type::String)),
            ("tags".to_string(), Type::set(Type::String)),
            ("rules".to_string(), Type::list(rule)),
            ("mode".to_string(), Type::String),
            ("enabled".to_string(), Type::Bool),
        ])
    }

    fn sample() -> Model {
        Model {
            id: Maybe::Unknown,
            name: "web".into(),
            replicas: 3,
            ratio: Some(0.1),
            labels: [("app".to_string(), "web".to_string())].into(),
            tags: ["b".to_string(), "a".to_string()].into(),
            rules: vec![Rule {
                port: 22,
                cidrs: vec!["10.0.0.0/8".into()],
            }],
            mode: Mode::Safe,
            enabled: Maybe::Null,
        }
    }

    #[test]
    fn model_round_trips_through_value_and_msgpack() {
        let m = sample();
        let v = to_value_as(&m, &model_type()).unwrap();
        assert!(v.attr("id").is_unknown());
        assert_eq!(v.attr("ratio"), &Value::Number(number::parse_decimal("0.1").unwrap()));
        assert!(matches!(v.attr("tags"), Value::Set(_)));
        assert_eq!(v.attr("mode"), &Value::from("safe"));
        assert_eq!(v.attr("enabled"), &Value::Null);
        let bytes = crate::framework::codec::msgpack::encode(&v, &model_type()).unwrap();
        let back = crate::framework::codec::msgpack::decode(&bytes, &model_type()).unwrap();
        assert_eq!(from_value::<Model>(&back).unwrap(), m);
    }

    #[test]
    fn unknown_in_a_plain_field_names_the_path() {
        let mut v = to_value(&sample()).unwrap();
        let Value::Object(m) = &mut v else { panic!() };
        let Some(Value::List(rules)) = m.get_mut("rules") else {
            panic!()
        };
        let Some(Value::Object(rule)) = rules.get_mut(0) else {
            panic!()
        };
        rule.insert("port".into(), Value::unknown());
        let err = from_value::<Model>(&v).unwrap_err();
        assert_eq!(err.path, AttributePath::root("rules").index(0).attr("port"));
        assert!(err.message.contains("not yet known"), "{err}");
        assert!(err.to_string().starts_with("rules[0].port: "), "{err}");
    }

    #[test]
    fn type_mismatches_name_the_path() {
        let mut v = to_value(&sample()).unwrap();
        if let Value::Object(m) = &mut v {
            m.insert("labels".into(), Value::Map([("x".to_string(), Value::from(1))].into()));
        }
        let err = from_value::<Model>(&v).unwrap_err();
        assert_eq!(err.path, AttributePath::root("labels").key("x"));
        assert_eq!(err.message, "expected a string, found a number");

        let mut v = to_value(&sample()).unwrap();
        if let Value::Object(m) = &mut v {
            m.insert("replicas".into(), Value::Number(number::parse_decimal("1.5").unwrap()));
        }
        let err = from_value::<Model>(&v).unwrap_err();
        assert_eq!(err.path, AttributePath::root("replicas"));
        assert!(err.message.contains("whole number"), "{err}");

        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Small {
            port: u8,
        }
        let err = from_value::<Small>(&Value::Object([("port".to_string(), Value::from(300))].into())).unwrap_err();
        assert_eq!(err.path, AttributePath::root("port"));

        let mut v = to_value(&sample()).unwrap();
        if let Value::Object(m) = &mut v {
            m.insert("mode".into(), Value::from("slow"));
        }
        let err = from_value::<Model>(&v).unwrap_err();
        assert_eq!(err.path, AttributePath::root("mode"));
    }

    #[test]
    fn missing_attributes_are_null_and_extra_ignored() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Partial {
            name: String,
            note: Option<String>,
            id: Maybe<String>,
        }
        let v = Value::Object(
            [
                ("name".to_string(), Value::from("n")),
                ("other".to_string(), Value::from(1)),
            ]
            .into(),
        );
        assert_eq!(
            from_value::<Partial>(&v).unwrap(),
            Partial {
                name: "n".into(),
                note: None,
                id: Maybe::Null
            }
        );
        let err = from_value::<Partial>(&Value::Object(BTreeMap::new())).unwrap_err();
        assert_eq!(err.path, AttributePath::root("name"));
    }

    #[test]
    fn numbers_exact_and_large() {
        assert_eq!(
            from_value::<u64>(&Value::Number(Number(u64::MAX.into()))).unwrap(),
            u64::MAX
        );
        assert_eq!(
            from_value::<i128>(&Value::Number(Number(i128::MIN.into()))).unwrap(),
            i128::MIN
        );
        assert_eq!(from_value::<f64>(&Value::from(2)).unwrap(), 2.0);
        assert!(from_value::<i64>(&Value::Number(Number(u64::MAX.into()))).is_err());
        assert!(to_value(&f64::NAN).is_err());
        assert_eq!(
            to_value(&1.5f32).unwrap(),
            Value::Number(number::parse_decimal("1.5").unwrap())
        );
    }

    #[test]
    fn maybe_with_other_formats() {
        let m: Maybe<u8> = serde_json::from_str("5").unwrap();
        assert_eq!(m, Maybe::Known(5));
        let m: Maybe<u8> = serde_json::from_str("null").unwrap();
        assert_eq!(m, Maybe::Null);
        assert_eq!(serde_json::to_string(&Maybe::<u8>::Unknown).unwrap(), "null");
        assert_eq!(to_value(&Maybe::<u8>::Unknown).unwrap(), Value::unknown());
        assert_eq!(from_value::<Maybe<u8>>(&Value::unknown()).unwrap(), Maybe::Unknown);
        assert_eq!(from_value::<Maybe<Option<u8>>>(&Value::Null).unwrap(), Maybe::Null);
    }

    #[test]
    fn conform_retags_and_checks() {
        let ty = Type::object([
            ("s".to_string(), Type::set(Type::Number)),
            ("t".to_string(), Type::Tuple(vec![Type::String])),
        ]);
        let v = to_value(&HashMap::from([("s", vec![1, 2]), ("t", vec![3])])).unwrap();
        let err = conform(v, &ty).unwrap_err();
        assert_eq!(err.path, AttributePath::root("t").index(0));
        let v = to_value(&HashMap::from([("s", vec![1, 2])])).unwrap();
        let c = conform(v, &ty).unwrap();
        assert_eq!(c.attr("s"), &Value::Set(vec![1.into(), 2.into()]));
        assert_eq!(c.attr("t"), &Value::Null);
        let err = conform(to_value(&HashMap::from([("x", 1)])).unwrap(), &ty).unwrap_err();
        assert_eq!(err.path, AttributePath::root("x"));
    }

    #[test]
    fn enums_with_data() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        enum E {
            Unit,
            New(u8),
            Tup(u8, String),
            Rec { a: bool },
        }
        for e in [E::Unit, E::New(1), E::Tup(2, "x".into()), E::Rec { a: true }] {
            let v = to_value(&e).unwrap();
            assert_eq!(from_value::<E>(&v).unwrap(), e);
        }
    }
}
