//! A real OpenSSH `sshd` on loopback for tests: its own host keys, client
//! key, `authorized_keys` and log in a temporary directory, started in the
//! foreground (`-D`) on a free port, and killed (with every session process
//! it forked) when dropped. Needs root and `/usr/sbin/sshd` (`scripts/test`
//! installs `openssh-server`); without them tests SKIP loudly, or fail under CI.
//!
//! Shared by the SSH layer's tests and, later, the host resources' tests.

#![allow(dead_code)] // each test file uses a different part of this module

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// True when sshd can be run here; otherwise prints a SKIP banner (or panics
/// under CI, where every part must be present).
pub fn available(test: &str) -> bool {
    let missing = if !Path::new(SSHD).exists() {
        Some(format!(
            "{SSHD} is missing (apt-get install openssh-server; scripts/test does)"
        ))
    } else if !is_root() {
        Some("sshd must run as root to log users in".to_owned())
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) if std::env::var_os("CI").is_some() => panic!("{test}: {why}"),
        Some(why) => {
            eprintln!("\n*** SKIP {test}: {why} ***\n");
            false
        }
    }
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A key pair made by `ssh-keygen`.
pub struct KeyPair {
    pub private_path: PathBuf,
    /// The private key file's text.
    pub private: String,
    /// The OpenSSH public key line.
    pub public: String,
}

/// `ssh-keygen -t <kind> [-m PEM]` into `dir/name`.
pub fn keygen(dir: &Path, name: &str, kind: &str, pem: bool) -> KeyPair {
    let path = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", "", "-C", "", "-f"]).arg(&path);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    if pem {
        cmd.args(["-m", "PEM"]);
    }
    let out = cmd.output().expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    KeyPair {
        private: std::fs::read_to_string(&path).expect("read private key"),
        public: std::fs::read_to_string(path.with_extension("pub"))
            .expect("read public key")
            .trim()
            .to_owned(),
        private_path: path,
    }
}

/// `ssh-keygen -lf` on a public key line: `SHA256:...` as OpenSSH prints it.
pub fn ssh_keygen_fingerprint(public_line: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("k.pub");
    std::fs::write(&path, format!("{public_line}\n")).expect("write key");
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&path)
        .output()
        .expect("run ssh-keygen -lf");
    assert!(
        out.status.success(),
        "ssh-keygen -lf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_owned()
}

/// How to start an sshd.
#[derive(Clone)]
pub struct Options {
    /// The address to listen on (any of 127.0.0.0/8).
    pub listen: String,
    /// More `sshd_config` lines.
    pub extra_config: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: "127.0.0.1".to_owned(),
            extra_config: Vec::new(),
        }
    }
}

