//! Attribute validators: each sees a known, non-null value and adds
//! diagnostics with the attribute's path. All validators run; their
//! diagnostics add up.

use super::diagnostics::Diagnostics;
use super::path::AttributePath;
use super::value::Value;

/// Checks one attribute value at validate time.
pub trait Validator: Send + Sync {
    /// A sentence for the docs, e.g. "must be between 16 and 512".
    fn description(&self) -> String;
    /// Add diagnostics for a known, non-null `value` found at `path`.
    fn validate(&self, path: &AttributePath, value: &Value, diags: &mut Diagnostics);
}

/// An integer within `[min, max]`.
pub struct IntBetween {
    pub min: i64,
    pub max: i64,
}

impl Validator for IntBetween {
    fn description(&self) -> String {
        format!("must be a whole number between {} and {}", self.min, self.max)
    }
    fn validate(&self, path: &AttributePath, value: &Value, diags: &mut Diagnostics) {
        let shown = match value {
            Value::Number(n) => n.to_string(),
            other => format!("{other:?}"),
        };
        match value.as_i64() {
            Some(v) if (self.min..=self.max).contains(&v) => {}
            _ => diags.attribute_error(
                path.clone(),
                "Value out of range",
                format!("{path} {}; got {shown}.", self.description()),
            ),
        }
    }
}

/// A string from a fixed set.
pub struct OneOf(pub &'static [&'static str]);

impl Validator for OneOf {
    fn description(&self) -> String {
        format!("must be one of {}", quoted_list(self.0))
    }
    fn validate(&self, path: &AttributePath, value: &Value, diags: &mut Diagnostics) {
        match value.as_str() {
            Some(s) if self.0.contains(&s) => {}
            Some(s) => diags.attribute_error(
                path.clone(),
                "Unsupported value",
                format!("{path} {}; got {s:?}.", self.description()),
            ),
            None => diags.attribute_error(path.clone(), "Unsupported value", format!("{path} must be a string.")),
        }
    }
}

/// A Go-style duration such as `30s`, `5m` or `1h30m` (what `timeouts {}` takes).
pub struct IsDuration;

impl Validator for IsDuration {
    fn description(&self) -> String {
        "must be a duration such as \"30s\", \"10m\" or \"1h30m\"".to_owned()
    }
    fn validate(&self, path: &AttributePath, value: &Value, diags: &mut Diagnostics) {
        if let Some(s) = value.as_str()
            && let Err(e) = parse_duration(s)
        {
            diags.attribute_error(
                path.clone(),
                "Invalid duration",
                format!("{path} {}: {e}.", self.description()),
            );
        }
    }
}

/// Parse a duration of number+unit pairs (`h`, `m`, `s`, `ms`), e.g. `1h30m`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let mut total = std::time::Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("it is empty".to_owned());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number at {rest:?}"));
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{:?} is not a number", &rest[..digits]))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "" => return Err(format!("{number} has no unit (h, m, s or ms)")),
            other => return Err(format!("unknown unit {other:?} (use h, m, s or ms)")),
        };
        rest = &rest[unit_len..];
        total += std::time::Duration::try_from_secs_f64(number * seconds).map_err(|e| e.to_string())?;
    }
    Ok(total)
}

fn quoted_list(items: &[&str]) -> String {
    items.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: &dyn Validator, value: Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        v.validate(&AttributePath::root("x"), &value, &mut d);
        d
    }

    #[test]
    fn int_between_names_attribute_and_range() {
        let d = run(&IntBetween { min: 16, max: 512 }, Value::from(8));
        assert!(d.has_error());
        assert_eq!(d.0[0].attribute, Some(AttributePath::root("x")));
        assert!(d.0[0].detail.contains("between 16 and 512; got 8"), "{}", d.0[0].detail);
        assert!(!run(&IntBetween { min: 16, max: 512 }, Value::from(16)).has_error());
        assert!(!run(&IntBetween { min: 16, max: 512 }, Value::from(512)).has_error());
        assert!(run(&IntBetween { min: 16, max: 512 }, Value::from(513)).has_error());
    }

    #[test]
    fn int_between_rejects_fractions() {
        let n = crate::framework::Number("16.5".parse().unwrap());
        assert!(run(&IntBetween { min: 16, max: 512 }, Value::Number(n)).has_error());
    }

    #[test]
    fn one_of_lists_choices() {
        let d = run(&OneOf(&["a", "b"]), Value::from("c"));
        assert!(d.0[0].detail.contains("\"a\", \"b\""));
        assert!(!run(&OneOf(&["a", "b"]), Value::from("b")).has_error());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("45s").unwrap().as_secs(), 45);
        assert_eq!(parse_duration("1.5m").unwrap().as_secs(), 90);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10d").is_err());
        assert!(parse_duration("").is_err());
        assert!(run(&IsDuration, Value::from("5x")).has_error());
    }
}
