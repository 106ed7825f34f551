//! What to connect to and how to trust it: [`ConnectSpec`], [`Auth`] and
//! [`HostKeyPolicy`], plus the parsing of keys given as text (validated before
//! any network traffic, so a malformed key fails at once and is not retried).

use std::time::Duration;

use russh::keys::{HashAlg, PrivateKey, PublicKey};

use super::error::SshError;
use crate::sensitive::Sensitive;

/// How long one TCP connect plus SSH handshake may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to keep retrying by default while a machine boots.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(120);

/// One SSH destination with its credentials and host-key expectation.
/// `Debug` is safe to log: the private key is [`Sensitive`].
#[derive(Clone, Debug)]
pub struct ConnectSpec {
    /// Host name or IP address.
    pub host: String,
    /// TCP port (22 by default).
    pub port: u16,
    /// Login user; anything but `root` runs scripts through `sudo -n`.
    pub user: String,
    /// Credentials to offer.
    pub auth: Auth,
    /// Which host key to accept.
    pub host_key: HostKeyPolicy,
    /// Jump host to tunnel through (direct-tcpip), with its own spec and policy.
    pub bastion: Option<Box<ConnectSpec>>,
    /// Limit for one attempt (TCP connect + handshake + authentication).
    pub connect_timeout: Duration,
    /// Total time to keep retrying transient failures (refused, unreachable).
    pub retry_for: Duration,
}

/// Credentials offered, in this order: the private key, then every key of the agent.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// A private key in OpenSSH (`-----BEGIN OPENSSH PRIVATE KEY-----`) or PEM
    /// (PKCS#1/PKCS#8/SEC1) form, without a passphrase.
    pub private_key: Option<Sensitive<String>>,
    /// Also offer the keys of the agent at `SSH_AUTH_SOCK`.
    pub agent: bool,
    /// The agent's socket when not `SSH_AUTH_SOCK` (tests, or a provider
    /// setting); `None` reads the environment.
    pub agent_socket: Option<std::path::PathBuf>,
}

/// Which host key the server must present. There is deliberately no
/// "accept anything": an unknown key is only accepted on first use, and then
/// it is recorded and enforced from then on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// The user's `host_key` attribute: an OpenSSH public key line.
    Pinned(String),
    /// The key recorded in state on first contact: an OpenSSH public key line.
    Recorded(String),
    /// No key known yet: accept the one presented; read it back with
    /// [`Connection::host_key`](super::Connection::host_key) and record it.
    FirstUse,
}

impl ConnectSpec {
    /// A spec for `user@host:22` with no credentials, [`HostKeyPolicy::FirstUse`]
    /// and the default timeouts.
    pub fn new(host: impl Into<String>, user: impl Into<String>) -> Self {
        ConnectSpec {
            host: host.into(),
            port: 22,
            user: user.into(),
            auth: Auth::default(),
            host_key: HostKeyPolicy::FirstUse,
            bastion: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry_for: DEFAULT_RETRY_FOR,
        }
    }

    /// `user@host:port`, plus ` via user@bastion:port` for each jump host:
    /// how messages and logs name this destination.
    pub fn target(&self) -> String {
        let mut s = format!("{}@{}", self.user, self.host_port());
        if let Some(b) = &self.bastion {
            s.push_str(" via ");
            s.push_str(&b.target());
        }
        s
    }

    /// `host:port` (IPv6 literals in brackets).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The expected host key, parsed; `None` for first use.
    pub(crate) fn expected_host_key(&self) -> Result<Option<PublicKey>, SshError> {
        match &self.host_key {
            HostKeyPolicy::FirstUse => Ok(None),
            HostKeyPolicy::Pinned(line) | HostKeyPolicy::Recorded(line) => {
                parse_public_key(line)
                    .map(Some)
                    .map_err(|problem| SshError::HostKeyFormat {
                        host: self.host_port(),
                        problem,
                    })
            }
        }
    }
}

/// Parse an OpenSSH public key line (`ssh-ed25519 AAAA... [comment]`).
/// The error names the problem, not the input.
pub fn parse_public_key(line: &str) -> Result<PublicKey, String> {
    let line = line.trim();
    if line.is_empty() {
        return Err("it is empty".to_owned());
    }
    if line.contains("PRIVATE KEY") {
        return Err("this is a private key; give the public key line".to_owned());
    }
    PublicKey::from_openssh(line).map_err(|e| format!("it does not decode ({e})"))
}

