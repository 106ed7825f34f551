//! One authenticated SSH connection, shared by every caller through the
//! [`Pool`](super::Pool): commands run as channels multiplexed on it.

use std::sync::Arc;
use std::time::Duration;

use russh::client::{Handle, Msg};
use russh::keys::PublicKey;
use russh::{ChannelMsg, ChannelWriteHalf};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::error::SshError;
use super::handler::ClientHandler;
use super::spec::{ConnectSpec, fingerprint, openssh_line, same_key};
use crate::shell::quote;

/// OpenSSH's `MaxSessions` defaults to 10 channels per connection and refuses
/// the 11th; callers beyond this many wait for a free channel instead.
const MAX_SESSIONS: usize = 6;
/// How often a refused session open is retried (50 ms doubling to 1 s: ~4.5 s).
const SESSION_OPEN_RETRIES: u32 = 8;
/// Linux limits one argv string to 128 KiB (MAX_ARG_STRLEN); a script sent as
/// `sh -c '<script>'` must stay below it.
const MAX_SCRIPT_ARG: usize = 120 * 1024;
/// Longest output line logged whole; the rest of a longer one is counted.
const MAX_LOGGED_LINE: usize = 2000;
/// Standard input goes out in chunks of this size. russh's `data(AsyncRead)`
/// copies through tokio's 8 KiB buffer: one SSH packet, and for a file one
/// trip to the blocking pool, per 8 KiB. A chunk is read in one go and
/// sliced into packets of the channel's maximum size without a copy.
const STDIN_CHUNK: usize = 256 * 1024;

/// The result of one remote command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit status, when the command exited (rather than died of a signal).
    pub status: Option<u32>,
    /// The signal that killed the command (`TERM`, `KILL`, ...).
    pub signal: Option<String>,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// `exit status 3`, `signal KILL` or `no exit status`, for messages.
    pub fn describe_status(&self) -> String {
        match (&self.status, &self.signal) {
            (Some(s), _) => format!("exit status {s}"),
            (None, Some(sig)) => format!("signal {sig}"),
            (None, None) => "no exit status".to_owned(),
        }
    }
}

/// An authenticated connection. Cheap to share (`Arc`); every method may be
/// called concurrently.
pub struct Connection {
    target: String,
    host_port: String,
    user: String,
    handle: Handle<ClientHandler>,
    host_key: PublicKey,
    /// Kept alive for as long as this connection runs through it.
    bastion: Option<Arc<Connection>>,
    sessions: Semaphore,
}

impl Connection {
    pub(crate) fn new(
        spec: &ConnectSpec,
        handle: Handle<ClientHandler>,
        host_key: PublicKey,
        bastion: Option<Arc<Connection>>,
    ) -> Self {
        Connection {
            target: spec.target(),
            host_port: spec.host_port(),
            user: spec.user.clone(),
            handle,
            host_key,
            bastion,
            sessions: Semaphore::new(MAX_SESSIONS),
        }
    }

    /// `user@host:port` (plus the bastion chain), as messages name it.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The server's host key as an OpenSSH line (`ssh-ed25519 AAAA...`), for
    /// recording in state after a [`HostKeyPolicy::FirstUse`](super::HostKeyPolicy::FirstUse) connect.
    pub fn host_key(&self) -> String {
        openssh_line(&self.host_key)
    }

    /// The host key's `SHA256:...` fingerprint.
    pub fn host_key_fingerprint(&self) -> String {
        fingerprint(&self.host_key)
    }

    /// The jump host's key (an OpenSSH line), when connected through one.
    pub fn bastion_host_key(&self) -> Option<String> {
        self.bastion.as_ref().map(|b| b.host_key())
    }

