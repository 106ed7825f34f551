//! The SSH layer's logs, in a test binary of its own (it installs the
//! global subscriber): connects are logged at INFO and output lines at DEBUG
//! with the host, while stdin, uploaded contents and keys never are.

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sshd.rs"]
mod sshd;

use std::sync::Arc;
use std::time::Duration;

use sshd::{Sshd, ssh_keygen_fingerprint};
use terraform_provider_selfhost::sensitive::Sensitive;
use terraform_provider_selfhost::ssh::{ConnectSpec, Pool};
use tokio_util::sync::CancellationToken;

fn spec(sshd: &Sshd) -> ConnectSpec {
    let mut s = ConnectSpec::new(sshd.listen.clone(), "root");
    s.port = sshd.port;
    s.auth.private_key = Some(Sensitive::new(sshd.client.private.clone()));
    s.connect_timeout = Duration::from_secs(5);
    s.retry_for = Duration::from_secs(10);
    s
}

/// A `MakeWriter` collecting formatted events in memory.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_name_the_host_and_never_the_stdin_or_the_key() {
    if !sshd::available("logs_name_the_host_and_never_the_stdin_or_the_key") {
        return;
    }
    let sshd = Sshd::start();
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    // Global, in a test binary of its own: tracing caches per-callsite
    // interest across threads, so a scoped subscriber in a binary whose
    // other tests log concurrently may miss events.
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let s = spec(&sshd);
    {
        let cancel = CancellationToken::new();
        let conn = Pool::new().connect(&s, &cancel).await.expect("connect");
        conn.exec(
            "cat >/dev/null; echo first-line; echo second-line >&2",
            b"stdin-secret-42",
            &cancel,
        )
        .await
        .expect("exec");
        conn.upload(
            sshd.dir.path().join("f").to_str().expect("utf-8"),
            b"upload-secret-43",
            0o600,
            &cancel,
        )
        .await
        .expect("upload");
    }
    let text = String::from_utf8_lossy(&logs.0.lock().expect("log buffer")).into_owned();
    let target = format!("root@127.0.0.1:{}", sshd.port);
    let fp = ssh_keygen_fingerprint(&sshd.host_key.public);
    assert!(
        text.contains(&format!("connected to {target} (host key {fp})")),
        "{text}"
    );
    assert!(
        text.contains("first-line") && text.contains("second-line") && text.contains(&format!("host={target}")),
        "{text}"
    );
    assert!(
        !text.contains("stdin-secret-42") && !text.contains("upload-secret-43"),
        "{text}"
    );
    let key_body = sshd.client.private.lines().nth(1).expect("key body");
    assert!(!text.contains(key_body), "{text}");
}
