//! Host provisioning, split as kube-rs splits its client: a core with no
//! I/O — the facts script and its parser ([`facts`]), observation
//! ([`observe()`]), step generation ([`converge`], [`revert`]) — and two thin
//! async helpers that run them through any [`Exec`] (the SSH layer's
//! connection in the provider, the OpenSSH client in tests).
//!
//! Every value that reaches a host shell is a validated newtype
//! ([`validate`]) turned into one quoted word ([`quote::quote`]).

pub mod aspect;
pub(crate) mod aspects;
pub mod facts;
pub mod manifest;
pub mod observe;
pub mod quote;
pub mod spec;
pub mod steps;
mod valid_spec;
pub mod validate;

#[cfg(test)]
mod tests;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use facts::{Facts, FactsError};
pub use observe::{AspectWarning, Observation, observe};
pub use spec::HostSpec;
pub use steps::{Step, check_firewall_keeps_ssh, check_supported, converge, revert};

/// What a script run produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status; `None` when the script was killed by a signal.
    pub status: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// The script could not be run (the exit status of a script that ran is in
/// [`ExecOutput`], not here).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The operation was cancelled (Ctrl-C, timeout).
    #[error("cancelled")]
    Cancelled,
    /// The transport failed.
    #[error("{message}")]
    Transport {
        /// What failed.
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// Runs a POSIX sh script as root on one host (`sudo -n` when the login
/// user is not root), with `stdin` on the script's standard input. How the
/// script travels (a quoted `sh -c` word, a file) is the implementor's
/// choice; stdin must stay free for `stdin`.
#[async_trait]
pub trait Exec: Send + Sync {
    /// Run `script` with `stdin`; resolve when it exits.
    async fn run(&self, script: &str, stdin: &[u8], cancel: &CancellationToken) -> Result<ExecOutput, ExecError>;
}

/// Errors of this layer.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The host is not apt-based.
    #[error("{0} is not supported: selfhost_vps_host provisions Debian 12 and Ubuntu 22.04/24.04 (apt-based hosts)")]
    UnsupportedOs(String),
    /// Values that do not validate, each with its attribute path.
    #[error("invalid host settings: {}", .0.iter().map(|(p, m)| format!("{}: {m}", p.join("."))).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<spec::Invalid>),
    /// The firewall would drop the session the provider works through.
    #[error(
        "the firewall has no allow rule for tcp port {port} from {peer}, the SSH session this provider is using; add one (e.g. allow {{ port = \"{port}\" }})"
    )]
    WouldLockOut {
        /// SSH port in use.
        port: u16,
        /// The provider's address as the host sees it.
        peer: String,
    },
    /// /var/lib/selfhost/host.json exists but is not ours.
    #[error("/var/lib/selfhost/host.json is unreadable ({0}); move it away to let selfhost_vps_host start afresh")]
    Manifest(String),
    /// Running a script failed.
    #[error("{what}")]
    Exec {
        /// Which script.
        what: String,
        /// The cause.
        #[source]
        source: ExecError,
    },
    /// The facts output was not understood.
    #[error("reading the host's facts")]
    Facts(#[from] FactsError),
    /// The facts script itself failed.
    #[error("the facts script exited with {status:?}: {stderr}")]
    FactsScript {
        /// Exit status.
        status: Option<i32>,
        /// Its stderr (tail).
        stderr: String,
    },
    /// A step's script failed.
    #[error("{aspect}: the step failed with exit status {status:?}: {stderr}")]
    StepFailed {
        /// The aspect.
        aspect: &'static str,
        /// Exit status.
        status: Option<i32>,
        /// Its stderr (last lines).
        stderr: String,
    },
}

fn tail(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

/// Gather the facts needed to observe `managed` (plus whatever the host's
/// manifest manages): ONE exec of [`facts::SCRIPT`].
///
/// # Errors
/// Transport failures, a failing script, an unreadable output.
pub async fn gather_facts(exec: &dyn Exec, managed: &HostSpec, cancel: &CancellationToken) -> Result<Facts, HostError> {
    let out = exec
        .run(facts::SCRIPT, &facts::query(managed), cancel)
        .await
        .map_err(|source| HostError::Exec {
            what: "running the facts script".into(),
            source,
        })?;
    if out.status != Some(0) {
        return Err(HostError::FactsScript {
            status: out.status,
            stderr: tail(&out.stderr),
        });
    }
    Ok(facts::parse(&out.stdout)?)
}

/// What the host's manifest says this provider manages: the spec an import
/// starts from (`None`: nothing recorded, or a manifest that does not parse).
pub fn managed_from_manifest(facts: &Facts) -> Option<HostSpec> {
    match &facts.manifest {
        Some(Ok(m)) => Some(m.managed.clone()),
        _ => None,
    }
}

/// Run `steps` in order, stopping at the first failure; returns the
/// aspects done. Each step is logged at INFO by its summary.
///
/// # Errors
/// The first failing step, naming its aspect.
pub async fn run_steps(
    exec: &dyn Exec,
    steps: &[Step],
    cancel: &CancellationToken,
) -> Result<Vec<&'static str>, HostError> {
    let mut done = Vec::new();
    for s in steps {
        tracing::info!(aspect = s.aspect, "{}", s.summary);
        let out = exec
            .run(&s.script, &s.stdin, cancel)
            .await
            .map_err(|source| HostError::Exec {
                what: format!("{}: running the step", s.aspect),
                source,
            })?;
        if out.status != Some(0) {
            return Err(HostError::StepFailed {
                aspect: s.aspect,
                status: out.status,
                stderr: tail(&out.stderr),
            });
        }
        done.push(s.aspect);
    }
    Ok(done)
}
