//! Shell quoting for the few words this layer puts in a command line.
//!
//! The host layer's `host::quote` is THE shared quoting helper of issue 7;
//! this is a stopgap with the same rule until the lead merges the two.

/// `value` as one POSIX shell word: wrapped in single quotes, each `'` written
/// as `'\''`. Safe for any bytes except NUL (which no argv can carry).
pub fn shell_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quotes_are_closed_escaped_and_reopened() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(rm -rf /) `x` \"y\""), "'$(rm -rf /) `x` \"y\"'");
    }

    #[test]
    fn a_real_shell_reads_back_every_value() {
        for v in ["plain", "it's", "'", "''", "a\nb", "$HOME", "\\", "*", "-n", " lead"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(v)))
                .output()
                .expect("run sh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), v);
        }
    }
}
