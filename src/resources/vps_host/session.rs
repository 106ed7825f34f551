//! One operation's conversation with a host: the pooled SSH connection, the
//! facts script, the converge/revert steps with progress at INFO, and the
//! diagnostics for what went wrong, each naming the attribute to look at.

use std::sync::Arc;

use crate::framework::resource::Context;
use crate::framework::{AttributePath, Diagnostic, Value};
use crate::host::facts::Facts;
use crate::host::spec::HostSpec;
use crate::host::{self, HostError, Step};
use crate::logging::error_chain;
use crate::resources::connection::{self, ConnectionConfig, SshExec, cancelled, resolve_connection};
use crate::resources::state::{ProviderState, provider_state};
use crate::ssh::{HostKeyPolicy, SshError};

use super::model::{FactsModel, SshObject};
use crate::host::steps::set_managed;

/// The host keys the connection must present.
pub struct HostKeyExpectation {
    host: HostKeyPolicy,
    bastion: HostKeyPolicy,
}

impl HostKeyExpectation {
    /// Create/update: a key in configuration is pinned; else the one
    /// recorded in state must match; else (create) the first seen is taken.
    pub fn for_apply(config: &ConnectionConfig, prior: Option<&ConnectionConfig>) -> Self {
        let rule = |configured: Option<&String>, recorded: Option<&String>| match (configured, recorded) {
            (Some(k), _) => HostKeyPolicy::Pinned(k.clone()),
            (None, Some(k)) => HostKeyPolicy::Recorded(k.clone()),
            (None, None) => HostKeyPolicy::FirstUse,
        };
        HostKeyExpectation {
            host: rule(config.host_key.as_ref(), prior.and_then(|p| p.host_key.as_ref())),
            bastion: rule(
                config.bastion.as_ref().and_then(|b| b.host_key.as_ref()),
                prior.and_then(|p| p.bastion.as_ref()).and_then(|b| b.host_key.as_ref()),
            ),
        }
    }

    /// Read/delete: the keys in state must match (none recorded yet, as
    /// right after an import: the first seen is taken).
    pub fn recorded(state: &ConnectionConfig) -> Self {
        let rule = |k: Option<&String>| k.map_or(HostKeyPolicy::FirstUse, |k| HostKeyPolicy::Recorded(k.clone()));
        HostKeyExpectation {
            host: rule(state.host_key.as_ref()),
            bastion: rule(state.bastion.as_ref().and_then(|b| b.host_key.as_ref())),
        }
    }

    /// A data source: keys pinned in configuration are checked; nothing is
    /// recorded.
    pub fn pinned_only(config: &ConnectionConfig) -> Self {
        let rule = |k: Option<&String>| k.map_or(HostKeyPolicy::FirstUse, |k| HostKeyPolicy::Pinned(k.clone()));
        HostKeyExpectation {
            host: rule(config.host_key.as_ref()),
            bastion: rule(config.bastion.as_ref().and_then(|b| b.host_key.as_ref())),
        }
    }
}

/// The keys the connection really presented (verified against the rules).
pub struct SeenKeys {
    pub host: String,
    pub bastion: Option<String>,
}

/// What a read of the host found.
pub struct Observed {
    pub spec: HostSpec,
    pub facts: FactsModel,
    /// The running host name and time zone (for the data source).
    pub hostname: String,
    pub timezone: String,
}

/// A warning about one aspect the host cannot do.
pub struct AspectWarning {
    pub path: Vec<String>,
    pub message: String,
}

/// What converging did.
pub struct ConvergeOutcome {
    /// The host as read back afterwards; `None` if nothing could be read.
    pub observed: Option<Observed>,
    pub warnings: Vec<AspectWarning>,
    /// The first failure, if any (steps after it did not run).
    pub error: Option<Diagnostic>,
}

impl ConvergeOutcome {
    pub fn error_free(&self) -> bool {
        self.error.is_none()
    }
}

/// An open conversation with one host.
pub struct Session {
    exec: SshExec,
    label: String,
    user: String,
    host: String,
    port: i64,
    seen: SeenKeys,
}

fn error(summary: &str, detail: String, path: Option<AttributePath>) -> Diagnostic {
    Diagnostic::error(summary, detail, path)
}

fn ssh_diagnostic(label: &str, e: &SshError) -> Diagnostic {
    connection::ssh_diagnostic(label, &AttributePath::root("ssh_connection"), e)
}

/// The diagnostic for a host-layer failure.
fn host_diagnostic(label: &str, e: &HostError) -> Diagnostic {
    match e {
        HostError::Exec {
            source: host::ExecError::Cancelled,
            ..
        } => cancelled(label),
        HostError::StepFailed { aspect, .. } => error(
            &format!("Could not apply {aspect}"),
            format!("{label}: {e}"),
            Some(super::model::attribute_path(&[(*aspect).to_owned()])),
        ),
        HostError::UnsupportedOs(_) => error("Unsupported operating system", format!("{label}: {e}."), None),
        HostError::Exec { .. } => error(
            "Lost the host",
            format!(
                "{label}: {}. The state records what was done; run apply again once the host is reachable.",
                error_chain(e)
            ),
            Some(AttributePath::root("ssh_connection").attr("host")),
        ),
        other => error(
            "Host provisioning failed",
            format!("{label}: {}.", error_chain(other)),
            None,
        ),
    }
}

