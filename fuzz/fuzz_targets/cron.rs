//! The backup schedule check (`backup::cron::check`) never panics, and its
//! verdict depends only on what the CronJob controller looks at: ASCII case
//! of month/day names and the amount of whitespace between fields do not
//! matter; an error names a field text that is really in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_selfhost::backup::cron::{CronError, check};

fuzz_target!(|data: &[u8]| {
    let Ok(expr) = std::str::from_utf8(data) else { return };
    let verdict = check(expr);
    assert_eq!(check(expr), verdict, "deterministic");
    let is_macro = expr.trim_start().starts_with('@');
    let has_tz = expr.starts_with("TZ=") || expr.starts_with("CRON_TZ=");
    let fields: Vec<&str> = expr.split_whitespace().collect();
    match &verdict {
        Ok(()) if !is_macro => {
            assert_eq!(fields.len(), 5, "{expr:?} accepted with {} fields", fields.len());
            // One space between fields, upper or lower case names: same schedule.
            let joined = fields.join(" ");
            assert_eq!(check(&joined), Ok(()), "{expr:?} accepted but {joined:?} not");
            assert_eq!(check(&joined.to_ascii_uppercase()), Ok(()), "{expr:?} upper");
            assert_eq!(check(&joined.to_ascii_lowercase()), Ok(()), "{expr:?} lower");
        }
        Ok(()) => assert!(expr.starts_with('@') && !expr.contains(char::is_whitespace)),
        Err(CronError::FieldCount(n)) => assert_eq!(*n, fields.len()),
        Err(CronError::BadField { text, .. }) => {
            assert!(!has_tz && !is_macro);
            assert!(fields.contains(&text.as_str()), "{expr:?}: {text:?} is not a field");
        }
        Err(CronError::Empty) => assert!(expr.trim().is_empty()),
        Err(CronError::TimeZonePrefix(_) | CronError::UnknownMacro(_)) => {}
    }
    if !is_macro && !has_tz && fields.len() == 5 {
        let joined = fields.join(" ");
        assert_eq!(check(&joined).is_ok(), verdict.is_ok(), "{expr:?} vs {joined:?}");
    }
});
