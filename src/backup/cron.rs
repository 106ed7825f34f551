//! Cron expressions as a Kubernetes CronJob accepts them (the standard
//! 5-field syntax of robfig/cron that the controller uses), checked at plan
//! time so a typo points at the HCL line instead of a 422 at apply. Pure.

use std::fmt;

/// The macros the CronJob controller understands, and what they mean.
const MACROS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One of the five fields, with its bounds and names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The first field: minute of the hour, 0-59.
    Minute,
    /// The second field: hour of the day, 0-23.
    Hour,
    /// The third field: day of the month, 1-31.
    DayOfMonth,
    /// The fourth field: month, 1-12 or `jan`-`dec`.
    Month,
    /// The fifth field: day of the week, 0-6 (Sunday = 0) or `sun`-`sat`.
    DayOfWeek,
}

impl Field {
    const ALL: [Field; 5] = [
        Field::Minute,
        Field::Hour,
        Field::DayOfMonth,
        Field::Month,
        Field::DayOfWeek,
    ];

    fn bounds(self) -> (u32, u32) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            // robfig/cron (and so Kubernetes) takes 0-6 only: 7 is refused.
            Field::DayOfWeek => (0, 6),
        }
    }

    /// Names allowed for values, and the number of the first name.
    fn names(self) -> Option<(&'static [&'static str], u32)> {
        match self {
            Field::Month => Some((MONTHS, 1)),
            Field::DayOfWeek => Some((DAYS, 0)),
            _ => None,
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        })
    }
}

/// Why an expression is not a valid schedule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Nothing but whitespace.
    #[error("is empty; write five fields such as \"0 3 * * *\" or a macro such as \"@daily\"")]
    Empty,
    #[error(
        "has {0} field(s); a schedule has exactly five (minute hour day-of-month month day-of-week), e.g. \"0 3 * * *\""
    )]
    /// Not five fields; holds how many there were.
    FieldCount(usize),
    /// An `@` macro other than the ones Kubernetes knows; holds the macro.
    #[error("{0:?} is not a known macro; use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly")]
    UnknownMacro(String),
    /// A `TZ=` or `CRON_TZ=` prefix, which belongs in `time_zone`; holds the prefix.
    #[error("sets a time zone inside the schedule ({0:?}); use the `time_zone` attribute instead")]
    TimeZonePrefix(String),
    /// One field is malformed or out of range.
    #[error("the {field} field {text:?}: {problem}")]
    BadField {
        /// The field at fault.
        field: Field,
        /// The field's text as written.
        text: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Check `expr` as a CronJob schedule.
///
/// # Errors
/// What is wrong, naming the field and its text.
pub fn check(expr: &str) -> Result<(), CronError> {
    if expr.trim().is_empty() {
        return Err(CronError::Empty);
    }
    if expr.starts_with("TZ=") || expr.starts_with("CRON_TZ=") {
        // The API server refuses these when `timeZone` exists.
        let prefix = expr.split_whitespace().next().unwrap_or(expr);
        return Err(CronError::TimeZonePrefix(prefix.to_owned()));
    }
    // The controller's parser matches a macro exactly: lower case, nothing
    // around it (" @daily" and "@Daily" are refused by the API server).
    if expr.trim_start().starts_with('@') {
        return match MACROS.iter().find(|(m, _)| *m == expr) {
            Some(_) => Ok(()),
            None => Err(CronError::UnknownMacro(expr.to_owned())),
        };
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(CronError::FieldCount(fields.len()));
    }
    for (field, text) in Field::ALL.into_iter().zip(fields) {
        check_field(field, text).map_err(|problem| CronError::BadField {
            field,
            text: text.to_owned(),
            problem,
        })?;
    }
    Ok(())
}

/// One field: a comma-separated list of `*`, `?` (day fields), `N`,
/// `N-M`, each optionally followed by `/STEP`.
fn check_field(field: Field, text: &str) -> Result<(), String> {
    for item in text.split(',') {
        if item.is_empty() {
            return Err("has an empty list item (two commas, or a comma at an end)".to_owned());
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let (lo, hi) = field.bounds();
        let (start, end) = match range {
            "*" => (lo, hi),
            "?" if matches!(field, Field::DayOfMonth | Field::DayOfWeek) => (lo, hi),
            "?" => return Err("'?' is allowed only in the day-of-month and day-of-week fields".to_owned()),
            _ => match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (value(field, a)?, value(field, b)?);
                    if a > b {
                        return Err(format!("the range {range:?} starts after it ends"));
                    }
                    (a, b)
                }
                // "N/STEP" means from N to the end of the range.
                None => {
                    let v = value(field, range)?;
                    (v, if step.is_some() { hi } else { v })
                }
            },
        };
        debug_assert!(start <= end);
        if let Some(step) = step {
            let n: u32 = step
                .parse()
                .map_err(|_| format!("the step {step:?} is not a whole number"))?;
            if n == 0 {
                return Err("a step of 0 is not allowed".to_owned());
            }
            if n > hi - lo + 1 {
                return Err(format!("the step {n} is larger than the field's range {lo}-{hi}"));
            }
        }
    }
    Ok(())
}