impl Session {
    /// Connect (or reuse the pooled connection) with the keys `expect`ed.
    /// `applying` admits the write-only private key of the configuration.
    pub async fn open(
        ctx: &Context,
        config: &ConnectionConfig,
        expect: &HostKeyExpectation,
        applying: bool,
    ) -> Result<Session, Diagnostic> {
        let Some(provider) = provider_state(ctx) else {
            return Err(error(
                "Provider not configured",
                "The provider was not configured before this operation. This is a bug in the provider or the CLI; please report it.".to_owned(),
                None,
            ));
        };
        let spec = resolve_connection(config, &provider.ssh_defaults, &expect.host, &expect.bastion, applying)
            .map_err(|(path, msg)| error("Invalid connection", format!("{msg}."), Some(path)))?;
        let label = spec.target();
        let conn = provider
            .ssh_pool
            .connect(&spec, &ctx.cancel)
            .await
            .map_err(|e| ssh_diagnostic(&label, &e))?;
        let seen = SeenKeys {
            host: conn.host_key(),
            bastion: conn.bastion_host_key(),
        };
        Ok(Session {
            label,
            user: spec.user.clone(),
            host: spec.host.clone(),
            port: i64::from(spec.port),
            seen,
            exec: SshExec(conn),
        })
    }

    /// `root@10.0.0.1:22`, for messages and logs.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn seen_keys(&self) -> &SeenKeys {
        &self.seen
    }

    /// The `ssh` output object.
    pub fn ssh_object(&self) -> SshObject {
        SshObject {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            host_key: self.seen.host.clone(),
        }
    }

    /// Run the facts script once (one exec) and parse it.
    async fn facts(&self, ctx: &Context, managed: &HostSpec) -> Result<Facts, Diagnostic> {
        let facts = host::gather_facts(&self.exec, managed, &ctx.cancel)
            .await
            .map_err(|e| host_diagnostic(&self.label, &e))?;
        host::check_supported(&facts).map_err(|e| host_diagnostic(&self.label, &e))?;
        Ok(facts)
    }

    /// Read the managed aspects (from the host's manifest after an import).
    pub async fn observe(&self, ctx: &Context, managed: &HostSpec, imported: bool) -> Result<Observed, Diagnostic> {
        let facts = self.facts(ctx, managed).await?;
        let managed = if imported {
            match &facts.manifest {
                Some(Ok(m)) => m.managed.clone(),
                _ => HostSpec::default(),
            }
        } else {
            managed.clone()
        };
        Ok(observed(&managed, &facts))
    }

    /// Bring the host to `desired`: one step per differing aspect, stopping
    /// at the first failure; then read the host back. When the host cannot
    /// be read back, the state is what it was before plus the steps that
    /// finished, so nothing done is lost.
    ///
    /// `creating`: this resource starts managing the host now, so what the
    /// host holds now is what a later revert restores (backups a previous,
    /// since destroyed resource recorded in the manifest are dropped).
    pub async fn converge(&self, ctx: &Context, desired: &HostSpec, creating: bool) -> ConvergeOutcome {
        let mut outcome = ConvergeOutcome {
            observed: None,
            warnings: Vec::new(),
            error: None,
        };
        let facts = match self.facts(ctx, desired).await {
            Ok(f) => f,
            Err(d) => {
                outcome.error = Some(d);
                return outcome;
            }
        };
        let before = observed(desired, &facts);
        let mut baseline = facts.clone();
        if creating && let Some(Ok(m)) = baseline.manifest.as_mut() {
            m.backups.clear();
        }
        let steps = match host::converge(desired, &baseline) {
            Ok(s) => s,
            Err(e) => {
                outcome.error = Some(host_diagnostic(&self.label, &e));
                outcome.observed = Some(before);
                return outcome;
            }
        };
        if steps.is_empty() {
            tracing::info!(host = %self.label, "{}: nothing to change", self.label);
        }
        let mut done = Vec::new();
        for step in &steps {
            match self.run_step(ctx, step).await {
                Ok(()) => done.push(step.aspect),
                Err(d) => {
                    outcome.error = Some(d);
                    break;
                }
            }
        }
        match self.facts(ctx, desired).await {
            Ok(after) => {
                let observation = host::observe(desired, &after);
                outcome.warnings = observation
                    .warnings
                    .iter()
                    .map(|w| AspectWarning {
                        path: w.path.clone(),
                        message: w.message.clone(),
                    })
                    .collect();
                outcome.observed = Some(observed(desired, &after));
            }
            Err(d) => {
                let mut partial = before;
                for aspect in done {
                    set_managed(&mut partial.spec, desired, aspect);
                }
                outcome.observed = Some(partial);
                if outcome.error.is_none() {
                    outcome.error = Some(d);
                }
            }
        }
        outcome
    }

    /// Remove what this resource wrote.
    pub async fn revert(&self, ctx: &Context, managed: &HostSpec) -> Result<(), Diagnostic> {
        let facts = self.facts(ctx, managed).await?;
        let steps = host::revert(managed, &facts).map_err(|e| host_diagnostic(&self.label, &e))?;
        for step in &steps {
            self.run_step(ctx, step).await?;
        }
        Ok(())
    }

    async fn run_step(&self, ctx: &Context, step: &Step) -> Result<(), Diagnostic> {
        use crate::host::Exec;
        tracing::info!(host = %self.label, aspect = step.aspect, "{}: {}: applying", self.label, step.aspect);
        let out = self
            .exec
            .run(&step.script, &step.stdin, &ctx.cancel)
            .await
            .map_err(|source| {
                host_diagnostic(
                    &self.label,
                    &HostError::Exec {
                        what: format!("{}: running the step", step.aspect),
                        source,
                    },
                )
            })?;
        if out.status != Some(0) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let lines: Vec<&str> = stderr.lines().collect();
            let e = HostError::StepFailed {
                aspect: step.aspect,
                status: out.status,
                stderr: lines[lines.len().saturating_sub(12)..].join("\n"),
            };
            return Err(host_diagnostic(&self.label, &e));
        }
        tracing::info!(host = %self.label, aspect = step.aspect, "{}: {}", self.label, step.summary);
        Ok(())
    }
}