    /// True once the connection (or the bastion's it runs through) is gone.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed() || self.bastion.as_ref().is_some_and(|b| b.is_closed())
    }

    /// Check this (pooled) connection against a caller's expectations: the
    /// same connection may have been opened under another policy.
    pub(crate) fn check(&self, spec: &ConnectSpec) -> Result<(), SshError> {
        if let Some(expected) = spec.expected_host_key()?
            && !same_key(&expected, &self.host_key)
        {
            return Err(SshError::HostKeyMismatch {
                host: self.host_port.clone(),
                expected: fingerprint(&expected),
                seen: fingerprint(&self.host_key),
            });
        }
        match (&spec.bastion, &self.bastion) {
            (Some(spec), Some(conn)) => conn.check(spec),
            _ => Ok(()),
        }
    }

    /// A direct-tcpip channel from this host to `host:port` (a jump).
    pub(crate) async fn open_direct_tcpip(&self, host: &str, port: u16) -> Result<russh::Channel<Msg>, russh::Error> {
        // The originator fields are informational; sshd only logs them.
        self.handle
            .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
            .await
    }

    /// Run `command` (a command line for the login user's shell), with
    /// `stdin` as its standard input, and collect its output. Output lines
    /// are logged at DEBUG with the host; `stdin` never is.
    ///
    /// # Errors
    /// [`SshError::Disconnected`] when the connection drops before the command
    /// finished, [`SshError::Cancelled`] when `cancel` fires (the channel is
    /// closed), [`SshError::Channel`] when the server refuses the session.
    /// A non-zero exit is not an error: see [`ExecOutput::status`].
    pub async fn exec(&self, command: &str, stdin: &[u8], cancel: &CancellationToken) -> Result<ExecOutput, SshError> {
        self.exec_streaming(command, stdin, cancel).await
    }

    /// As [`Connection::exec`], with standard input read from `stdin` as the
    /// channel's window allows: a file of any size goes through without
    /// being held in memory.
    ///
    /// # Errors
    /// As [`Connection::exec`].
    pub async fn exec_streaming<R>(
        &self,
        command: &str,
        stdin: R,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, SshError>
    where
        R: tokio::io::AsyncRead + Unpin + Send,
    {
        self.exec_logged(command, stdin, cancel, true).await
    }

    /// Run `script` as root like [`Connection::run_script`] without input
    /// data, but never log its standard output: for commands that print a
    /// secret (a kubeconfig, a join token). stderr is still logged.
    ///
    /// # Errors
    /// As [`Connection::exec`].
    pub async fn run_script_secret_output(
        &self,
        script: &str,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, SshError> {
        let sudo = if self.user == "root" { "" } else { "sudo -n -- " };
        let wrapped = format!("{{\n{script}\n}}\n");
        self.exec_logged(&format!("{sudo}sh -s"), wrapped.as_bytes(), cancel, false)
            .await
    }

    async fn exec_logged<R>(
        &self,
        command: &str,
        stdin: R,
        cancel: &CancellationToken,
        log_stdout: bool,
    ) -> Result<ExecOutput, SshError>
    where
        R: tokio::io::AsyncRead + Unpin + Send,
    {
        let _permit = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(SshError::Cancelled),
            p = self.sessions.acquire() => p.map_err(|_| self.disconnected())?,
        };
        let channel = self.open_session(cancel).await?;
        tracing::debug!(host = %self.target, command = %truncate(command), "exec");
        channel
            .exec(true, command)
            .await
            .map_err(|e| self.channel_err("starting the command", e))?;
        let (mut read, write) = channel.split();
        // stdin is written while output is read: a command that prints a lot
        // before reading its input would otherwise stall both sides.
        let feed = feed_stdin(&write, stdin);
        tokio::pin!(feed);
        let mut fed = false;
        let mut out = ExecOutput::default();
        let mut stdout_log = LineLog::new(&self.target, "stdout");
        let mut stderr_log = LineLog::new(&self.target, "stderr");
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    // Best effort: tell the server we are done with it.
                    let _ = tokio::time::timeout(Duration::from_secs(1), write.close()).await;
                    return Err(SshError::Cancelled);
                }
                r = &mut feed, if !fed => {
                    fed = true;
                    // A command may exit without reading its input; its exit
                    // status, not this write, says whether it worked.
                    if let Err(e) = r {
                        tracing::debug!(host = %self.target, error = %e, "stdin not fully written");
                    }
                }
                msg = read.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        if log_stdout {
                            stdout_log.push(&data);
                        }
                        out.stdout.extend_from_slice(&data);
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        stderr_log.push(&data);
                        out.stderr.extend_from_slice(&data);
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => out.status = Some(exit_status),
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => out.signal = Some(signal_text(&signal_name)),
                    Some(ChannelMsg::Close) => break,
                    Some(_) => {}
                    // The session task ended: the connection is gone. With
                    // an exit status already received the command did finish.
                    None if out.status.is_some() || out.signal.is_some() => break,
                    None => return Err(self.disconnected()),
                },
            }
        }
        stdout_log.finish();
        stderr_log.finish();
        tracing::debug!(host = %self.target, status = %out.describe_status(), "exec done");
        Ok(out)
    }

    /// A session channel. sshd refuses one above its `MaxSessions` until the
    /// sessions just closed are reaped (a few ms after their close reaches
    /// us, so the semaphore alone cannot rule it out), and a server may be
    /// configured below our limit: a refusal is retried for a few seconds.
    async fn open_session(&self, cancel: &CancellationToken) -> Result<russh::Channel<Msg>, SshError> {
        let mut pause = Duration::from_millis(50);
        let mut refusals = 0;
        loop {
            let opened = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(SshError::Cancelled),
                c = self.handle.channel_open_session() => c,
            };
            match opened {
                Ok(channel) => return Ok(channel),
                Err(russh::Error::ChannelOpenFailure(_)) if refusals < SESSION_OPEN_RETRIES => {
                    refusals += 1;
                    tracing::debug!(host = %self.target, retry_in = ?pause, "session refused by the server");
                    tokio::select! {
                        biased;
                        () = cancel.cancelled() => return Err(SshError::Cancelled),
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(self.channel_err("opening a session", e)),
            }
        }
    }

    /// Run `script` with `/bin/sh` as root (through `sudo -n` when the login
    /// user is not root), with `stdin` on the script's standard input.
    ///
    /// Without input data the script itself travels on stdin (`sh -s`), so it
    /// has no size limit and stays out of `ps`; it is wrapped in `{ ... }` so
    /// that the shell reads all of it before running any command, and nothing
    /// the script runs can swallow the rest of it. With input data the script
    /// is the quoted argument of `sh -c` (so at most 120 KiB) and `stdin` is
    /// the data. Secrets belong in `stdin`, never in `script`.
    ///
    /// # Errors
    /// As [`Connection::exec`]; [`SshError::Invalid`] for a script too long to
    /// pass as an argument alongside input data.
    pub async fn run_script(
        &self,
        script: &str,
        stdin: &[u8],
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, SshError> {
        let sudo = if self.user == "root" { "" } else { "sudo -n -- " };
        tracing::debug!(host = %self.target, script_bytes = script.len(), stdin_bytes = stdin.len(), "run script");
        if stdin.is_empty() {
            let wrapped = format!("{{\n{script}\n}}\n");
            self.exec(&format!("{sudo}sh -s"), wrapped.as_bytes(), cancel).await
        } else {
            self.run_script_streaming(script, stdin, cancel).await
        }
    }

    /// Run `script` as root (as [`Connection::run_script`] with input data:
    /// the script is the quoted argument of `sh -c`), its standard input
    /// streamed from `stdin`.
    ///
    /// # Errors
    /// As [`Connection::run_script`].
    pub async fn run_script_streaming<R>(
        &self,
        script: &str,
        stdin: R,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, SshError>
    where
        R: tokio::io::AsyncRead + Unpin + Send,
    {
        let sudo = if self.user == "root" { "" } else { "sudo -n -- " };
        let quoted = quote(script);
        if quoted.len() > MAX_SCRIPT_ARG {
            return Err(SshError::Invalid(format!(
                "a script with input data must be under {} KiB (this one is {} KiB); send large data separately with upload",
                MAX_SCRIPT_ARG / 1024,
                quoted.len() / 1024
            )));
        }
        self.exec_streaming(&format!("{sudo}sh -c {quoted}"), stdin, cancel)
            .await
    }

    /// Write `contents` to the absolute `path` atomically (a temporary file in
    /// the same directory, `chmod mode`, then `mv`), as root. The contents go
    /// over stdin, never on a command line.
    ///
    /// # Errors
    /// [`SshError::Invalid`] for a relative path or a mode above `0o7777`;
    /// [`SshError::Remote`] when the remote side fails (missing directory,
    /// full disk), with its stderr; otherwise as [`Connection::exec`].
    pub async fn upload(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
        cancel: &CancellationToken,
    ) -> Result<(), SshError> {
        check_upload_target(path, mode)?;
        let script = upload_script(path, mode, contents.len() as u64);
        let out = self.run_script_streaming(&script, contents, cancel).await?;
        self.upload_outcome(path, &out)
    }

    /// Copy the local file `local` to the absolute `path` on the host,
    /// streamed (a bundle of hundreds of MB is never held in memory), then
    /// atomically as [`Connection::upload`]. The host checks the byte count
    /// before the file takes its name, so a transfer cut short never leaves
    /// a truncated file at `path`.
    ///
    /// # Errors
    /// [`SshError::Local`] when `local` cannot be read; otherwise as
    /// [`Connection::upload`].
    pub async fn upload_file(
        &self,
        local: &std::path::Path,
        path: &str,
        mode: u32,
        cancel: &CancellationToken,
    ) -> Result<(), SshError> {
        check_upload_target(path, mode)?;
        let local_err = |source: std::io::Error| SshError::Local {
            path: local.display().to_string(),
            source,
        };
        let file = tokio::fs::File::open(local).await.map_err(local_err)?;
        let size = file.metadata().await.map_err(local_err)?.len();
        tracing::debug!(host = %self.target, local = %local.display(), path, size, "upload file");
        let script = upload_script(path, mode, size);
        let out = self.run_script_streaming(&script, file, cancel).await?;
        self.upload_outcome(path, &out)
    }

    fn upload_outcome(&self, path: &str, out: &ExecOutput) -> Result<(), SshError> {
        if out.success() {
            return Ok(());
        }
        Err(SshError::Remote {
            target: self.target.clone(),
            what: format!("uploading {path}"),
            status: out.describe_status(),
            stderr: stderr_excerpt(&out.stderr),
        })
    }

    fn disconnected(&self) -> SshError {
        SshError::Disconnected {
            target: self.target.clone(),
        }
    }

    fn channel_err(&self, what: &'static str, e: russh::Error) -> SshError {
        // A send error means the session task is gone, not a refusal.
        if matches!(e, russh::Error::SendError) || self.handle.is_closed() {
            return self.disconnected();
        }
        SshError::Channel {
            target: self.target.clone(),
            what,
            source: Box::new(e),
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target)
            .field("host_key", &self.host_key_fingerprint())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Logs a byte stream line by line at DEBUG, holding back a partial line
/// until its end arrives.
struct LineLog<'a> {
    host: &'a str,
    stream: &'static str,
    pending: Vec<u8>,
}

impl<'a> LineLog<'a> {
    fn new(host: &'a str, stream: &'static str) -> Self {
        LineLog {
            host,
            stream,
            pending: Vec::new(),
        }
    }

    fn push(&mut self, data: &[u8]) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        self.pending.extend_from_slice(data);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line[..end]);
        }
        // A stream without newlines must not grow this buffer without bound.
        if self.pending.len() > MAX_LOGGED_LINE {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }

    fn finish(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        tracing::debug!(host = %self.host, stream = self.stream, "{}", truncate(text));
    }
}

/// At most [`MAX_LOGGED_LINE`] bytes of `s`, cut at a char boundary.
fn truncate(s: &str) -> String {
    if s.len() <= MAX_LOGGED_LINE {
        return s.to_owned();
    }
    let mut end = MAX_LOGGED_LINE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes)", &s[..end], s.len() - end)
}

