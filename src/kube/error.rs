//! What can go wrong talking to the API server, split into refusals (the
//! server understood and said no: retrying will not help) and transient
//! failures (retried with backoff until the deadline).

use std::time::Duration;

/// An error of the Kubernetes layer. Every variant names the operation
/// (`what`: e.g. "apply of Secret gateway/gateway-token") and, for refusals,
/// the API server's own message saying why.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig could not be parsed or used (its content is never quoted).
    #[error("the kubeconfig is not usable: {0}")]
    Kubeconfig(String),
    /// 401: the credentials in the kubeconfig were not accepted.
    #[error(
        "{what} was refused: the API server did not accept the kubeconfig's credentials (401 Unauthorized): {message}"
    )]
    Unauthorized {
        /// The operation, e.g. "apply of Secret gateway/gateway-token".
        what: String,
        /// The API server's own message saying why.
        message: String,
    },
    /// 403 because a ResourceQuota forbids it.
    #[error("{what} was refused by a resource quota (403): {message}")]
    Quota {
        /// The operation, e.g. "apply of Secret gateway/gateway-token".
        what: String,
        /// The API server's own message saying why.
        message: String,
    },
    /// 403: RBAC or an admission plugin forbids it.
    #[error("{what} was refused (403 Forbidden): {message}")]
    Forbidden {
        /// The operation, e.g. "apply of Secret gateway/gateway-token".
        what: String,
        /// The API server's own message saying why.
        message: String,
    },
    /// 404 where the object must exist (e.g. its namespace is missing).
    #[error("{what} failed (404 Not Found): {message}")]
    NotFound {
        /// The operation, e.g. "apply of Secret gateway/gateway-token".
        what: String,
        /// The API server's own message saying why.
        message: String,
    },
    /// 409: a conflict with another writer or an object being deleted.
    #[error("{what} was refused (409 Conflict): {message}")]
    Conflict {
        /// The operation, e.g. "apply of Secret gateway/gateway-token".
        what: String,
        /// The API server's own message saying why.
        message: String,
    },
    /// 422: the object is invalid (validation or an admission policy).
    #[error("{what} was refused as invalid (422): {message}")]
    Invalid {
        /// The operation, e.g. "apply of Secret gateway/gateway-token".
        what: String,
        /// The API server's own message saying why.
        message: String,
    },
    /// Any other refusal (4xx) the server gave.
    #[error("{what} was refused ({code} {reason}): {message}")]
    Refused {
        /// The operation, e.g. "apply of Secret gateway/gateway-token".
        what: String,
        /// The HTTP status code.
        code: u16,
        /// The API server's machine-readable reason, e.g. "BadRequest".
        reason: String,
        /// The API server's own message saying why.
        message: String,
    },
    /// Transient failures went on until the time limit.
    #[error("{what} did not succeed within {limit:?}; last error: {last}")]
    Timeout {
        /// The operation, e.g. "apply of Secret gateway/gateway-token".
        what: String,
        /// How long attempts were retried.
        limit: Duration,
        /// The last attempt's failure.
        last: String,
    },
    /// Waiting for a condition (e.g. deletion) went on until the time limit.
    #[error("{what}: still waiting after {limit:?}")]
    WaitTimeout {
        /// What was awaited, e.g. "deletion of Namespace acc-x".
        what: String,
        /// How long it was awaited.
        limit: Duration,
    },
    /// A workload's pods cannot start for a reason waiting will not fix
    /// (an image neither pullable nor on the nodes, a bad pod spec).
    #[error("{what}: {problem}")]
    PodsStuck {
        /// What was awaited, e.g. "rollout of Deployment kube-system/metrics-server".
        what: String,
        /// The pod and its reason, as the kubelet reports them.
        problem: String,
    },
    /// Stopped by StopProvider (Ctrl-C) or the operation's `timeouts {}`.
    #[error("{what} was cancelled")]
    Cancelled {
        /// The operation, e.g. "apply of Secret gateway/gateway-token".
        what: String,
    },
    /// The server answered something this provider cannot read.
    #[error("{what}: unexpected answer from the API server: {message}")]
    Unexpected {
        /// The operation, e.g. "apply of Secret gateway/gateway-token".
        what: String,
        /// What was wrong with the answer.
        message: String,
    },
}

