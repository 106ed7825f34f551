//! Kubernetes naming rules, checked at validate time so the error points at
//! the HCL line instead of coming back as a 422 at apply. Pure.

/// An RFC 1123 label (namespaces, Service names): at most 63 characters of
/// lower-case letters, digits and `-`, starting and ending alphanumeric.
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn check_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 63 {
        return Err(format!("{s:?} is {} characters long; at most 63 are allowed", s.len()));
    }
    label_chars(s)
}

/// An RFC 1123 subdomain (names of Secrets, Deployments, ...): at most 253
/// characters, dot-separated labels.
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn check_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 253 {
        return Err(format!("{s:?} is {} characters long; at most 253 are allowed", s.len()));
    }
    s.split('.').try_for_each(|part| {
        if part.is_empty() {
            Err(format!("{s:?} has an empty part between dots"))
        } else {
            label_chars(part).map_err(|e| format!("{s:?}: {e}"))
        }
    })
}

/// A key of a Secret's or ConfigMap's data: letters, digits, `-`, `_` and
/// `.`, at most 253 characters, not `.` or `..`.
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn check_data_key(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 253 {
        return Err(format!("{s:?} is {} characters long; at most 253 are allowed", s.len()));
    }
    if s == "." || s == ".." {
        return Err(format!("{s:?} is not allowed"));
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(format!(
            "{s:?} contains {c:?}; only letters, digits, '-', '_' and '.' are allowed"
        )),
        None => Ok(()),
    }
}

fn label_chars(s: &str) -> Result<(), String> {
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "{s:?} contains {c:?}; only lower-case letters, digits and '-' are allowed (RFC 1123)"
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(format!("{s:?} must start and end with a letter or digit (RFC 1123)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for ok in ["a", "gateway", "acc-1", "0abc"] {
            assert_eq!(check_label(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subdomains() {
        for ok in ["gateway-token", "a.b.c", "x1"] {
            assert_eq!(check_subdomain(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a..b", ".a", "Gateway", "a_b", &"a".repeat(254)] {
            assert!(check_subdomain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn data_keys() {
        for ok in ["token", "TOKEN_1", ".env", "a-b.c"] {
            assert_eq!(check_data_key(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b"] {
            assert!(check_data_key(bad).is_err(), "{bad}");
        }
    }
}