/// The tail of a command's stderr for an error message.
fn stderr_excerpt(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    let start = text.len().saturating_sub(500);
    let start = (start..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    text[start..].to_owned()
}

/// `TERM`, `KILL`, ... as OpenSSH names signals.
fn signal_text(sig: &russh::Sig) -> String {
    match sig {
        russh::Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

/// Send all of `stdin` on the channel, then EOF.
async fn feed_stdin<R>(write: &ChannelWriteHalf<Msg>, mut stdin: R) -> Result<(), russh::Error>
where
    R: tokio::io::AsyncRead + Unpin,
{
    loop {
        let mut chunk = Vec::with_capacity(STDIN_CHUNK);
        let mut at_end = false;
        while chunk.len() < STDIN_CHUNK {
            if stdin.read_buf(&mut chunk).await? == 0 {
                at_end = true;
                break;
            }
        }
        if !chunk.is_empty() {
            write.data_bytes(chunk).await?;
        }
        if at_end {
            return write.eof().await;
        }
    }
}

/// An upload's destination must be an absolute file path and `mode` a mode.
fn check_upload_target(path: &str, mode: u32) -> Result<(), SshError> {
    if !path.starts_with('/') || path.ends_with('/') || path.contains('\0') {
        return Err(SshError::Invalid(format!(
            "upload path {path:?} must be an absolute file path"
        )));
    }
    if mode > 0o7777 {
        return Err(SshError::Invalid(format!("upload mode {mode:o} is not a file mode")));
    }
    Ok(())
}

/// The host side of an upload: stdin into a temporary file beside `path`,
/// its size checked against `size` (a transfer cut short is refused), the
/// mode set, then renamed over `path`.
fn upload_script(path: &str, mode: u32, size: u64) -> String {
    format!(
        r#"set -eu
p={path}
tmp=$(mktemp "$(dirname -- "$p")/.selfhost-upload.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
# A cancelled transfer closes the channel: the shell may then die of
# SIGPIPE or SIGHUP, where an EXIT trap alone would not run.
trap 'rm -f -- "$tmp"; exit 1' HUP INT TERM PIPE
cat > "$tmp"
got=$(wc -c < "$tmp")
if [ "$got" -ne {size} ]; then echo "received $got of {size} bytes" >&2; exit 1; fi
chmod {mode:04o} -- "$tmp"
mv -f -- "$tmp" "$p"
trap - EXIT HUP INT TERM PIPE"#,
        path = quote(path),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_at_a_char_boundary() {
        let s = "é".repeat(MAX_LOGGED_LINE);
        let t = truncate(&s);
        assert!(
            t.ends_with(&format!("... ({} more bytes)", s.len() - MAX_LOGGED_LINE)),
            "{t}"
        );
        assert_eq!(truncate("short"), "short");
    }

    #[test]
    fn stderr_excerpt_keeps_the_tail() {
        let long = format!("{}END", "x".repeat(1000));
        assert!(stderr_excerpt(long.as_bytes()).ends_with("END"));
        assert_eq!(stderr_excerpt(b"  oops\n"), "oops");
    }
}
