//! One node's SSH conversation: the pooled connection, scripts whose
//! failures become diagnostics naming the host and the attribute it came
//! from, uploads, and the probe.

use std::sync::Arc;

use super::model::Distro;
use crate::cluster::node::{Probe, parse_probe};
use crate::framework::resource::Context;
use crate::framework::{AttributePath, Diagnostic};
use crate::resources::connection::{ConnectionConfig, resolve_connection, ssh_diagnostic};
use crate::resources::state::ProviderState;
use crate::resources::vps_host::SshObject;
use crate::ssh::{Connection, ExecOutput, HostKeyPolicy, SshError};

/// Which part of the configuration a node came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    ControlPlane,
    /// Index in the configuration's `workers`.
    Worker(usize),
    /// A worker the configuration no longer lists (being removed).
    Removed,
}

impl Role {
    pub fn path(&self) -> AttributePath {
        match self {
            Role::ControlPlane => AttributePath::root("control_plane"),
            Role::Worker(i) => AttributePath::root("workers").index(*i as i64),
            Role::Removed => AttributePath::root("workers"),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Role::ControlPlane => "control-plane",
            Role::Worker(_) | Role::Removed => "worker",
        }
    }
}

pub fn error(summary: &str, detail: String, path: Option<AttributePath>) -> Diagnostic {
    Diagnostic::error(summary, detail, path)
}

/// Re-point a diagnostic at `attribute` (the setting a step serves, rather
/// than the node it ran on), for `map_err`.
pub fn at(attribute: &str) -> impl Fn(Diagnostic) -> Diagnostic + '_ {
    move |mut d| {
        d.attribute = Some(AttributePath::root(attribute));
        d
    }
}

/// The last lines of a command's output, for a diagnostic.
fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// An open conversation with one node.
pub struct NodeHandle {
    pub role: Role,
    /// `root@10.0.0.1:22`, for messages and logs.
    pub label: String,
    /// The address it was reached at (`ssh.host`).
    host: String,
    conn: Arc<Connection>,
}

impl NodeHandle {
    /// Connect (or reuse the pooled connection) with the host key in `ssh`
    /// pinned; the credentials come from the provider's `ssh {}` block.
    pub async fn connect(
        ctx: &Context,
        provider: &ProviderState,
        ssh: &SshObject,
        role: Role,
    ) -> Result<NodeHandle, Diagnostic> {
        let config = ConnectionConfig {
            host: ssh.host.clone(),
            port: Some(ssh.port),
            user: Some(ssh.user.clone()),
            private_key: None,
            private_key_wo: None,
            agent: None,
            host_key: Some(ssh.host_key.clone()),
            connect_timeout: None,
            bastion: None,
        };
        let pinned = HostKeyPolicy::Pinned(ssh.host_key.clone());
        let spec = resolve_connection(
            &config,
            &provider.ssh_defaults,
            &pinned,
            &HostKeyPolicy::FirstUse,
            false,
        )
        .map_err(|(_, m)| error("Invalid connection", format!("{m}."), Some(role.path())))?;
        let label = spec.target();
        let conn = provider
            .ssh_pool
            .connect(&spec, &ctx.cancel)
            .await
            .map_err(|e| ssh_error(&label, &role, &e))?;
        Ok(NodeHandle {
            role,
            label,
            host: ssh.host.clone(),
            conn,
        })
    }

    fn failed(&self, what: &str, out: &ExecOutput, show_stdout: bool) -> Diagnostic {
        let mut detail = format!("{}: {what} failed ({}).", self.label, out.describe_status());
        let err = tail(&out.stderr, 15);
        if !err.is_empty() {
            detail.push_str("\n\n");
            detail.push_str(&err);
        }
        if show_stdout {
            let o = tail(&out.stdout, 15);
            if !o.is_empty() {
                detail.push_str("\n\n");
                detail.push_str(&o);
            }
        }
        error(&format!("Cluster step failed: {what}"), detail, Some(self.role.path()))
    }

