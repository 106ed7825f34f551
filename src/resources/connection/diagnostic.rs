//! One mapping from SSH failures to diagnostics, for every resource that
//! reaches a host: each failure points at the attribute that fixes it (the
//! key, the credentials, the address), whatever the resource calls its
//! connection block.

use crate::framework::{AttributePath, Diagnostic};
use crate::logging::error_chain;
use crate::ssh::SshError;

/// Ctrl-C or the operation's time limit stopped the work on `label`.
pub fn cancelled(label: &str) -> Diagnostic {
    Diagnostic::error(
        "Cancelled",
        format!("{label}: stopped by Ctrl-C or the operation's timeout; what was done so far is recorded in state."),
        None,
    )
}

/// The diagnostic for an SSH failure on `label`; `connection` is the path
/// of the object holding `host`, `host_key` and the credentials
/// (`ssh_connection`, `control_plane`, `workers[1]`).
pub fn ssh_diagnostic(label: &str, connection: &AttributePath, e: &SshError) -> Diagnostic {
    match e {
        SshError::HostKeyMismatch { .. } => Diagnostic::error(
            "SSH host key mismatch",
            format!("{label}: {e}."),
            Some(connection.clone().attr("host_key")),
        ),
        SshError::HostKeyFormat { .. } => Diagnostic::error(
            "Invalid SSH host key",
            format!("{label}: {e}."),
            Some(connection.clone().attr("host_key")),
        ),
        SshError::Auth { .. }
        | SshError::NoCredentials { .. }
        | SshError::KeyFormat { .. }
        | SshError::Agent { .. } => Diagnostic::error(
            "SSH authentication failed",
            format!("{label}: {e}."),
            Some(connection.clone()),
        ),
        SshError::Cancelled => cancelled(label),
        other => Diagnostic::error(
            "Cannot reach the host",
            format!("{label}: {}.", error_chain(other)),
            Some(connection.clone().attr("host")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &AttributePath, e: SshError) -> (String, Option<AttributePath>) {
        let d = ssh_diagnostic("root@10.0.0.1:22", path, &e);
        (d.summary, d.attribute)
    }

    #[test]
    fn each_failure_points_at_what_fixes_it() {
        let worker = AttributePath::root("workers").index(1);
        assert_eq!(
            at(
                &worker,
                SshError::Auth {
                    target: "root@10.0.0.1:22".into(),
                    tried: "private key SHA256:x".into(),
                }
            ),
            ("SSH authentication failed".to_owned(), Some(worker.clone()))
        );
        assert_eq!(
            at(
                &worker,
                SshError::HostKeyFormat {
                    host: "10.0.0.1:22".into(),
                    problem: "not base64".into(),
                }
            ),
            ("Invalid SSH host key".to_owned(), Some(worker.clone().attr("host_key")))
        );
        assert_eq!(
            at(
                &worker,
                SshError::HostKeyMismatch {
                    host: "10.0.0.1:22".into(),
                    expected: "SHA256:a".into(),
                    seen: "SHA256:b".into(),
                }
            ),
            (
                "SSH host key mismatch".to_owned(),
                Some(worker.clone().attr("host_key"))
            )
        );
        assert_eq!(
            at(
                &worker,
                SshError::Disconnected {
                    target: "root@10.0.0.1:22".into()
                }
            ),
            ("Cannot reach the host".to_owned(), Some(worker.clone().attr("host")))
        );
        assert_eq!(at(&worker, SshError::Cancelled), ("Cancelled".to_owned(), None));
    }
}
