//! IANA time zone names, checked against the zone list compiled into the
//! provider (chrono-tz, from the IANA tz database) rather than the user's
//! `/usr/share/zoneinfo`, so a plan judges a name the same on every machine.
//! Pure.

use std::str::FromStr;

/// Check `name` as an IANA time zone name ("Europe/Paris", "UTC"), as the
/// CronJob's `timeZone` takes it (case matters, as for the controller).
///
/// # Errors
/// What is wrong, with the correctly spelled name when only the case differs.
pub fn check(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty; use an IANA name such as \"Europe/Paris\" or \"UTC\"".to_owned());
    }
    if chrono_tz::Tz::from_str(name).is_ok() {
        return Ok(());
    }
    let lower = name.to_ascii_lowercase();
    if let Some(tz) = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().to_ascii_lowercase() == lower)
    {
        return Err(format!(
            "{name:?} is not an IANA time zone name; did you mean {:?}?",
            tz.name()
        ));
    }
    Err(format!(
        "{name:?} is not an IANA time zone name (such as \"Europe/Paris\", \"America/New_York\" or \"UTC\")"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names() {
        for ok in [
            "Europe/Paris",
            "UTC",
            "Etc/UTC",
            "America/Argentina/Buenos_Aires",
            "Asia/Kolkata",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for (bad, want) in [
            ("", "must not be empty"),
            ("Europe/Pari", "\"Europe/Pari\" is not an IANA time zone name"),
            ("europe/paris", "did you mean \"Europe/Paris\""),
            ("Local", "not an IANA time zone name"),
            ("+02:00", "not an IANA time zone name"),
        ] {
            let e = check(bad).expect_err(bad);
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