    /// Run `script` as root; its stdout when it exits 0.
    pub async fn run(&self, ctx: &Context, what: &str, script: &str, stdin: &[u8]) -> Result<String, Diagnostic> {
        let out = self
            .conn
            .run_script(script, stdin, &ctx.cancel)
            .await
            .map_err(|e| step_error(&self.label, &self.role, what, &e))?;
        if out.status != Some(0) {
            return Err(self.failed(what, &out, true));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// As [`NodeHandle::run`], for a script whose stdout is a secret: it is
    /// neither logged nor quoted in a diagnostic.
    pub async fn run_secret(&self, ctx: &Context, what: &str, script: &str) -> Result<String, Diagnostic> {
        let out = self
            .conn
            .run_script_secret_output(script, &ctx.cancel)
            .await
            .map_err(|e| step_error(&self.label, &self.role, what, &e))?;
        if out.status != Some(0) {
            return Err(self.failed(what, &out, false));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Write `contents` to `path` atomically with `mode`.
    pub async fn upload(&self, ctx: &Context, path: &str, contents: &[u8], mode: u32) -> Result<(), Diagnostic> {
        self.conn
            .upload(path, contents, mode, &ctx.cancel)
            .await
            .map_err(|e| step_error(&self.label, &self.role, &format!("writing {path}"), &e))
    }

    /// Copy the local file `local` to `path`.
    pub async fn upload_file(
        &self,
        ctx: &Context,
        local: &std::path::Path,
        path: &str,
        mode: u32,
    ) -> Result<(), Diagnostic> {
        self.conn
            .upload_file(local, path, mode, &ctx.cancel)
            .await
            .map_err(|e| step_error(&self.label, &self.role, &format!("writing {path}"), &e))
    }

    /// The address it was reached at.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// What the node runs now.
    pub async fn probe(&self, ctx: &Context, distro: Distro) -> Result<Probe, Diagnostic> {
        let script = super::distribution::of(distro).probe_script();
        let out = self.run(ctx, "reading the node's state", &script, b"").await?;
        let p = parse_probe(&out);
        if p.hostname.is_empty() {
            return Err(error(
                "Unreadable node state",
                format!(
                    "{}: the node's state could not be read (no host name in the probe's output).",
                    self.label
                ),
                Some(self.role.path()),
            ));
        }
        Ok(p)
    }
}

fn ssh_error(label: &str, role: &Role, e: &SshError) -> Diagnostic {
    ssh_diagnostic(label, &role.path(), e)
}

/// The diagnostic for an SSH failure on an open connection while `what`
/// (a step) ran: a stop (Ctrl-C, the time limit) or a lost connection
/// names the step, so the user knows where the apply got to; anything else
/// is [`ssh_diagnostic`]'s.
fn step_error(label: &str, role: &Role, what: &str, e: &SshError) -> Diagnostic {
    match e {
        SshError::Cancelled => error(
            "Cancelled",
            format!(
                "{label}: {what} was stopped by Ctrl-C or the operation's timeout; what was done so far is recorded in state. Run apply again to finish."
            ),
            None,
        ),
        SshError::Disconnected { .. } => lost_during(label, role, what, ""),
        SshError::Channel { .. } => lost_during(label, role, what, &format!(" ({})", crate::logging::error_chain(e))),
        _ => ssh_error(label, role, e),
    }
}

/// The connection went away in the middle of `what` (`why`: the channel's
/// own account, or empty).
fn lost_during(label: &str, role: &Role, what: &str, why: &str) -> Diagnostic {
    error(
        &format!("Lost the node during {what}"),
        format!(
            "{label}: the SSH connection was lost during {what}{why}. What was done so far is recorded in state; run apply again once the host is reachable: it picks up from this step."
        ),
        Some(role.path().attr("host")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_or_a_lost_connection_names_the_host_and_the_step() {
        let worker = Role::Worker(1);
        let lost = step_error(
            "root@10.0.0.3:22",
            &worker,
            "kubeadm join",
            &SshError::Disconnected {
                target: "root@10.0.0.3:22".into(),
            },
        );
        assert_eq!(lost.summary, "Lost the node during kubeadm join");
        assert!(
            lost.detail
                .starts_with("root@10.0.0.3:22: the SSH connection was lost during kubeadm join."),
            "{}",
            lost.detail
        );
        assert!(lost.detail.contains("run apply again"), "{}", lost.detail);
        assert_eq!(
            lost.attribute,
            Some(AttributePath::root("workers").index(1).attr("host"))
        );

        let stopped = step_error("root@10.0.0.3:22", &worker, "kubeadm join", &SshError::Cancelled);
        assert_eq!(stopped.summary, "Cancelled");
        assert!(
            stopped
                .detail
                .starts_with("root@10.0.0.3:22: kubeadm join was stopped by Ctrl-C"),
            "{}",
            stopped.detail
        );

        // Not a loss: the connection's own diagnostic (here: the credentials).
        let auth = step_error(
            "root@10.0.0.3:22",
            &worker,
            "kubeadm join",
            &SshError::NoCredentials {
                target: "root@10.0.0.3:22".into(),
            },
        );
        assert_eq!(auth.summary, "SSH authentication failed");
    }
}
