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
            .map_err(|e| ssh_error(&self.label, &self.role, &e))?;
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
            .map_err(|e| ssh_error(&self.label, &self.role, &e))?;
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
            .map_err(|e| ssh_error(&self.label, &self.role, &e))
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
            .map_err(|e| ssh_error(&self.label, &self.role, &e))
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