fn observed(managed: &HostSpec, f: &Facts) -> Observed {
    Observed {
        spec: host::observe(managed, f).spec,
        facts: FactsModel {
            os: Some(f.os.pretty_name.clone()),
            kernel: Some(f.kernel.clone()),
            arch: Some(f.arch.clone()),
            cpus: Some(i64::from(f.cpus)),
            memory_mb: i64::try_from(f.memory_mb).ok(),
            disk_gb: i64::try_from(f.disk_gb).ok(),
            machine_id: Some(f.machine_id.clone()),
        },
        hostname: f.hostname.clone(),
        timezone: f.localtime_zone.clone().unwrap_or_default(),
    }
}

/// The `ssh` object a plan can already tell: from the planned connection
/// and the provider's defaults; unknown while any part of it is.
pub fn planned_ssh_object(ctx: &Context, planned: &Value) -> Value {
    let conn = planned.attr("ssh_connection");
    let (host, port, host_key) = (conn.attr("host"), conn.attr("port"), conn.attr("host_key"));
    let user = match conn.attr("user") {
        Value::Null => Value::from(
            provider_state(ctx)
                .and_then(|p: Arc<ProviderState>| p.ssh_defaults.user.clone())
                .unwrap_or_else(|| "root".to_owned()),
        ),
        u => u.clone(),
    };
    let parts = [host, port, &user, host_key];
    if parts.iter().any(|v| !v.is_wholly_known() || v.is_null()) {
        return Value::unknown();
    }
    Value::Object(
        [
            ("host".to_owned(), host.clone()),
            ("port".to_owned(), port.clone()),
            ("user".to_owned(), user.clone()),
            ("host_key".to_owned(), host_key.clone()),
        ]
        .into_iter()
        .collect(),
    )
}

/// `user@host:port` (user and port optional; IPv6 in brackets).
pub fn parse_import_id(id: &str) -> Result<(Option<String>, String, i64), String> {
    let (user, rest) = match id.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_owned()), r),
        Some(_) => return Err(format!("{id:?} has an empty user before '@'")),
        None => (None, id),
    };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or_else(|| format!("{id:?}: unclosed '[' around an IPv6 address"))?;
        (h, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{id:?} has no host"));
    }
    let port = match port {
        None => crate::resources::connection::DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .map(i64::from)
            .ok_or_else(|| format!("{id:?}: port {p:?} is not a number between 1 and 65535"))?,
    };
    Ok((user, host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::parse_import_id;

    #[test]
    fn import_ids() {
        assert_eq!(
            parse_import_id("root@10.0.0.1:2222").unwrap(),
            (Some("root".into()), "10.0.0.1".into(), 2222)
        );
        assert_eq!(parse_import_id("10.0.0.1").unwrap(), (None, "10.0.0.1".into(), 22));
        assert_eq!(
            parse_import_id("ops@[2001:db8::1]:22").unwrap(),
            (Some("ops".into()), "2001:db8::1".into(), 22)
        );
        assert_eq!(
            parse_import_id("2001:db8::1").unwrap(),
            (None, "2001:db8::1".into(), 22)
        );
        assert!(parse_import_id("root@h:0").unwrap_err().contains("between 1 and 65535"));
        assert!(parse_import_id("root@h:x").is_err());
        assert!(parse_import_id("@h").is_err());
        assert!(parse_import_id("root@").is_err());
    }
}