impl KubeError {
    /// A short summary for a diagnostic.
    pub fn summary(&self) -> &'static str {
        match self {
            KubeError::Kubeconfig(_) => "Unusable kubeconfig",
            KubeError::Unauthorized { .. } => "Kubernetes credentials refused",
            KubeError::Quota { .. } => "Refused by a Kubernetes resource quota",
            KubeError::Forbidden { .. } => "Forbidden by the Kubernetes API server",
            KubeError::NotFound { .. } => "Kubernetes object or namespace not found",
            KubeError::Conflict { .. } => "Conflict on the Kubernetes API server",
            KubeError::Invalid { .. } => "Refused as invalid by the Kubernetes API server",
            KubeError::Refused { .. } => "Refused by the Kubernetes API server",
            KubeError::Timeout { .. } | KubeError::WaitTimeout { .. } => "Kubernetes operation timed out",
            KubeError::PodsStuck { .. } => "Kubernetes pods cannot start",
            KubeError::Cancelled { .. } => "Kubernetes operation cancelled",
            KubeError::Unexpected { .. } => "Unexpected answer from the Kubernetes API server",
        }
    }

    /// What the user can do about it, appended to the diagnostic's detail.
    pub fn hint(&self) -> &'static str {
        match self {
            KubeError::Kubeconfig(_) => {
                "Check the kubeconfig attribute: it must be the text of a kubeconfig (e.g. file(\"~/.kube/config\")), not a path."
            }
            KubeError::Unauthorized { .. } => {
                "Check the kubeconfig's user credentials (certificate or token) are current."
            }
            KubeError::Quota { .. } => "Raise the quota named above, or lower what this resource asks for.",
            KubeError::Forbidden { .. } => {
                "Grant the kubeconfig's user the permission named above (RBAC), or use a kubeconfig that has it."
            }
            KubeError::NotFound { .. } => "Create the namespace first (or fix its name).",
            KubeError::Conflict { .. } => "Another writer holds this object; apply again once it is done.",
            KubeError::Invalid { .. } => "Fix the value the API server names above.",
            KubeError::Refused { .. } => "See the API server's message above.",
            KubeError::Timeout { .. } => {
                "The API server kept failing or was unreachable; check it is up, or raise the resource's timeouts."
            }
            KubeError::WaitTimeout { .. } => {
                "Raise the resource's timeouts, or look at why the object does not reach the expected state."
            }
            KubeError::PodsStuck { .. } => {
                "See the pod's reason above: an image must be pullable by the nodes or be in the install bundle's images, and some node must be able to take the pod."
            }
            KubeError::Cancelled { .. } => "Apply again to finish.",
            KubeError::Unexpected { .. } => "This may be a bug in the provider; please report it.",
        }
    }

    /// The diagnostic detail: the error followed by the hint.
    pub fn detail(&self) -> String {
        format!("{self}. {}", self.hint())
    }
}

/// How the retry loop treats a failure of one attempt.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Worth trying again (429, 5xx, connection refused/reset, ...); the text
    /// says what happened.
    Transient(String),
    /// Final.
    Final(KubeError),
}

