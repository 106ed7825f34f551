//! Terraform values as the framework sees them: cty values with null,
//! unknown (optionally refined) and arbitrary-precision numbers.

use std::collections::BTreeMap;
use std::fmt;

use bigdecimal::BigDecimal;

use super::types::Type;

/// An arbitrary-precision decimal number, as cty numbers are.
///
/// Terraform sends numbers as msgpack ints, floats or decimal strings; we keep
/// all of them exactly instead of squeezing them into `i64`/`f64`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Number(pub BigDecimal);

impl Number {
    /// The number as an `i64` when it is integral and fits.
    pub fn to_i64(&self) -> Option<i64> {
        use bigdecimal::ToPrimitive;
        if self.0.is_integer() { self.0.to_i64() } else { None }
    }

    /// The number as an `f64`, possibly losing precision.
    pub fn to_f64(&self) -> Option<f64> {
        use bigdecimal::ToPrimitive;
        self.0.to_f64()
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Self {
        Number(BigDecimal::from(v))
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.normalized())
    }
}

/// What is known about a value that is not yet known (cty refinements,
/// msgpack extension type 12).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refinements {
    /// `Some(false)`: the final value is definitely not null.
    pub nullable: Option<bool>,
    /// The final string starts with this prefix.
    pub string_prefix: Option<String>,
    /// Lower bound of a number: (bound, inclusive).
    pub number_lower: Option<(Number, bool)>,
    /// Upper bound of a number: (bound, inclusive).
    pub number_upper: Option<(Number, bool)>,
    /// Lower bound of a collection's length.
    pub length_lower: Option<u64>,
    /// Upper bound of a collection's length.
    pub length_upper: Option<u64>,
}

impl Refinements {
    /// True when nothing at all is known (a plain unknown).
    pub fn is_empty(&self) -> bool {
        *self == Refinements::default()
    }
}

/// A cty value. Values are untyped; the codecs take the schema [`Type`].
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// A null of whatever type the schema says.
    #[default]
    Null,
    /// Not known until apply; may carry refinements.
    Unknown(Box<Refinements>),
    /// A known boolean.
    Bool(bool),
    /// A known number (arbitrary precision, as cty numbers are).
    Number(Number),
    /// A known string.
    String(String),
    /// Elements of a list, in order.
    List(Vec<Value>),
    /// Elements of a set; kept in the order received, compared as a set.
    Set(Vec<Value>),
    /// Elements of a tuple, each of its own type.
    Tuple(Vec<Value>),
    /// A map's elements by key, all of the map's element type.
    Map(BTreeMap<String, Value>),
    /// An object's attributes by name.
    Object(BTreeMap<String, Value>),
    /// A value of a `dynamic` attribute, with the concrete type it travels with.
    Dynamic(Type, Box<Value>),
}

impl Value {
    /// A plain unknown with no refinements.
    pub fn unknown() -> Value {
        Value::Unknown(Box::default())
    }

    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// True for [`Value::Unknown`] at the top level only.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown(_))
    }

    /// True when no unknown appears anywhere inside the value.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown(_) => false,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => v.iter().all(Value::is_wholly_known),
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            Value::Dynamic(_, v) => v.is_wholly_known(),
            _ => true,
        }
    }

    /// The attribute `name` of an object value; `Null` for anything else.
    pub fn attr(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Value::Object(m) => m.get(name).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// Mutable attribute of an object value, if this is an object.
    pub fn attr_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Value::Object(m) => m.get_mut(name),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages ("a list", "null").
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown(_) => "an unknown value",
            Value::Bool(_) => "a bool",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::List(_) => "a list",
            Value::Set(_) => "a set",
            Value::Tuple(_) => "a tuple",
            Value::Map(_) => "a map",
            Value::Object(_) => "an object",
            Value::Dynamic(..) => "a dynamic value",
        }
    }

    /// The string, when this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as `i64`, when this is a known integral number that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.to_i64(),
            _ => None,
        }
    }

    /// The bool, when this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Number(Number::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// Equality as Terraform means it: sets compare without order, numbers by
/// value (`1` equals `1.0`). Same as [`Value::semantically_equal`].
pub fn semantically_equal(a: &Value, b: &Value) -> bool {
    a.semantically_equal(b)
}
