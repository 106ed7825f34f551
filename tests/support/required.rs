//! The one rule for a part a test needs from the environment (the bed's
//! variables, the bundle): without it a loud SKIP, except under CI, where
//! `scripts/test` brings every part up, so a missing one fails the test.

#![allow(dead_code)] // each test binary uses a different part

/// The hint printed with a SKIP when a bed variable is missing.
pub const BED_HINT: &str = "Run `testbed/testbed up` and `eval \"$(testbed/testbed env)\"`";

/// The variable's value, or `None` after a loud SKIP (a panic under CI).
pub fn required_var(test: &str, name: &str, hint: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{test}: {name} is not set; CI must run with the test bed up (scripts/test does)")
        }
        _ => {
            eprintln!("\n*** SKIP {test}: {name} is not set. {hint} ***\n");
            None
        }
    }
}