/// A number or (for months and days) a three-letter name, in bounds.
fn value(field: Field, text: &str) -> Result<u32, String> {
    let (lo, hi) = field.bounds();
    if text.is_empty() {
        return Err("has an empty value in a range".to_owned());
    }
    if let Some((names, first)) = field.names() {
        let lower = text.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(first + i as u32);
        }
    }
    let n: u32 = text.parse().map_err(|_| match field.names() {
        Some((names, _)) => format!(
            "{text:?} is neither a number nor one of {}",
            names
                .iter()
                .map(|n| n.to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!("{text:?} is not a number"),
    })?;
    if n < lo || n > hi {
        return Err(format!("{n} is out of range {lo}-{hi}"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_schedules() {
        for ok in [
            "0 3 * * *",
            "*/5 * * * *",
            "0 0-23/2 * * *",
            "15,45 8-18 * * MON-FRI",
            "0 3 1 jan,jul *",
            "0 3 ? * sun",
            "5/10 * * * *",
            "0 0 31 12 6",
            "@daily",
            "@hourly",
            "@yearly",
            "  0   3 * * *  ",
            "0 3 * Jan-Dec/3 *",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn errors_name_the_field_and_its_text() {
        let cases: &[(&str, &str)] = &[
            ("", "is empty"),
            ("0 3 * *", "has 4 field(s)"),
            ("0 3 * * * *", "has 6 field(s)"),
            ("60 * * * *", "the minute field \"60\": 60 is out of range 0-59"),
            ("0 24 * * *", "the hour field \"24\": 24 is out of range 0-23"),
            ("0 0 0 * *", "the day-of-month field \"0\": 0 is out of range 1-31"),
            ("0 0 32 * *", "the day-of-month field \"32\""),
            ("0 0 * 13 *", "the month field \"13\""),
            ("0 0 * * 7", "the day-of-week field \"7\": 7 is out of range 0-6"),
            ("0 0 * FOO *", "\"FOO\" is neither a number nor one of JAN"),
            ("0 0 * * MON-FOO", "\"FOO\" is neither a number nor one of SUN"),
            ("*/0 * * * *", "a step of 0"),
            ("*/x * * * *", "the step \"x\" is not a whole number"),
            ("*/61 * * * *", "larger than the field's range"),
            ("0 10-2 * * *", "the range \"10-2\" starts after it ends"),
            ("0 1,,2 * * *", "empty list item"),
            ("? * * * *", "'?' is allowed only"),
            ("0 - * * *", "empty value"),
            ("@every 1h", "is not a known macro"),
            ("@reboot", "is not a known macro"),
            ("@Daily", "\"@Daily\" is not a known macro"),
            (" @daily", "is not a known macro"),
            ("@daily ", "is not a known macro"),
            ("CRON_TZ=UTC 0 3 * * *", "use the `time_zone` attribute"),
            ("TZ=Europe/Paris 0 3 * * *", "\"TZ=Europe/Paris\""),
            ("0 3 * * * extra", "has 6 field(s)"),
            ("a b c d e", "the minute field \"a\""),
        ];
        for (expr, want) in cases {
            let e = check(expr).expect_err(expr).to_string();
            assert!(e.contains(want), "{expr:?}: {e:?} lacks {want:?}");
        }
    }
}
