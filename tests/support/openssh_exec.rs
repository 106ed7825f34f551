//! `host::Exec` over the system OpenSSH client, for tests against the bed's
//! real hosts until the provider's own SSH client lands. One master
//! connection per host (ControlMaster), so every script of a test runs over
//! the SAME TCP connection, as the provider's pooled connection would: a
//! test can show that this session survives an sshd reload or a firewall
//! apply. Host keys are checked against the bed's known_hosts, never learned.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;

use async_trait::async_trait;
use terraform_provider_selfhost::host::quote::quote;
use terraform_provider_selfhost::host::{Exec, ExecError, ExecOutput};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

/// The bed's connection settings (`testbed/testbed env`).
#[derive(Clone, Debug)]
pub struct Bed {
    pub hosts: Vec<String>,
    pub user: String,
    pub key: String,
    pub known_hosts: String,
}

impl Bed {
    /// The bed, or `None` after a loud SKIP (a panic under CI).
    pub fn from_env(test: &str) -> Option<Bed> {
        let var = |name: &str| super::required::required_var(test, name, super::required::BED_HINT);
        Some(Bed {
            hosts: var("SELFHOST_TEST_HOSTS")?
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            user: var("SELFHOST_TEST_SSH_USER")?,
            key: var("SELFHOST_TEST_SSH_KEY")?,
            known_hosts: var("SELFHOST_TEST_KNOWN_HOSTS")?,
        })
    }

    /// `tb-hostN`: the Nth of SELFHOST_TEST_HOSTS (the bed lists them in
    /// order, whatever its instance's subnet).
    pub fn host(&self, n: u8) -> String {
        self.hosts
            .get(usize::from(n).saturating_sub(1))
            .cloned()
            .unwrap_or_else(|| panic!("tb-host{n} is not in SELFHOST_TEST_HOSTS {:?}", self.hosts))
    }

    /// The address the bed's hosts see this machine at: the `.1` of their
    /// /24 (the bed's bridge).
    pub fn gateway(&self) -> String {
        let first = self.host(1);
        let addr = first.rsplit_once(':').map_or(first.as_str(), |(a, _)| a);
        match addr.rsplit_once('.') {
            Some((net, _)) => format!("{net}.1"),
            None => panic!("{addr} is not an IPv4 bed address"),
        }
    }
}

/// Scripts run as `user@addr` through one OpenSSH master connection.
pub struct OpenSsh {
    pub addr: String,
    pub port: String,
    pub user: String,
    pub key: String,
    pub known_hosts: String,
    pub control: PathBuf,
    _dir: tempfile::TempDir,
}

impl OpenSsh {
    pub fn new(bed: &Bed, host_port: &str, user: &str) -> OpenSsh {
        let (addr, port) = host_port.rsplit_once(':').unwrap_or((host_port, "22"));
        let dir = tempfile::tempdir().expect("temp dir");
        OpenSsh {
            addr: addr.into(),
            port: port.into(),
            user: user.into(),
            key: bed.key.clone(),
            known_hosts: bed.known_hosts.clone(),
            control: dir.path().join("master"),
            _dir: dir,
        }
    }

    /// ssh arguments; `shared` uses the master connection, else a fresh one.
    pub fn args(&self, shared: bool) -> Vec<String> {
        let mut a: Vec<String> = vec!["-i".into(), self.key.clone(), "-p".into(), self.port.clone()];
        for o in [
            "BatchMode=yes".to_string(),
            "StrictHostKeyChecking=yes".into(),
            format!("UserKnownHostsFile={}", self.known_hosts),
            "GlobalKnownHostsFile=/dev/null".into(),
            "ConnectTimeout=10".into(),
            "ServerAliveInterval=5".into(),
            "ServerAliveCountMax=6".into(),
        ] {
            a.push("-o".into());
            a.push(o);
        }
        if shared {
            a.extend([
                "-o".into(),
                "ControlMaster=auto".into(),
                "-o".into(),
                "ControlPersist=300".into(),
            ]);
            a.extend(["-o".into(), format!("ControlPath={}", self.control.display())]);
        } else {
            a.extend(["-o".into(), "ControlPath=none".into()]);
        }
        a.push(format!("{}@{}", self.user, self.addr));
        a
    }

    /// The master's process id as `ssh -O check` reports it.
    pub fn master_pid(&self) -> Option<String> {
        let out = std::process::Command::new("ssh")
            .args(self.args(true))
            .args(["-O", "check"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.split("pid=")
            .nth(1)
            .map(|p| p.trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned())
    }

    async fn run_ssh(
        &self,
        shared: bool,
        script: &str,
        stdin: &[u8],
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, ExecError> {
        // The script travels as ONE quoted word of the remote command line,
        // which keeps stdin free for `stdin`.
        let remote = if self.user == "root" {
            format!("sh -c {}", quote(script))
        } else {
            format!("sudo -n sh -c {}", quote(script))
        };
        let mut child = tokio::process::Command::new("ssh")
            .args(self.args(shared))
            .arg(remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ExecError::Transport {
                message: "spawning ssh".into(),
                source: Some(Box::new(e)),
            })?;
        let mut input = child.stdin.take().expect("piped stdin");
        let data = stdin.to_vec();
        let writer = tokio::spawn(async move {
            let _ = input.write_all(&data).await;
        });
        let out = tokio::select! {
            out = child.wait_with_output() => out,
            _ = cancel.cancelled() => return Err(ExecError::Cancelled),
        }
        .map_err(|e| ExecError::Transport {
            message: "waiting for ssh".into(),
            source: Some(Box::new(e)),
        })?;
        let _ = writer.await;
        if out.status.code() == Some(255) {
            return Err(ExecError::Transport {
                message: format!("ssh to {}: {}", self.addr, String::from_utf8_lossy(&out.stderr).trim()),
                source: None,
            });
        }
        Ok(ExecOutput {
            status: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Run over a FRESH connection (not the master): proves new sessions work.
    /// Retried (3 attempts, 1 s apart) only on connection failures, as the
    /// provider's pool retries while sshd re-executes after a reload.
    pub async fn run_fresh(&self, script: &str) -> Result<ExecOutput, ExecError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.run_ssh(false, script, b"", &CancellationToken::new()).await {
                Err(ExecError::Transport { message, .. }) if attempt < 3 => {
                    eprintln!("fresh ssh attempt {attempt} failed, retrying: {message}");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                other => return other,
            }
        }
    }

    /// Stop the master connection.
    pub fn close(&self) {
        let _ = std::process::Command::new("ssh")
            .args(self.args(true))
            .args(["-O", "exit"])
            .output();
    }
}

impl Drop for OpenSsh {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait]
impl Exec for OpenSsh {
    async fn run(&self, script: &str, stdin: &[u8], cancel: &CancellationToken) -> Result<ExecOutput, ExecError> {
        self.run_ssh(true, script, stdin, cancel).await
    }
}