/// Classify one `kube` error for the operation `what`. Pure: no I/O.
pub(crate) fn classify(what: &str, e: kube::Error) -> Attempt {
    match e {
        kube::Error::Api(status) => classify_status(what, status.code, &status.reason, &status.message),
        // Connection refused/reset, TLS handshakes cut short, timeouts of
        // one request, an API server restarting: all worth retrying.
        kube::Error::HyperError(e) => Attempt::Transient(chain(&e)),
        kube::Error::Service(e) => Attempt::Transient(chain(e.as_ref())),
        kube::Error::ReadEvents(e) => Attempt::Transient(chain(&e)),
        kube::Error::Auth(e) => Attempt::Final(KubeError::Unauthorized {
            what: what.to_owned(),
            message: chain(&e),
        }),
        kube::Error::InferKubeconfig(e) => Attempt::Final(KubeError::Kubeconfig(chain(&e))),
        other => Attempt::Final(KubeError::Unexpected {
            what: what.to_owned(),
            message: chain(&other),
        }),
    }
}

/// Classify an API status (`code`, `reason`, `message`). Pure.
pub(crate) fn classify_status(what: &str, code: u16, reason: &str, message: &str) -> Attempt {
    let what = what.to_owned();
    let message = message.trim().to_owned();
    match code {
        429 | 500 | 502 | 503 | 504 => Attempt::Transient(format!("{code} {reason}: {message}")),
        401 => Attempt::Final(KubeError::Unauthorized { what, message }),
        403 if message.contains("exceeded quota") || message.contains("quota") => {
            Attempt::Final(KubeError::Quota { what, message })
        }
        403 => Attempt::Final(KubeError::Forbidden { what, message }),
        404 => Attempt::Final(KubeError::NotFound { what, message }),
        409 => Attempt::Final(KubeError::Conflict { what, message }),
        422 => Attempt::Final(KubeError::Invalid { what, message }),
        _ => Attempt::Final(KubeError::Refused {
            what,
            code,
            reason: reason.to_owned(),
            message,
        }),
    }
}

/// An error and its sources on one line, each cause once (kube's own
/// messages often repeat their source: keep the innermost distinct ones).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn final_of(a: Attempt) -> KubeError {
        match a {
            Attempt::Final(e) => e,
            Attempt::Transient(t) => panic!("expected a final error, got transient {t}"),
        }
    }

    #[test]
    fn refusals_are_final_and_say_what_and_why() {
        let cases: &[(u16, &str, &str, &str)] = &[
            (
                403,
                "Forbidden",
                "secrets \"x\" is forbidden: User \"u\" cannot patch resource \"secrets\"",
                "Forbidden by",
            ),
            (
                403,
                "Forbidden",
                "secrets \"x\" is forbidden: exceeded quota: q, requested: count/secrets=1, used: count/secrets=0, limited: count/secrets=0",
                "resource quota",
            ),
            (409, "Conflict", "Operation cannot be fulfilled", "Conflict"),
            (
                422,
                "Invalid",
                "Secret \"x\" is invalid: data[a b]: Invalid value",
                "invalid",
            ),
            (404, "NotFound", "namespaces \"nope\" not found", "not found"),
            (400, "BadRequest", "bad", "Refused by"),
        ];
        for (code, reason, message, summary) in cases {
            let e = final_of(classify_status("apply of Secret ns/x", *code, reason, message));
            assert!(e.summary().contains(summary), "{code}: {}", e.summary());
            let text = e.to_string();
            assert!(text.starts_with("apply of Secret ns/x"), "{text}");
            assert!(text.contains(message), "{text}");
        }
    }

    #[test]
    fn quota_names_the_quota() {
        let e = final_of(classify_status(
            "apply",
            403,
            "Forbidden",
            "exceeded quota: agents-quota, requested: limits.cpu=2",
        ));
        assert!(matches!(e, KubeError::Quota { .. }));
        assert!(e.detail().contains("agents-quota"));
    }

    #[test]
    fn transient_codes_are_retried() {
        for code in [429, 500, 502, 503, 504] {
            assert!(matches!(
                classify_status("get", code, "", "try later"),
                Attempt::Transient(_)
            ));
        }
    }

    #[test]
    fn chain_keeps_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: connection refused")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        assert_eq!(chain(&e), "outer: connection refused");
    }
}