/// Decode a private key given as text. Messages name the format problem and
/// never echo the key.
pub fn parse_private_key(text: &str) -> Result<PrivateKey, SshError> {
    let problem = |p: &str| SshError::KeyFormat {
        problem: p.to_owned(),
        source: None,
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(problem("it is empty"));
    }
    let first = trimmed.lines().next().unwrap_or_default().trim();
    if !first.starts_with("-----BEGIN ") {
        if first.starts_with("ssh-") || first.starts_with("ecdsa-") {
            return Err(problem(
                "this is a public key line; give the private key (`-----BEGIN OPENSSH PRIVATE KEY-----`)",
            ));
        }
        return Err(problem(
            "not an OpenSSH or PEM private key: expected a first line like `-----BEGIN OPENSSH PRIVATE KEY-----`",
        ));
    }
    if trimmed.contains("ENCRYPTED") || trimmed.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(problem(
            "the key is protected by a passphrase, which is not supported; use an unencrypted key or the SSH agent",
        ));
    }
    match russh::keys::decode_secret_key(trimmed, None) {
        Ok(key) => Ok(key),
        // An OpenSSH-format key with a passphrase only says so inside the
        // base64 body, so the check above cannot see it.
        Err(russh::keys::Error::KeyIsEncrypted) => Err(problem(
            "the key is protected by a passphrase, which is not supported; use an unencrypted key or the SSH agent",
        )),
        Err(e) => Err(SshError::KeyFormat {
            problem: format!("the {} key does not decode", format_name(first)),
            source: Some(Box::new(e)),
        }),
    }
}

/// The PEM label's format, for messages: `OpenSSH`, `PKCS#1 RSA`, ...
fn format_name(begin_line: &str) -> &'static str {
    if begin_line.contains("OPENSSH") {
        "OpenSSH"
    } else if begin_line.contains("RSA") {
        "PEM (PKCS#1 RSA)"
    } else if begin_line.contains("EC ") {
        "PEM (SEC1 EC)"
    } else if begin_line.contains("BEGIN PRIVATE KEY") {
        "PEM (PKCS#8)"
    } else {
        "PEM"
    }
}

/// `SHA256:...`, as `ssh-keygen -lf` and OpenSSH's messages print it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Same key material (comments and line formatting ignored).
pub(crate) fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

/// The OpenSSH line for a key, without comment: `ssh-ed25519 AAAA...`.
pub(crate) fn openssh_line(key: &PublicKey) -> String {
    let mut k = key.clone();
    k.set_comment("");
    // Encoding a decoded key cannot fail; fall back to the fingerprint
    // rather than panic if it ever did.
    k.to_openssh().unwrap_or_else(|_| fingerprint(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519_PUB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ user@host";

    #[test]
    fn public_key_lines_compare_by_key_not_text() {
        let a = parse_public_key(ED25519_PUB).expect("valid");
        let b =
            parse_public_key("  ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ\n")
                .expect("valid");
        assert!(same_key(&a, &b));
        assert_eq!(
            openssh_line(&a),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ"
        );
        assert!(fingerprint(&a).starts_with("SHA256:"));
    }

    #[test]
    fn bad_host_key_lines_say_why() {
        assert_eq!(parse_public_key(" ").unwrap_err(), "it is empty");
        assert!(
            parse_public_key("ssh-ed25519 AAAA!!")
                .unwrap_err()
                .contains("does not decode")
        );
        let spec = ConnectSpec {
            host_key: HostKeyPolicy::Pinned("nonsense".into()),
            ..ConnectSpec::new("h", "root")
        };
        let err = spec.expected_host_key().unwrap_err().to_string();
        assert!(
            err.starts_with("host key for h:22 is not an OpenSSH public key line"),
            "{err}"
        );
    }

    #[test]
    fn private_key_problems_are_named_without_echoing_the_key() {
        let secret =
            "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END OPENSSH PRIVATE KEY-----\n";
        let err = parse_private_key(secret).unwrap_err();
        let msg = format!("{err} {:?}", std::error::Error::source(&err).map(|s| s.to_string()));
        assert!(msg.contains("the OpenSSH key does not decode"), "{msg}");
        assert!(!msg.contains("c2VjcmV0"), "{msg}");
        assert!(
            parse_private_key(ED25519_PUB)
                .unwrap_err()
                .to_string()
                .contains("public key line")
        );
        assert!(
            parse_private_key("hello")
                .unwrap_err()
                .to_string()
                .contains("not an OpenSSH or PEM")
        );
        let enc = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----";
        assert!(parse_private_key(enc).unwrap_err().to_string().contains("passphrase"));
    }

    #[test]
    fn targets_name_the_whole_chain() {
        let spec = ConnectSpec {
            port: 2222,
            bastion: Some(Box::new(ConnectSpec::new("jump", "ops"))),
            ..ConnectSpec::new("10.0.0.5", "root")
        };
        assert_eq!(spec.target(), "root@10.0.0.5:2222 via ops@jump:22");
        assert_eq!(ConnectSpec::new("::1", "root").host_port(), "[::1]:22");
    }
}
