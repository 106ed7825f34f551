//! THE one place where a value becomes a shell word, for every layer that
//! puts text on a host's command line: the SSH layer (`sudo sh -c`, upload
//! paths) and the host layer's scripts (`host::quote` adds the validated
//! newtypes on top). One rule, one set of tests.

/// `s` as ONE POSIX shell word: single-quoted, each `'` written as `'\''`.
/// Inside single quotes no character is special (not `$`, `` ` ``, `\`, `!`
/// or newline), so the word reaches the command exactly as `s`. Safe for any
/// text (a NUL cannot be in a `&str` that reaches an argv anyway).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Tests: `sh -n` accepts `script` (it parses; nothing runs).
#[cfg(test)]
pub fn assert_valid_sh(script: &str) {
    let out = std::process::Command::new("sh")
        .args(["-n", "-c", script])
        .output()
        .expect("run sh -n");
    assert!(
        out.status.success(),
        "{}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::quote;
    use std::process::Command;

    #[test]
    fn quotes_are_closed_escaped_and_reopened() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(rm -rf /) `x` \"y\""), "'$(rm -rf /) `x` \"y\"'");
    }

    #[test]
    fn a_real_shell_reads_back_every_value() {
        let nasty = [
            "plain",
            "",
            "it's",
            "'",
            "''",
            "$(touch /tmp/pwned)",
            "`id`",
            "a\nb",
            "$HOME",
            "back\\slash",
            "!event",
            "semi; rm -rf /",
            "--option",
            "-n",
            " lead",
            "*",
        ];
        for s in nasty {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", quote(s)))
                .output()
                .expect("run sh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), s, "quote({s:?}) = {}", quote(s));
        }
    }
}
