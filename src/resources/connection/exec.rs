//! The host layer runs its scripts through this: the SSH layer's pooled
//! connection as a `host::Exec`. (Neither layer knows the other; this
//! adapter is where they meet.)

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::host::{Exec, ExecError, ExecOutput};
use crate::ssh::{Connection, SshError};

/// A pooled SSH connection that runs host scripts.
pub struct SshExec(pub Arc<Connection>);

#[async_trait]
impl Exec for SshExec {
    async fn run(&self, script: &str, stdin: &[u8], cancel: &CancellationToken) -> Result<ExecOutput, ExecError> {
        match self.0.run_script(script, stdin, cancel).await {
            Ok(out) => Ok(ExecOutput {
                status: out.status.and_then(|s| i32::try_from(s).ok()),
                stdout: out.stdout,
                stderr: out.stderr,
            }),
            Err(SshError::Cancelled) => Err(ExecError::Cancelled),
            Err(e) => Err(ExecError::Transport {
                message: e.to_string(),
                source: Some(Box::new(e)),
            }),
        }
    }
}
