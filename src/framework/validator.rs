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
    /// The smallest value allowed.
    pub min: i64,
    /// The largest value allowed.
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

/// Which strings of a value a [`Check`] looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckTarget {
    /// A string, or each string element of a list or set, or each value of a map.
    Values,
    /// Each key of a map.
    Keys,
}

/// A domain check on strings, e.g. "a CIDR" or "a POSIX user name": applied
/// to a string attribute, to each element of a list or set of strings, or to
/// each value (or key) of a map. The error names the element.
pub struct Check {
    /// What the value must be, for the docs: "must be a CIDR such as \"10.0.0.0/8\"".
    pub description: &'static str,
    /// The diagnostic summary, e.g. "Invalid CIDR".
    pub summary: &'static str,
    /// Whether the values or the keys of a map are checked.
    pub target: CheckTarget,
    /// Ok, or a precise message about this one string.
    pub check: fn(&str) -> Result<(), String>,
}

impl Check {
    /// A check on values (strings, list/set elements, map values).
    pub const fn values(
        summary: &'static str,
        description: &'static str,
        check: fn(&str) -> Result<(), String>,
    ) -> Self {
        Check {
            description,
            summary,
            target: CheckTarget::Values,
            check,
        }
    }

    /// A check on the keys of a map.
    pub const fn keys(summary: &'static str, description: &'static str, check: fn(&str) -> Result<(), String>) -> Self {
        Check {
            description,
            summary,
            target: CheckTarget::Keys,
            check,
        }
    }

    fn one(&self, path: &AttributePath, s: &str, diags: &mut Diagnostics) {
        if let Err(e) = (self.check)(s) {
            diags.attribute_error(path.clone(), self.summary, format!("{path}: {e}."));
        }
    }
}

impl Validator for Check {
    fn description(&self) -> String {
        match self.target {
            CheckTarget::Values => self.description.to_owned(),
            CheckTarget::Keys => format!("keys {}", self.description),
        }
    }
    fn validate(&self, path: &AttributePath, value: &Value, diags: &mut Diagnostics) {
        match (self.target, value) {
            (CheckTarget::Values, Value::String(s)) => self.one(path, s, diags),
            (CheckTarget::Values, Value::List(items) | Value::Tuple(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(s) = item.as_str() {
                        self.one(&path.clone().index(i as i64), s, diags);
                    }
                }
            }
            // Set elements have no path of their own: name the attribute and quote the element.
            (CheckTarget::Values, Value::Set(items)) => {
                for s in items.iter().filter_map(Value::as_str) {
                    if let Err(e) = (self.check)(s) {
                        diags.attribute_error(path.clone(), self.summary, format!("{path}: {e}."));
                    }
                }
            }
            (CheckTarget::Values, Value::Map(m)) => {
                for (k, v) in m {
                    if let Some(s) = v.as_str() {
                        self.one(&path.clone().key(k), s, diags);
                    }
                }
            }
            (CheckTarget::Keys, Value::Map(m)) => {
                for k in m.keys() {
                    self.one(&path.clone().key(k), k, diags);
                }
            }
            _ => {}
        }
    }
}

/// The longest duration accepted: Go's, whose durations are int64
/// nanoseconds (about 292 years), so a value Terraform's own tooling reads
/// is read the same here. Below it a whole number of seconds is exact in
/// the f64 arithmetic used (fuzz/duration found "22022222222222202.10m.5m",
/// ≈ 4·10¹⁰ years, whose seconds no longer re-parsed to themselves).
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_nanos(i64::MAX as u64);

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
        // A unit ends where the next number starts, with a digit or a dot:
        // ".5m.5m" is Go's 1m (found by fuzz/duration: "m." was read as a unit).
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "" => return Err(format!("{number} has no unit (h, m, s or ms)")),
            other => return Err(format!("unknown unit {other:?} (use h, m, s or ms)")),
        };
        rest = &rest[unit_len..];
        // Checked: "10000000000000000000s10000000000000000000s" overflowed
        // `+=` and panicked in the validator (seen writing fuzz/duration).
        total = std::time::Duration::try_from_secs_f64(number * seconds)
            .ok()
            .and_then(|d| total.checked_add(d))
            .filter(|t| *t <= MAX_DURATION)
            .ok_or_else(|| format!("{s:?} is too long (at most about 292 years, as in Go)"))?;
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

    fn no_x(s: &str) -> Result<(), String> {
        if s.contains('x') {
            Err(format!("{s:?} contains an x"))
        } else {
            Ok(())
        }
    }

    #[test]
    fn check_names_the_element() {
        let c = Check::values("Bad", "must not contain x", no_x);
        let d = run(&c, Value::List(vec![Value::from("a"), Value::from("ax")]));
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].attribute, Some(AttributePath::root("x").index(1)));
        assert!(d.0[0].detail.contains("\"ax\" contains an x"), "{}", d.0[0].detail);
        let m = Value::Map([("kx".to_owned(), Value::from("vx"))].into_iter().collect());
        let d = run(&c, m.clone());
        assert_eq!(d.0[0].attribute, Some(AttributePath::root("x").key("kx")));
        assert!(d.0[0].detail.contains("\"vx\""));
        let d = run(&Check::keys("Bad", "must not contain x", no_x), m);
        assert!(d.0[0].detail.contains("\"kx\""));
        assert!(!run(&c, Value::from("fine")).has_error());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("45s").unwrap().as_secs(), 45);
        assert_eq!(parse_duration("1.5m").unwrap().as_secs(), 90);
        // fuzz/duration's find: a number may start with its dot after a unit
        assert_eq!(parse_duration(".51m.51m").unwrap().as_millis(), 61_200);
        assert_eq!(parse_duration("1m.5s").unwrap().as_millis(), 60_500);
        assert!(parse_duration("1m.").is_err());
        // fuzz/duration's second find: beyond Go's ≈ 292 years is refused
        assert!(
            parse_duration("22022222222222202.10m.5m")
                .unwrap_err()
                .contains("too long")
        );
        assert_eq!(parse_duration("2562047h").unwrap().as_secs(), 2_562_047 * 3600);
        assert!(parse_duration("2562048h").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10d").is_err());
        assert!(parse_duration("").is_err());
        assert!(run(&IsDuration, Value::from("5x")).has_error());
    }

    #[test]
    fn a_too_long_duration_is_an_error_not_a_panic() {
        let e = parse_duration("10000000000000000000s10000000000000000000s").unwrap_err();
        assert!(e.contains("is too long"), "{e}");
        assert!(parse_duration("1e400s").is_err());
        assert!(
            parse_duration("99999999999999999999999h")
                .unwrap_err()
                .contains("is too long")
        );
        assert!(run(&IsDuration, Value::from("10000000000000000000s10000000000000000000s")).has_error());
    }
}
