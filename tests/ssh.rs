//! The SSH layer against real OpenSSH servers started on loopback by the
//! test (tests/support/sshd.rs), and against the test bed's tb-host3 when
//! the bed is up. No mocks: every count below is read from sshd's own log.

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sshd.rs"]
mod sshd;

use std::error::Error as _;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sshd::{Agent, Options, Sshd, keygen, ssh_keygen_fingerprint};
use terraform_provider_selfhost::sensitive::Sensitive;
use terraform_provider_selfhost::ssh::{ConnectSpec, HostKeyPolicy, Pool, SshError};
use tokio_util::sync::CancellationToken;

/// Root with a private key, first use, short timeouts.
fn spec(sshd: &Sshd) -> ConnectSpec {
    let mut s = ConnectSpec::new(sshd.listen.clone(), "root");
    s.port = sshd.port;
    s.auth.private_key = Some(Sensitive::new(sshd.client.private.clone()));
    s.connect_timeout = Duration::from_secs(5);
    s.retry_for = Duration::from_secs(10);
    s
}

/// The whole cause chain, for assertions on messages.
fn chain(e: &SshError) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_returns_status_both_streams_and_reads_stdin() {
    if !sshd::available("exec_returns_status_both_streams_and_reads_stdin") {
        return;
    }
    let sshd = Sshd::start();
    let cancel = CancellationToken::new();
    let conn = Pool::new().connect(&spec(&sshd), &cancel).await.expect("connect");

    // The login shell did not read the user's rc files (see support/sshd.rs).
    let out = conn.exec("echo $SHLVL", b"", &cancel).await.expect("exec");
    assert_eq!(text(&out.stdout), "2\n");

    let out = conn
        .exec("echo out; echo err >&2; exit 3", b"", &cancel)
        .await
        .expect("exec");
    assert_eq!(
        (out.status, text(&out.stdout), text(&out.stderr)),
        (Some(3), "out\n".into(), "err\n".into())
    );
    assert!(!out.success());

    let out = conn.exec("cat; printf done", b"hello\n", &cancel).await.expect("exec");
    assert_eq!(text(&out.stdout), "hello\ndone");
    assert!(out.success());

    let out = conn.exec("kill -TERM $$", b"", &cancel).await.expect("exec");
    assert_eq!((out.status, out.signal.as_deref()), (None, Some("TERM")));

    // Large stdin and large output at once: neither side may stall.
    let big: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let out = conn.exec("cat", &big, &cancel).await.expect("exec");
    assert!(out.stdout == big, "echoed {} of {} bytes", out.stdout.len(), big.len());

    // run_script: the script on stdin (`sh -s`) without data, `sh -c` with data.
    let out = conn
        .run_script("x=$(cat); echo \"[$x]\"; id -u", b"", &cancel)
        .await
        .expect("script");
    assert_eq!(
        text(&out.stdout),
        "[]\n0\n",
        "commands in the script must not read the script"
    );
    let out = conn
        .run_script(
            "read -r line; echo \"got $line\"; echo 'it'\\''s'",
            b"data 1\n",
            &cancel,
        )
        .await
        .expect("script");
    assert_eq!(text(&out.stdout), "got data 1\nit's\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_is_atomic_with_contents_and_mode() {
    if !sshd::available("upload_is_atomic_with_contents_and_mode") {
        return;
    }
    let sshd = Sshd::start();
    let cancel = CancellationToken::new();
    let conn = Pool::new().connect(&spec(&sshd), &cancel).await.expect("connect");
    let dest = sshd.dir.path().join("uploaded.bin");
    let dest_s = dest.to_str().expect("utf-8").to_owned();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();

    conn.upload(&dest_s, &bytes, 0o640, &cancel).await.expect("upload");
    assert_eq!(std::fs::read(&dest).expect("read"), bytes);
    assert_eq!(
        std::fs::metadata(&dest).expect("stat").permissions().mode() & 0o7777,
        0o640
    );

    // Replacing keeps no temporary file behind, and an empty file works.
    conn.upload(&dest_s, b"", 0o600, &cancel).await.expect("upload empty");
    assert_eq!(std::fs::read(&dest).expect("read"), b"");
    assert_eq!(
        std::fs::metadata(&dest).expect("stat").permissions().mode() & 0o7777,
        0o600
    );
    let leftovers: Vec<_> = std::fs::read_dir(sshd.dir.path())
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("selfhost-upload"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let odd = sshd.dir.path().join("it's a $(name)");
    conn.upload(odd.to_str().expect("utf-8"), b"x", 0o644, &cancel)
        .await
        .expect("upload to a path that needs quoting");
    assert_eq!(std::fs::read(&odd).expect("read"), b"x");

    let err = conn
        .upload(
            &format!("{}/missing/dir/f", sshd.dir.path().display()),
            b"x",
            0o644,
            &cancel,
        )
        .await
        .expect_err("missing directory");
    assert!(matches!(err, SshError::Remote { .. }), "{err:?}");
    assert!(err.to_string().contains("mktemp"), "{err}");
    let err = conn
        .upload("relative/path", b"x", 0o644, &cancel)
        .await
        .expect_err("relative");
    assert!(matches!(err, SshError::Invalid(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_file_streams_a_large_file_and_a_cut_transfer_leaves_nothing() {
    if !sshd::available("upload_file_streams_a_large_file_and_a_cut_transfer_leaves_nothing") {
        return;
    }
    let sshd = Sshd::start();
    let cancel = CancellationToken::new();
    let conn = Pool::new().connect(&spec(&sshd), &cancel).await.expect("connect");
    let local_dir = tempfile::tempdir().expect("temp dir");
    let local = local_dir.path().join("big.bin");
    // 48 MiB that is not one repeated block, so a reordered or dropped
    // chunk changes the content.
    let mut bytes = Vec::with_capacity(48 << 20);
    let mut x: u32 = 0x9e37_79b9;
    while bytes.len() < 48 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(&local, &bytes).expect("write local file");
    let dest = sshd.dir.path().join("big.bin");
    let dest_s = dest.to_str().expect("utf-8").to_owned();
    conn.upload_file(&local, &dest_s, 0o600, &cancel)
        .await
        .expect("upload_file");
    assert!(
        std::fs::read(&dest).expect("read") == bytes,
        "the uploaded file differs"
    );
    assert_eq!(
        std::fs::metadata(&dest).expect("stat").permissions().mode() & 0o7777,
        0o600
    );

    // Cut short by cancellation: the destination never appears and the
    // temporary file goes away (the host refuses a short file).
    let cut = sshd.dir.path().join("cut.bin");
    let cut_s = cut.to_str().expect("utf-8").to_owned();
    let stop = CancellationToken::new();
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            stop.cancel();
        })
    };
    let err = conn
        .upload_file(&local, &cut_s, 0o600, &stop)
        .await
        .expect_err("cancelled");
    stopper.await.expect("stopper");
    assert!(matches!(err, SshError::Cancelled), "{err:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leftovers: Vec<_> = std::fs::read_dir(sshd.dir.path())
            .expect("ls")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("selfhost-upload"))
            .collect();
        if leftovers.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "temporary files left: {leftovers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!cut.exists(), "a cut transfer must not leave the destination");
    // The connection is still good for the next upload.
    conn.upload_file(&local, &cut_s, 0o644, &cancel)
        .await
        .expect("upload after a cut one");
    assert_eq!(std::fs::metadata(&cut).expect("stat").len(), bytes.len() as u64);

    let err = conn
        .upload_file(&local_dir.path().join("missing"), &cut_s, 0o644, &cancel)
        .await
        .expect_err("missing local file");
    assert!(matches!(err, SshError::Local { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_keys_first_use_recorded_pinned_and_mismatch() {
    if !sshd::available("host_keys_first_use_recorded_pinned_and_mismatch") {
        return;
    }
    let sshd = Sshd::start();
    let cancel = CancellationToken::new();

    // First use: the key seen is exposed, and is the server's ed25519 key.
    let conn = Pool::new().connect(&spec(&sshd), &cancel).await.expect("first use");
    let recorded = conn.host_key();
    assert_eq!(recorded, sshd.host_key.public, "recorded key");
    assert_eq!(
        conn.host_key_fingerprint(),
        ssh_keygen_fingerprint(&sshd.host_key.public)
    );

    // A new process (fresh pool) with the recorded key connects.
    let mut again = spec(&sshd);
    again.host_key = HostKeyPolicy::Recorded(format!("{recorded} with a comment"));
    Pool::new()
        .connect(&again, &cancel)
        .await
        .expect("recorded key accepted");

    // Pinning the server's other (ecdsa) key works too: that algorithm is
    // negotiated first, so the server presents that key.
    let mut ecdsa = spec(&sshd);
    ecdsa.host_key = HostKeyPolicy::Pinned(sshd.host_key_ecdsa.public.clone());
    let conn = Pool::new()
        .connect(&ecdsa, &cancel)
        .await
        .expect("pinned ecdsa accepted");
    assert_eq!(conn.host_key(), sshd.host_key_ecdsa.public);

    // The host was "reinstalled": another server on another port with new keys.
    let other = Sshd::start();
    let mut recorded_spec = spec(&other);
    recorded_spec.host_key = HostKeyPolicy::Recorded(recorded.clone());
    let err = Pool::new()
        .connect(&recorded_spec, &cancel)
        .await
        .expect_err("mismatch");
    assert_eq!(
        other.connections(),
        1,
        "a mismatch is not retried; server log:\n{}",
        other.log_text()
    );
    let expected_fp = ssh_keygen_fingerprint(&recorded);
    let seen_fp = ssh_keygen_fingerprint(&other.host_key.public);
    match &err {
        SshError::HostKeyMismatch { host, expected, seen } => {
            assert_eq!(host, &format!("127.0.0.1:{}", other.port));
            assert_eq!((expected, seen), (&expected_fp, &seen_fp));
        }
        e => panic!("expected HostKeyMismatch, got {e:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&expected_fp) && msg.contains(&seen_fp), "{msg}");
    assert!(msg.contains("update `host_key`"), "{msg}");
    assert_eq!(other.accepted_logins(), 0, "no credentials were sent to the impostor");

    // Pinned works the same way.
    let mut pinned = spec(&other);
    pinned.host_key = HostKeyPolicy::Pinned(recorded.clone());
    let err = Pool::new()
        .connect(&pinned, &cancel)
        .await
        .expect_err("pinned mismatch");
    assert!(matches!(err, SshError::HostKeyMismatch { .. }), "{err:?}");

    // A pooled connection opened on first use is still checked when a
    // caller with a different expectation reuses it (no new dial).
    let pool = Pool::new();
    pool.connect(&spec(&other), &cancel).await.expect("first use");
    let logins = other.accepted_logins();
    let err = pool.connect(&pinned, &cancel).await.expect_err("reuse under a pin");
    assert!(matches!(err, SshError::HostKeyMismatch { .. }), "{err:?}");
    assert_eq!(other.accepted_logins(), logins);

    // A pin that is not a key line fails before any traffic.
    let mut bad = spec(&other);
    bad.host_key = HostKeyPolicy::Pinned("ssh-ed25519 not-base64!".into());
    let err = Pool::new().connect(&bad, &cancel).await.expect_err("bad pin");
    assert!(matches!(err, SshError::HostKeyFormat { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_openssh_and_pem_forms_and_the_agent_authenticate() {
    if !sshd::available("keys_in_openssh_and_pem_forms_and_the_agent_authenticate") {
        return;
    }
    let sshd = Sshd::start();
    let cancel = CancellationToken::new();
    let keys = tempfile::tempdir().expect("temp dir");
    // RSA keys prove the rsa-sha2 choice: OpenSSH 8.8+ refuses ssh-rsa (SHA-1).
    for (name, kind, pem) in [
        ("rsa_pem", "rsa", true),
        ("rsa_openssh", "rsa", false),
        ("ecdsa_pem", "ecdsa", true),
        ("ed25519", "ed25519", false),
    ] {
        let key = keygen(keys.path(), name, kind, pem);
        sshd.authorize(&key.public);
        let mut s = spec(&sshd);
        s.auth.private_key = Some(Sensitive::new(key.private.clone()));
        let conn = Pool::new()
            .connect(&s, &cancel)
            .await
            .unwrap_or_else(|e| panic!("{name}: {}", chain(&e)));
        let out = conn.exec("echo ok", b"", &cancel).await.expect("exec");
        assert_eq!(text(&out.stdout), "ok\n", "{name}");
    }
    assert!(sshd.log_text().contains("ssh2: RSA SHA256:"), "{}", sshd.log_text());

    // The agent, with an RSA key only it holds.
    let agent = Agent::start();
    let agent_key = keygen(keys.path(), "agent_rsa", "rsa", false);
    agent.add(&agent_key.private_path);
    sshd.authorize(&agent_key.public);
    let mut s = spec(&sshd);
    s.auth.private_key = None;
    s.auth.agent = true;
    s.auth.agent_socket = Some(agent.socket.clone());
    let conn = Pool::new()
        .connect(&s, &cancel)
        .await
        .unwrap_or_else(|e| panic!("agent: {}", chain(&e)));
    assert!(conn.exec("true", b"", &cancel).await.expect("exec").success());
    let fp = ssh_keygen_fingerprint(&agent_key.public);
    assert!(
        sshd.log_text().contains(&format!("RSA {fp}")),
        "agent key not the one accepted"
    );

    // A private key that is not one: a precise message without the text.
    let mut s = spec(&sshd);
    s.auth.private_key = Some(Sensitive::new(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END OPENSSH PRIVATE KEY-----\n".into(),
    ));
    let err = Pool::new().connect(&s, &cancel).await.expect_err("garbage key");
    let msg = chain(&err);
    assert!(
        matches!(err, SshError::KeyFormat { .. }) && msg.contains("OpenSSH key does not decode"),
        "{msg}"
    );
    assert!(!msg.contains("bm90IGEga2V5"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_fails_auth_at_once_without_retrying() {
    if !sshd::available("wrong_key_fails_auth_at_once_without_retrying") {
        return;
    }
    let sshd = Sshd::start();
    let keys = tempfile::tempdir().expect("temp dir");
    let stranger = keygen(keys.path(), "stranger", "ed25519", false);
    let mut s = spec(&sshd);
    s.auth.private_key = Some(Sensitive::new(stranger.private.clone()));
    s.retry_for = Duration::from_secs(30);
    let started = Instant::now();
    let err = Pool::new()
        .connect(&s, &CancellationToken::new())
        .await
        .expect_err("unauthorized key");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    match &err {
        SshError::Auth { target, tried } => {
            assert_eq!(target, &format!("root@127.0.0.1:{}", sshd.port));
            assert!(tried.contains(&ssh_keygen_fingerprint(&stranger.public)), "{tried}");
        }
        e => panic!("expected Auth, got {e:?}"),
    }
    assert_eq!(
        sshd.connections(),
        1,
        "auth failures must not be retried:\n{}",
        sshd.log_text()
    );
    assert_eq!(sshd.accepted_logins(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_retry_until_the_deadline_or_the_host_boots() {
    if !sshd::available("refused_connections_retry_until_the_deadline_or_the_host_boots") {
        return;
    }
    let cancel = CancellationToken::new();
    let keys = tempfile::tempdir().expect("temp dir");
    let key = keygen(keys.path(), "id", "ed25519", false);
    let mut s = ConnectSpec::new("127.0.0.1", "root");
    s.port = sshd::free_port("127.0.0.1");
    s.auth.private_key = Some(Sensitive::new(key.private.clone()));
    s.retry_for = Duration::from_secs(2);
    let started = Instant::now();
    let err = Pool::new().connect(&s, &cancel).await.expect_err("nothing listens");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    assert!(matches!(err, SshError::Timeout { .. }), "{err:?}");
    let msg = chain(&err);
    assert!(
        msg.contains("gave up connecting to root@127.0.0.1") && msg.contains("refused"),
        "{msg}"
    );

    // The host "boots" after a second: the retries reach it.
    let sshd = Sshd::start();
    sshd.signal_all("STOP");
    let mut s = spec(&sshd);
    s.retry_for = Duration::from_secs(20);
    s.connect_timeout = Duration::from_millis(500);
    let wake = std::thread::spawn({
        let pids = sshd.pids();
        move || {
            std::thread::sleep(Duration::from_secs(1));
            for pid in pids {
                let _ = std::process::Command::new("kill")
                    .args(["-CONT", &pid.to_string()])
                    .status();
            }
        }
    });
    let conn = Pool::new()
        .connect(&s, &cancel)
        .await
        .expect("connects once the host is up");
    wake.join().expect("waker");
    assert!(conn.exec("true", b"", &cancel).await.expect("exec").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_the_retry_loop_promptly() {
    let keys = tempfile::tempdir().expect("temp dir");
    let key = keygen(keys.path(), "id", "ed25519", false);
    let mut s = ConnectSpec::new("127.0.0.1", "root");
    s.port = sshd::free_port("127.0.0.1");
    s.auth.private_key = Some(Sensitive::new(key.private.clone()));
    s.retry_for = Duration::from_secs(60);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = Pool::new().connect(&s, &cancel).await.expect_err("cancelled");
    assert!(matches!(err, SshError::Cancelled), "{err:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_execs_share_one_connection() {
    if !sshd::available("twenty_concurrent_execs_share_one_connection") {
        return;
    }
    let sshd = Sshd::start();
    let pool = Pool::new();
    let cancel = CancellationToken::new();
    let spec = Arc::new(spec(&sshd));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (pool, spec, cancel) = (pool.clone(), spec.clone(), cancel.clone());
            tokio::spawn(async move {
                let conn = pool.connect(&spec, &cancel).await?;
                conn.exec(&format!("sleep 0.3; echo {i}"), b"", &cancel).await
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let out = t
            .await
            .expect("task")
            .unwrap_or_else(|e| panic!("exec {i}: {}", chain(&e)));
        assert_eq!(text(&out.stdout), format!("{i}\n"));
    }
    assert_eq!(sshd.connections(), 1, "server log:\n{}", sshd.log_text());
    assert_eq!(sshd.accepted_logins(), 1, "server log:\n{}", sshd.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connections_fail_the_exec_and_the_pool_redials() {
    if !sshd::available("lost_connections_fail_the_exec_and_the_pool_redials") {
        return;
    }
    let mut sshd = Sshd::start();
    let pool = Pool::new();
    let cancel = CancellationToken::new();
    let s = spec(&sshd);

    // The server process dies (the kernel resets the socket): at once.
    let conn = pool.connect(&s, &cancel).await.expect("connect");
    let running = tokio::spawn({
        let (conn, cancel) = (conn.clone(), cancel.clone());
        async move { conn.exec("sleep 60", b"", &cancel).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    sshd.kill();
    let err = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("exec must not hang")
        .expect("task")
        .expect_err("server killed");
    assert!(matches!(err, SshError::Disconnected { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );

    // It comes back: the next use re-dials.
    sshd.restart();
    let conn2 = pool.connect(&s, &cancel).await.expect("re-dial");
    assert!(!Arc::ptr_eq(&conn, &conn2));
    assert!(conn2.exec("true", b"", &cancel).await.expect("exec").success());
    assert_eq!(sshd.accepted_logins(), 2);

    // The host freezes (no FIN, no RST): the keepalives notice.
    let running = tokio::spawn({
        let (conn, cancel) = (conn2.clone(), cancel.clone());
        async move { conn.exec("sleep 60", b"", &cancel).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    sshd.signal_all("STOP");
    let err = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("exec must not hang")
        .expect("task")
        .expect_err("host frozen");
    let took = started.elapsed();
    assert!(matches!(err, SshError::Disconnected { .. }), "{err:?}");
    assert!(took < Duration::from_secs(15), "keepalive took {took:?}");
    assert!(conn2.is_closed());
    sshd.restart();
    let conn3 = pool.connect(&s, &cancel).await.expect("re-dial after freeze");
    assert!(conn3.exec("true", b"", &cancel).await.expect("exec").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bastion_tunnels_the_session_through_direct_tcpip() {
    if !sshd::available("bastion_tunnels_the_session_through_direct_tcpip") {
        return;
    }
    let bastion = Sshd::start();
    let target = Sshd::start_with(Options {
        listen: "127.0.0.2".to_owned(),
        ..Options::default()
    });
    target.authorize(&bastion.client.public);
    let cancel = CancellationToken::new();
    let mut s = spec(&target);
    s.auth.private_key = Some(Sensitive::new(bastion.client.private.clone()));
    s.host_key = HostKeyPolicy::Pinned(target.host_key.public.clone());
    let mut via = spec(&bastion);
    via.host_key = HostKeyPolicy::Pinned(bastion.host_key.public.clone());
    s.bastion = Some(Box::new(via.clone()));

    let pool = Pool::new();
    let conn = pool
        .connect(&s, &cancel)
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(
        conn.target(),
        format!("root@127.0.0.2:{} via root@127.0.0.1:{}", target.port, bastion.port)
    );
    let out = conn.exec("echo $SSH_CONNECTION", b"", &cancel).await.expect("exec");
    // "client_ip client_port server_ip server_port" as the target saw it.
    let seen = text(&out.stdout);
    let fields: Vec<&str> = seen.split_whitespace().collect();
    assert_eq!(
        fields.get(2..4),
        Some(&["127.0.0.2", &target.port.to_string()][..]),
        "{seen}"
    );
    let client_port: u16 = fields[1].parse().expect("port");
    // The TCP connection the target accepted was opened by a process of the
    // bastion's sshd (its session forwarding our direct-tcpip channel), not
    // by this test process.
    let inode = sshd::tcp_inode_for_local_port(client_port).expect("socket of the target's peer");
    let owners: Vec<u32> = bastion
        .pids()
        .into_iter()
        .filter(|&p| sshd::socket_inodes(p).contains(&inode))
        .collect();
    assert!(
        !owners.is_empty(),
        "127.0.0.1:{client_port} is not a bastion sshd socket"
    );
    assert!(!sshd::socket_inodes(std::process::id()).contains(&inode));
    assert_eq!((bastion.accepted_logins(), target.accepted_logins()), (1, 1));

    // Each hop's host key is checked: a wrong bastion pin fails naming it.
    let mut wrong = s.clone();
    let mut bad_via = via.clone();
    bad_via.host_key = HostKeyPolicy::Pinned(target.host_key.public.clone());
    wrong.bastion = Some(Box::new(bad_via));
    let err = Pool::new()
        .connect(&wrong, &cancel)
        .await
        .expect_err("bastion mismatch");
    match err {
        SshError::HostKeyMismatch { host, .. } => assert_eq!(host, format!("127.0.0.1:{}", bastion.port)),
        e => panic!("{e:?}"),
    }
    // ... also when the pooled connection is reused.
    let mut reuse = s.clone();
    let mut bad_via = via;
    bad_via.host_key = HostKeyPolicy::Pinned(target.host_key.public.clone());
    reuse.bastion = Some(Box::new(bad_via));
    let err = pool
        .connect(&reuse, &cancel)
        .await
        .expect_err("reused bastion mismatch");
    assert!(matches!(err, SshError::HostKeyMismatch { .. }), "{err:?}");
}

/// Creates a user with a NOPASSWD sudoers drop-in; removes both on drop.
struct SudoUser {
    name: String,
    sudoers: std::path::PathBuf,
}

impl SudoUser {
    fn create() -> Option<SudoUser> {
        let name = format!("sht{}", std::process::id());
        let ok = std::process::Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", "-p", "*", &name])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return None;
        }
        let user = SudoUser {
            sudoers: format!("/etc/sudoers.d/selfhost-test-{name}").into(),
            name,
        };
        let tmp = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(tmp.path(), format!("{} ALL=(root) NOPASSWD: ALL\n", user.name)).expect("write");
        let valid = std::process::Command::new("visudo")
            .arg("-cf")
            .arg(tmp.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(valid, "visudo rejected the drop-in");
        std::fs::copy(tmp.path(), &user.sudoers).expect("install drop-in");
        std::fs::set_permissions(&user.sudoers, std::fs::Permissions::from_mode(0o440)).expect("chmod");
        Some(user)
    }
}

impl Drop for SudoUser {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.sudoers);
        let _ = std::process::Command::new("userdel").args(["-r", &self.name]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_as_root_through_sudo_for_other_users() {
    let test = "scripts_run_as_root_through_sudo_for_other_users";
    if !sshd::available(test) {
        return;
    }
    if !std::path::Path::new("/usr/bin/sudo").exists() {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: sudo is missing (scripts/test installs it)");
        }
        eprintln!("\n*** SKIP {test}: sudo is missing (apt-get install sudo) ***\n");
        return;
    }
    let Some(user) = SudoUser::create() else {
        panic!("{test}: useradd failed");
    };
    let sshd = Sshd::start();
    let cancel = CancellationToken::new();
    let mut s = spec(&sshd);
    s.user = user.name.clone();
    let conn = Pool::new()
        .connect(&s, &cancel)
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));

    let plain = conn.exec("id -u", b"", &cancel).await.expect("exec");
    assert_ne!(text(&plain.stdout).trim(), "0", "the login itself is not root");
    let out = conn.run_script("id -u", b"", &cancel).await.expect("script");
    assert_eq!(text(&out.stdout), "0\n", "{}", text(&out.stderr));
    let out = conn
        .run_script("id -u; cat", b"on stdin", &cancel)
        .await
        .expect("script");
    assert_eq!(text(&out.stdout), "0\non stdin", "{}", text(&out.stderr));

    let dest = sshd.dir.path().join("root-owned");
    conn.upload(dest.to_str().expect("utf-8"), b"secret", 0o600, &cancel)
        .await
        .expect("upload through sudo");
    let meta = std::fs::metadata(&dest).expect("stat");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0);
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(std::fs::read(&dest).expect("read"), b"secret");
}

/// The bed's tb-host3 (the third of SELFHOST_TEST_HOSTS), its key pinned from the bed's known_hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testbed_host_runs_commands_behind_its_pinned_key() {
    let test = "testbed_host_runs_commands_behind_its_pinned_key";
    let var = |name: &str| match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ if std::env::var_os("CI").is_some() => panic!("{test}: {name} is not set; CI runs with the bed up"),
        _ => {
            eprintln!("\n*** SKIP {test}: {name} is not set. Run `eval \"$(testbed/testbed env)\"` ***\n");
            None
        }
    };
    let (Some(hosts), Some(key), Some(user), Some(known)) = (
        var("SELFHOST_TEST_HOSTS"),
        var("SELFHOST_TEST_SSH_KEY"),
        var("SELFHOST_TEST_SSH_USER"),
        var("SELFHOST_TEST_KNOWN_HOSTS"),
    ) else {
        return;
    };
    // tb-host3 only: the other hosts belong to other tests.
    let Some(host) = hosts.split_whitespace().nth(2) else {
        panic!("{test}: SELFHOST_TEST_HOSTS has no third host: {hosts}");
    };
    let (addr, port) = host.rsplit_once(':').unwrap_or((host, "22"));
    let known = std::fs::read_to_string(&known).expect("read known_hosts");
    let pinned = known
        .lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(h, k)| *h == addr && k.starts_with("ssh-ed25519 "))
        .map(|(_, k)| k.to_owned())
        .expect("tb-host3's ed25519 key in known_hosts");
    let mut s = ConnectSpec::new(addr, user);
    s.port = port.parse().expect("port");
    s.auth.private_key = Some(Sensitive::new(std::fs::read_to_string(&key).expect("read key")));
    s.host_key = HostKeyPolicy::Pinned(pinned.clone());
    s.retry_for = Duration::from_secs(30);
    let cancel = CancellationToken::new();
    let conn = Pool::new()
        .connect(&s, &cancel)
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    let out = conn
        .run_script(
            "systemctl is-system-running || true; cat /etc/debian_version",
            b"",
            &cancel,
        )
        .await
        .expect("script");
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("running\n") || stdout.starts_with("degraded\n"),
        "{stdout}"
    );
    let path = format!("/tmp/selfhost-ssh-test-{}", std::process::id());
    conn.upload(&path, b"from the ssh layer\n", 0o640, &cancel)
        .await
        .expect("upload");
    let out = conn
        .run_script(
            &format!(
                "stat -c %a {0}; cat {0}; rm -f {0}",
                terraform_provider_selfhost::shell::quote(&path)
            ),
            b"",
            &cancel,
        )
        .await
        .expect("read back");
    assert_eq!(text(&out.stdout), "640\nfrom the ssh layer\n");

    // First use sees the same key the bed recorded.
    let mut first = s.clone();
    first.host_key = HostKeyPolicy::FirstUse;
    let conn = Pool::new().connect(&first, &cancel).await.expect("first use");
    assert_eq!(
        conn.host_key(),
        pinned.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_command_returns_promptly_and_keeps_the_connection() {
    if !sshd::available("cancelling_a_running_command_returns_promptly_and_keeps_the_connection") {
        return;
    }
    let sshd = Sshd::start();
    let pool = Pool::new();
    let conn = pool
        .connect(&spec(&sshd), &CancellationToken::new())
        .await
        .expect("connect");
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = conn.exec("sleep 30", b"", &cancel).await.expect_err("cancelled");
    assert!(matches!(err, SshError::Cancelled), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let fresh = CancellationToken::new();
    let again = pool.connect(&spec(&sshd), &fresh).await.expect("pooled");
    assert!(Arc::ptr_eq(&conn, &again));
    assert!(again.exec("true", b"", &fresh).await.expect("exec").success());
}