/// A running sshd.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub listen: String,
    pub port: u16,
    /// The ed25519 host key (the one clients negotiate first).
    pub host_key: KeyPair,
    /// A second host key (ecdsa), served as well.
    pub host_key_ecdsa: KeyPair,
    /// A client key listed in `authorized_keys`.
    pub client: KeyPair,
    pub log: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Sshd {
        let dir = tempfile::Builder::new().prefix("sshd-").tempdir().expect("temp dir");
        // Other users (the sudo test's) read authorized_keys through it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
        let host_key = keygen(dir.path(), "host_ed25519", "ed25519", false);
        let host_key_ecdsa = keygen(dir.path(), "host_ecdsa", "ecdsa", false);
        let client = keygen(dir.path(), "id_ed25519", "ed25519", false);
        let authorized = dir.path().join("authorized_keys");
        std::fs::write(&authorized, format!("{}\n", client.public)).expect("write authorized_keys");
        std::fs::set_permissions(&authorized, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let port = free_port(&opts.listen);
        let config = dir.path().join("sshd_config");
        // `SetEnv SHLVL=1`: bash sources ~/.bashrc when started by sshd
        // only at shell level 1, and this machine's root .bashrc may do slow
        // or locking work (`pyenv rehash`: killing a session mid-way, as the
        // disconnect tests do, leaves its lock behind and stalls every later
        // login). Commands run by the tests need none of it.
        let mut text = format!(
            "Port {port}\nListenAddress {listen}\nHostKey {hk}\nHostKey {hk2}\nPidFile none\n\
             AuthorizedKeysFile {authorized}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
             LogLevel VERBOSE\nAllowTcpForwarding yes\nMaxStartups 100\nSetEnv SHLVL=1\n",
            listen = opts.listen,
            hk = host_key.private_path.display(),
            hk2 = host_key_ecdsa.private_path.display(),
            authorized = authorized.display(),
        );
        for line in &opts.extra_config {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(&config, text).expect("write sshd_config");
        // sshd refuses to start without its privilege separation directory,
        // which the package's service unit normally creates.
        let _ = std::fs::create_dir_all("/run/sshd");
        let log = dir.path().join("sshd.log");
        let mut sshd = Sshd {
            listen: opts.listen,
            port,
            host_key,
            host_key_ecdsa,
            client,
            log,
            config,
            child: None,
            dir,
        };
        sshd.spawn();
        sshd
    }

    fn spawn(&mut self) {
        let before = self.log_text().matches("Server listening on").count();
        let child = Command::new(SSHD)
            .args(["-D", "-f"])
            .arg(&self.config)
            .arg("-E")
            .arg(&self.log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.log_text().matches("Server listening on").count() == before {
            if let Some(Some(status)) = self.child.as_mut().map(|c| c.try_wait().ok().flatten()) {
                panic!("sshd exited with {status}:\n{}", self.log_text());
            }
            assert!(Instant::now() < deadline, "sshd did not start:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `host:port` to connect to.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.listen, self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many logins the server accepted (its own log, not our counters).
    pub fn accepted_logins(&self) -> usize {
        self.log_text().matches("Accepted publickey for ").count()
    }

    /// How many TCP connections the server saw (`Connection from ...`, VERBOSE).
    pub fn connections(&self) -> usize {
        self.log_text().matches("Connection from ").count()
    }

    /// Append a key line to `authorized_keys`.
    pub fn authorize(&self, public_line: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .expect("open authorized_keys");
        writeln!(f, "{public_line}").expect("append authorized_keys");
    }

    /// The listener and every session process it forked.
    pub fn pids(&self) -> Vec<u32> {
        match &self.child {
            Some(c) => {
                let mut all = vec![c.id()];
                all.extend(descendants(c.id()));
                all
            }
            None => Vec::new(),
        }
    }

    /// Send `signal` (e.g. "STOP", "KILL") to the listener and its sessions.
    pub fn signal_all(&self, signal: &str) {
        for pid in self.pids() {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Kill the listener and every session (as if the host died), and reap it.
    pub fn kill(&mut self) {
        let pids = self.pids();
        for pid in &pids {
            let _ = Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// Start again on the same port with the same keys (the host came back).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on right now.
pub fn free_port(addr: &str) -> u16 {
    std::net::TcpListener::bind((addr, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

/// Every process whose ancestry leads to `pid`, from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may contain spaces and parens.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok());
            if let Some(ppid) = ppid {
                parents.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for &(child, ppid) in &parents {
            if ppid == parent && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// The socket inodes a process holds open.
pub fn socket_inodes(pid: u32) -> Vec<u64> {
    let mut out = Vec::new();
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && let Some(inode) = target
                    .to_str()
                    .and_then(|t| t.strip_prefix("socket:["))
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse().ok())
            {
                out.push(inode);
            }
        }
    }
    out
}

/// The inode of the IPv4 TCP socket whose local end is 127.0.0.1:`port`.
pub fn tcp_inode_for_local_port(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let want = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&want.as_str())).then(|| f.get(9).and_then(|i| i.parse().ok()))?
    })
}

/// A throwaway ssh-agent (`ssh-agent -D -a <socket>`), killed on drop.
pub struct Agent {
    pub socket: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Agent {
    pub fn start() -> Agent {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "ssh-agent did not create its socket");
            std::thread::sleep(Duration::from_millis(10));
        }
        Agent {
            socket,
            child,
            _dir: dir,
        }
    }

    /// `ssh-add` a private key file.
    pub fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .output()
            .expect("run ssh-add");
        assert!(
            out.status.success(),
            "ssh-add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
