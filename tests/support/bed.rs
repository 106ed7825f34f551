//! The test bed's hosts as tests see them: through `testbed/testbed env`
//! variables only, reached with the system's OpenSSH client and the bed's
//! verified `known_hosts` (never with the provider's own SSH code, so a
//! check of what the provider did is independent of it).

#![allow(dead_code)] // each test file uses a different part of this module

use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

/// One test host.
#[derive(Clone, Debug)]
pub struct Host {
    pub addr: String,
    pub port: u16,
}

/// The bed's hosts and how to reach them.
#[derive(Clone, Debug)]
pub struct Bed {
    pub hosts: Vec<Host>,
    pub user: String,
    /// Private key file (OpenSSH format).
    pub key: String,
    pub known_hosts: String,
    /// The public key line matching `key`.
    pub public_key: String,
}

/// The variable's value, or `None` after a loud SKIP (a panic under CI).
pub fn bed_var(test: &str, name: &str) -> Option<String> {
    super::required::required_var(test, name, super::required::BED_HINT)
}

/// `addr:port` words (as `testbed env` prints them) as hosts.
pub fn parse_hosts(words: &str) -> Vec<Host> {
    words
        .split_whitespace()
        .map(|h| {
            let (addr, port) = h.rsplit_once(':').unwrap_or((h, "22"));
            Host {
                addr: addr.to_owned(),
                port: port.parse().unwrap_or(22),
            }
        })
        .collect()
}

/// The bed, or `None` after a loud SKIP (a panic under CI).
pub fn bed(test: &str) -> Option<Bed> {
    let hosts = bed_var(test, "SELFHOST_TEST_HOSTS")?;
    let key = bed_var(test, "SELFHOST_TEST_SSH_KEY")?;
    let user = bed_var(test, "SELFHOST_TEST_SSH_USER")?;
    let known_hosts = bed_var(test, "SELFHOST_TEST_KNOWN_HOSTS")?;
    let public_key = std::fs::read_to_string(format!("{key}.pub"))
        .unwrap_or_else(|e| panic!("{test}: cannot read {key}.pub: {e}"))
        .trim()
        .to_owned();
    let hosts = parse_hosts(&hosts);
    Some(Bed {
        hosts,
        user,
        key,
        known_hosts,
        public_key,
    })
}

/// Tests that change hosts take this lock: one scenario on the hosts at a
/// time within a test binary.
pub fn hosts_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `terraform` block requiring this provider (from the local mirror).
pub const REQUIRED_PROVIDERS: &str = r#"terraform {
  required_providers {
    selfhost = { source = "selfhost/selfhost" }
  }
}
"#;

impl Bed {
    /// [`REQUIRED_PROVIDERS`] and the provider block with the bed's user and
    /// key as the provider-level SSH default (never stored in state).
    pub fn provider_block(&self) -> String {
        format!(
            r#"{REQUIRED_PROVIDERS}
provider "selfhost" {{
  ssh {{
    user        = "{user}"
    private_key = file("{key}")
  }}
}}
"#,
            user = self.user,
            key = self.key
        )
    }

    /// `ssh` to `host` as the bed's user running `remote`, verifying the
    /// host key against the bed's `known_hosts`; stdin is piped.
    fn command(&self, host: &Host, remote: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(["-i", &self.key, "-p", &host.port.to_string()])
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .args(["-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes"])
            .args(["-o", &format!("UserKnownHostsFile={}", self.known_hosts)])
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .arg(format!("{}@{}", self.user, host.addr))
            .arg(remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Run `remote` on `host` with `input` on its stdin.
    fn run_with_input(&self, host: &Host, remote: &str, input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self.command(host, remote).spawn().expect("run ssh");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input);
        }
        child.wait_with_output().expect("wait for ssh")
    }

    /// Run `script` on `host` as the bed's user with `sh -s` (script on
    /// stdin), verifying the host key against the bed's `known_hosts`.
    pub fn ssh(&self, host: &Host, script: &str) -> Output {
        self.run_with_input(host, "sh -s", script.as_bytes())
    }

    /// Write `bytes` to `path` on `host` (through `cat` over SSH).
    pub fn copy_to(&self, host: &Host, bytes: &[u8], path: &str) {
        let out = self.run_with_input(host, &format!("cat > '{path}'"), bytes);
        assert!(
            out.status.success(),
            "copy to {}:{path} failed: {}",
            host.addr,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run `script` and return its stdout; panics (with both streams) on failure.
    pub fn sh(&self, host: &Host, script: &str) -> String {
        let out = self.ssh(host, script);
        assert!(
            out.status.success(),
            "ssh {} `{script}` failed ({}):\n{}{}",
            host.addr,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The SHA256 fingerprint of `host`'s ed25519 key as OpenSSH prints it.
    pub fn fingerprint(&self, host: &Host) -> String {
        let out = self.sh(host, "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
        out.split_whitespace().nth(1).unwrap_or_default().to_owned()
    }
}
