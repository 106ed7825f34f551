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

/// A Kubernetes quantity ("250m", "1", "512Mi", "1.5Gi"), not negative.
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn check_quantity(s: &str) -> Result<(), String> {
    match super::drift::quantity(s) {
        Some(q) if q.sign() != bigdecimal::num_bigint::Sign::Minus && s.trim() == s && !s.is_empty() => Ok(()),
        Some(_) => Err(format!("{s:?} is negative")),
        None => Err(format!(
            "{s:?} is not a Kubernetes quantity; write e.g. \"250m\" or \"1\" (CPU), \"512Mi\" or \"1Gi\" (memory)"
        )),
    }
}

/// A container image reference: `[registry[:port]/]path[:tag][@digest]`,
/// path components lower-case.
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn check_image(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{s:?} contains {c:?}; image references have no spaces"));
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        let ok = d
            .split_once(':')
            .is_some_and(|(alg, hex)| !alg.is_empty() && hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return Err(format!("{s:?}: digest {d:?} must look like \"sha256:<hex>\""));
        }
    }
    // A tag is after the last ':' that follows the last '/'.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && !t.starts_with(['.', '-'])
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(format!(
                "{s:?}: tag {t:?} may hold letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')"
            ));
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first component with '.', ':' or "localhost" is a registry host.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        parts.remove(0);
    }
    for p in parts {
        let ok = !p.is_empty()
            && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && p.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if !ok {
            return Err(format!(
                "{s:?}: repository part {p:?} must be lower-case letters and digits, separated by '.', '_' or '-'"
            ));
        }
    }
    Ok(())
}

/// A label key: `[prefix/]name`, the name at most 63 characters of
/// letters, digits, '-', '_' and '.', starting and ending alphanumeric; the
/// prefix a DNS subdomain.
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn check_label_key(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        check_subdomain(p).map_err(|e| format!("label key {s:?}: prefix {e}"))?;
    }
    check_label_value(name)
        .and_then(|()| {
            if name.is_empty() {
                Err("the name part is empty".into())
            } else {
                Ok(())
            }
        })
        .map_err(|e| format!("label key {s:?}: {e}"))
}

/// A label value: empty, or at most 63 characters of letters, digits, '-',
/// '_' and '.', starting and ending alphanumeric.
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn check_label_value(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err(format!("{s:?} is {} characters long; at most 63 are allowed", s.len()));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "{s:?} contains {c:?}; only letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    if s.starts_with(['-', '_', '.']) || s.ends_with(['-', '_', '.']) {
        return Err(format!("{s:?} must start and end with a letter or digit"));
    }
    Ok(())
}

/// An environment variable name: letters, digits and '_', not starting
/// with a digit (what shells can use; Kubernetes allows more, but a name a
/// program cannot read is a mistake).
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn check_env_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("{s:?} starts with a digit"));
    }
    match s.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
        Some(c) => Err(format!(
            "{s:?} contains {c:?}; only letters, digits and '_' are allowed"
        )),
        None => Ok(()),
    }
}

/// An absolute path in the container (a mount point).
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn check_mount_path(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err(format!("{s:?} is not an absolute path"));
    }
    if s.split('/').any(|p| p == "..") {
        return Err(format!("{s:?} contains '..'"));
    }
    if s == "/" || s == "/tmp" {
        return Err(format!(
            "{s:?} cannot be a mount point here (the root, or the agent's own /tmp)"
        ));
    }
    Ok(())
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
    #[test]
    fn quantities_images_labels() {
        for ok in ["250m", "1", "512Mi", "1.5Gi", "0"] {
            assert_eq!(check_quantity(ok), Ok(()), "{ok}");
        }
        for bad in ["", "1x", "-1", "abc", " 1"] {
            assert!(check_quantity(bad).is_err(), "{bad}");
        }
        for ok in [
            "nginx",
            "openclaw-sandbox:bookworm-slim",
            "registry.k8s.io/pause:3.10",
            "localhost:5000/a/b:v1",
            "ghcr.io/org/x:V1",
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check_image(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Nginx", "a b", "nginx:", "nginx:-x", "x@md5", "a//b"] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
        for ok in ["app", "selfhost.dev/agent", "a.b_c-d"] {
            assert_eq!(check_label_key(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-a", "Bad_/x", "a/", &"a".repeat(64)] {
            assert!(check_label_key(bad).is_err(), "{bad}");
        }
        assert!(check_env_name("OPENAI_API_KEY").is_ok());
        for bad in ["", "1A", "A-B", "A B"] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
        assert!(check_mount_path("/data").is_ok());
        for bad in ["data", "/", "/tmp", "/a/../b"] {
            assert!(check_mount_path(bad).is_err(), "{bad}");
        }
    }
}
