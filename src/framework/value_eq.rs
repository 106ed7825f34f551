//! Equality as Terraform means it, for planning: sets are unordered, numbers
//! compare by value, and an absent object attribute is a null one.

use super::value::Value;

impl Value {
    /// True when both values mean the same to Terraform.
    ///
    /// Unlike `==` (derived, structural): set elements are compared as sets
    /// (order and repeats do not matter), an object attribute missing on one
    /// side equals a null on the other, and numbers compare by value (`1.0`
    /// equals `1`, which `==` on [`crate::framework::Number`] also does). Two
    /// unknowns are equal only when their refinements are: nothing says they
    /// will turn out to be the same value, so callers comparing for "no
    /// change" should treat unknowns separately.
    pub fn semantically_equal(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Unknown(a), Value::Unknown(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a.0 == b.0,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.semantically_equal(y))
            }
            (Value::Set(a), Value::Set(b)) => {
                a.iter().all(|x| b.iter().any(|y| x.semantically_equal(y)))
                    && b.iter().all(|y| a.iter().any(|x| x.semantically_equal(y)))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| x.semantically_equal(y)))
            }
            (Value::Object(a), Value::Object(b)) => {
                a.iter().all(|(k, x)| x.semantically_equal(other.attr(k)))
                    && b.iter().all(|(k, y)| a.contains_key(k) || y.is_null())
            }
            (Value::Dynamic(ta, a), Value::Dynamic(tb, b)) => ta == tb && a.semantically_equal(b),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use bigdecimal::BigDecimal;

    use crate::framework::{Number, Refinements, Type, Value};

    fn num(s: &str) -> Value {
        Value::Number(Number(BigDecimal::from_str(s).unwrap()))
    }

    #[test]
    fn numbers_by_value() {
        assert!(num("1.0").semantically_equal(&num("1")));
        assert!(num("1e2").semantically_equal(&num("100.000")));
        assert!(!num("1.01").semantically_equal(&num("1")));
    }

    #[test]
    fn sets_unordered_lists_ordered() {
        let a = vec![Value::from("x"), Value::from("y")];
        let b = vec![Value::from("y"), Value::from("x")];
        assert!(Value::Set(a.clone()).semantically_equal(&Value::Set(b.clone())));
        assert!(!Value::List(a.clone()).semantically_equal(&Value::List(b)));
        assert!(!Value::Set(a.clone()).semantically_equal(&Value::Set(vec![Value::from("x")])));
        assert!(!Value::Set(a.clone()).semantically_equal(&Value::List(a)));
        // Sets of sets.
        let inner1 = Value::Set(vec![num("1"), num("2")]);
        let inner2 = Value::Set(vec![num("2.0"), num("1")]);
        assert!(Value::Set(vec![inner1]).semantically_equal(&Value::Set(vec![inner2])));
    }

    #[test]
    fn missing_attribute_is_null() {
        let a = Value::Object([("x".to_string(), Value::Null), ("y".to_string(), num("1"))].into());
        let b = Value::Object([("y".to_string(), num("1.0"))].into());
        assert!(a.semantically_equal(&b) && b.semantically_equal(&a));
        let c = Value::Object([("y".to_string(), num("2"))].into());
        assert!(!a.semantically_equal(&c));
        let d = Value::Object([("y".to_string(), num("1")), ("z".to_string(), Value::from("s"))].into());
        assert!(!b.semantically_equal(&d) && !d.semantically_equal(&b));
    }

    #[test]
    fn null_empty_unknown_and_dynamic_differ() {
        assert!(!Value::Null.semantically_equal(&Value::List(vec![])));
        assert!(Value::unknown().semantically_equal(&Value::unknown()));
        let refined = Value::Unknown(Box::new(Refinements {
            nullable: Some(false),
            ..Default::default()
        }));
        assert!(!Value::unknown().semantically_equal(&refined));
        let d1 = Value::Dynamic(Type::Number, Box::new(num("1")));
        let d2 = Value::Dynamic(Type::Number, Box::new(num("1.0")));
        let d3 = Value::Dynamic(Type::String, Box::new(Value::from("1")));
        assert!(d1.semantically_equal(&d2) && !d1.semantically_equal(&d3));
    }
}
