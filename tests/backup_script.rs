//! The scripts `selfhost_backup_schedule` generates, run for real with `sh`:
//! restic (Debian's) against a local-directory repository and against a
//! real S3-compatible server (versitygw serving a local directory), and
//! pg_dump/pg_restore against a PostgreSQL server (Debian's) started here
//! as a non-root user in a temporary directory. Files are compared byte for
//! byte and mode for mode, rows row for row.
//!
//! Tools: `restic` on PATH, PostgreSQL under /usr/lib/postgresql/*/bin, and
//! versitygw at `$SELFHOST_TEST_VERSITYGW` (scripts/test-tools installs all
//! three). Missing tools SKIP loudly; with `CI` set they fail.

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use terraform_provider_selfhost::backup::script::{Layout, backup_script, dump_script, restore_script};
use terraform_provider_selfhost::backup::spec::{BackupSpec, Destination, Retention, Source};

const PASSWORD: &str = "restic pw with 'quotes' and $dollar";

/// `None` after a loud SKIP (a panic under CI) when `what` is missing.
fn need(test: &str, what: &str, found: Option<PathBuf>) -> Option<PathBuf> {
    if found.is_some() {
        return found;
    }
    let msg = format!("{test}: {what} is missing; run scripts/test-tools (scripts/test does)");
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("\n*** SKIP {msg} ***\n");
    None
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn restic(test: &str) -> Option<PathBuf> {
    need(test, "restic (apt-get install restic)", on_path("restic"))
}

fn versitygw(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("SELFHOST_TEST_VERSITYGW")
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    need(test, "versitygw ($SELFHOST_TEST_VERSITYGW)", found)
}

/// The newest PostgreSQL server's bin directory.
fn postgres_bin(test: &str) -> Option<PathBuf> {
    let found = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|dirs| {
        dirs.filter_map(|d| d.ok())
            .filter_map(|d| d.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .map(|v| PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")))
            .filter(|b| b.join("initdb").is_file() && b.join("pg_dump").is_file())
    });
    need(test, "PostgreSQL (apt-get install postgresql)", found)
}

fn spec(source: Source, destination: Destination, retention: Retention) -> BackupSpec {
    BackupSpec {
        namespace: "acc".to_owned(),
        name: "backup-script".to_owned(),
        source,
        destination,
        retention,
    }
}

fn volume_source() -> Source {
    Source::Volume {
        agent: "research".to_owned(),
        claim: "research-data".to_owned(),
    }
}

/// Run `script` with `sh`, with `env` added to the test's environment
/// (and `RESTIC_*`/`AWS_*`/`PG*` from outside removed).
fn sh(script: &str, env: &[(&str, &str)], extra_path: Option<&Path>) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    for (k, _) in std::env::vars() {
        if k.starts_with("RESTIC_") || k.starts_with("AWS_") || k.starts_with("PG") {
            cmd.env_remove(k);
        }
    }
    if let Some(dir) = extra_path {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", dir.display()));
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run sh")
}

fn ok(out: Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    text
}

/// A tree with what a volume holds: nested directories, modes, an
/// executable, an empty file, binary data, a symlink, odd names.
fn make_tree(root: &Path) {
    let file = |rel: &str, data: &[u8], mode: u32| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    file("notes.txt", b"research notes\n", 0o644);
    file("secret/key.pem", b"-----BEGIN-----\nabc\n", 0o600);
    file("bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    file("empty", b"", 0o640);
    let binary: Vec<u8> = (0..70_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    file("data/blob.bin", &binary, 0o644);
    file("data/with space & 'quote'.txt", "ünïcødé\n".as_bytes(), 0o664);
    std::fs::set_permissions(root.join("secret"), std::fs::Permissions::from_mode(0o700)).unwrap();
    symlink("../notes.txt", root.join("data/link")).unwrap();
}

/// Every entry under `root`: kind, mode bits and content (or link target).
fn snapshot_tree(root: &Path) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, ('l', 0, t.to_string_lossy().as_bytes().to_vec()));
            } else if m.is_dir() {
                out.insert(rel, ('d', mode, Vec::new()));
                stack.push(p);
            } else {
                out.insert(rel, ('f', mode, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn layout(tmp: &Path, source: &Path) -> Layout {
    let work = tmp.join("work");
    std::fs::create_dir_all(&work).unwrap();
    Layout {
        source: source.display().to_string(),
        work: work.display().to_string(),
        repository: tmp.join("repo").display().to_string(),
    }
}

/// The snapshots' times (RFC 3339 as restic prints them), oldest first.
fn snapshot_times(env: &[(&str, &str)], repo: &str) -> Vec<String> {
    let mut env = env.to_vec();
    env.push(("RESTIC_REPOSITORY", repo));
    let out = ok(sh("restic snapshots --json --no-lock", &env, None), "restic snapshots");
    let start = out.find('[').unwrap_or(0);
    let json: Json = serde_json::from_str(out[start..].lines().next().unwrap_or("[]")).expect("snapshots JSON");
    let mut times: Vec<String> = json
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["time"].as_str().map(str::to_owned))
        .collect();
    times.sort();
    times
}

fn restore_and_compare(spec: &BackupSpec, layout: &Layout, env: &[(&str, &str)], source: &Path, tmp: &Path) {
    let target = tmp.join("restored");
    let script = restore_script(spec, layout, &target.display().to_string());
    ok(sh(&script, env, None), "the generated restore commands");
    assert_eq!(
        snapshot_tree(&target),
        snapshot_tree(source),
        "the restored tree differs from the source"
    );
}

/// The retention policy of the dated-series scenario.
fn series_retention() -> Retention {
    Retention {
        keep_last: Some(2),
        keep_hourly: None,
        keep_daily: Some(3),
        keep_weekly: Some(2),
        keep_monthly: Some(3),
    }
}

/// Back up a tree with the generated script (which initialises the
/// repository), add seven older snapshots with controlled dates, change
/// the tree, run the generated script again and check that its `forget
/// --prune` kept exactly the hand-computed snapshots; then restore with the
/// generated commands and compare the tree. `env` holds the secrets and
/// `repo` the repository string the script should use.
fn dated_series(destination: Destination, env: &[(&str, &str)], repo: &str, tmp: &Path) {
    let source = tmp.join("source");
    make_tree(&source);
    let layout = layout(tmp, &source);
    let spec = spec(volume_source(), destination, series_retention());
    let script = backup_script(&spec, &layout);
    for (_, secret) in env {
        assert!(!script.contains(secret), "a secret in the script");
    }

    // First run: the repository is initialised, one snapshot.
    let first = ok(sh(&script, env, None), "first backup run");
    assert!(first.contains("initialising"), "{first}");
    assert_eq!(snapshot_times(env, repo).len(), 1);

    // A series of older snapshots with controlled dates, as earlier runs
    // of the same schedule would have made them (same host and tag).
    let dated = [
        "2026-01-10 03:00:00", // A: January
        "2026-02-10 03:00:00", // B: the only one of February
        "2026-03-10 03:00:00", // C
        "2026-03-20 03:00:00", // D: Friday
        "2026-03-21 03:00:00", // E: Saturday, early
        "2026-03-21 05:00:00", // F: Saturday, the day's newest
        "2026-03-22 03:00:00", // G: Sunday, the end of that ISO week
    ];
    let mut env_repo = env.to_vec();
    env_repo.push(("RESTIC_REPOSITORY", repo));
    if let Destination::S3 { region, .. } = &spec.destination {
        env_repo.push(("AWS_DEFAULT_REGION", region));
    }
    for t in dated {
        let cmd = format!(
            "cd '{}' && restic backup --host 'acc.backup-script' --tag selfhost-backup --time '{t}' . >/dev/null",
            source.display()
        );
        ok(sh(&cmd, &env_repo, None), "dated backup");
    }
    // The tree changes before the next run: the restore must give the new one.
    std::fs::write(source.join("notes.txt"), b"research notes, revised\n").unwrap();
    std::fs::write(source.join("data/new.txt"), b"new file\n").unwrap();

    let second = ok(sh(&script, env, None), "second backup run");
    assert!(!second.contains("initialising"), "{second}");
    // Newest first: N1 (this run), N0 (first run), G, F, E, D, C, B, A.
    // keep-last 2: N1, N0. keep-daily 3: N1 (today), G (03-22), F (03-21).
    // keep-weekly 2: N1's week, G's (16-22 March). keep-monthly 3: N1's
    // month, March (G), February (B). Forgotten: E, D, C, A.
    let times = snapshot_times(env, repo);
    let kept_dated: Vec<&str> = times
        .iter()
        .filter(|t| t.starts_with("2026-0"))
        .map(|t| &t[..19])
        .collect();
    assert_eq!(
        kept_dated,
        vec!["2026-02-10T03:00:00", "2026-03-21T05:00:00", "2026-03-22T03:00:00"],
        "all snapshots: {times:?}"
    );
    assert_eq!(times.len(), 5, "{times:?}");
    let pruned = second.contains("remove 4 snapshots") || second.contains("removed 4 snapshots");
    assert!(pruned, "forget --prune must say it removed 4 snapshots:\n{second}");

    restore_and_compare(&spec, &layout, env, &source, tmp);
}

#[test]
fn volume_to_a_directory_repository_with_retention_over_dated_snapshots() {
    let test = "volume_to_a_directory_repository_with_retention_over_dated_snapshots";
    let Some(_) = restic(test) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let repo = format!("{}/repo/research", tmp.path().display());
    let destination = Destination::Volume {
        claim: "backups".to_owned(),
        prefix: "research".to_owned(),
    };
    dated_series(destination, &[("RESTIC_PASSWORD", PASSWORD)], &repo, tmp.path());
}

/// versitygw serving `root` on a free loopback port; killed on drop.
struct Gateway {
    child: Child,
    endpoint: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, what: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_gateway(bin: &Path, root: &Path, access: &str, secret: &str) -> Gateway {
    std::fs::create_dir_all(root).unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .args(["--access", access, "--secret", secret, "--region", "eu-test-1"])
        .args(["--port", &format!("127.0.0.1:{port}")])
        .arg("posix")
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start versitygw");
    let gw = Gateway {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    wait_for_port(port, "versitygw");
    gw
}

#[test]
fn volume_to_an_s3_bucket_on_versitygw_with_retention_over_dated_snapshots() {
    let test = "volume_to_an_s3_bucket_on_versitygw_with_retention_over_dated_snapshots";
    let Some(_) = restic(test) else { return };
    let Some(gw_bin) = versitygw(test) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (access, secret) = ("backupkey", "s3 secret/with+chars");
    let gw = start_gateway(&gw_bin, &tmp.path().join("gw"), access, secret);
    // The bucket is a directory of the gateway's root.
    std::fs::create_dir_all(tmp.path().join("gw/backups")).unwrap();
    let destination = Destination::S3 {
        endpoint: gw.endpoint.clone(),
        bucket: "backups".to_owned(),
        prefix: "agents/research".to_owned(),
        region: "eu-test-1".to_owned(),
    };
    let env = [
        ("RESTIC_PASSWORD", PASSWORD),
        ("AWS_ACCESS_KEY_ID", access),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ];

    // Missing credentials: the script stops before restic, naming them.
    let layout = layout(tmp.path(), tmp.path());
    let script = backup_script(&spec(volume_source(), destination.clone(), series_retention()), &layout);
    let out = sh(&script, &env[..2], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    assert!(!tmp.path().join("gw/backups/agents").exists(), "nothing written");

    let repo = format!("s3:{}/backups/agents/research", gw.endpoint);
    dated_series(destination, &env, &repo, tmp.path());
    // The objects really are in the gateway's directory.
    assert!(tmp.path().join("gw/backups/agents/research/config").is_file());
}

/// A PostgreSQL server in `dir`, run as `nobody` when the test is root;
/// stopped on drop.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_nobody: bool,
}

impl Postgres {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn start(bin: &Path, dir: &Path, user: &str, password: &str) -> Postgres {
        let as_nobody = nix_is_root();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, password).unwrap();
        if as_nobody {
            // The server refuses to run as root: hand the directory to nobody.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            let st = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(dir)
                .status()
                .unwrap();
            assert!(st.success());
        }
        let pg = Postgres {
            bin: bin.to_path_buf(),
            data: data.clone(),
            port: free_port(),
            as_nobody,
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", user, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap();
        ok(out, "initdb");
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", pg.port, dir.display());
        let out = pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-w", "-l"])
            .arg(dir.join("log"))
            .arg("start")
            .output()
            .unwrap();
        ok(out, "pg_ctl start");
        pg
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn postgres_dump_backed_up_and_restored_into_a_fresh_database() {
    let test = "postgres_dump_backed_up_and_restored_into_a_fresh_database";
    let Some(_) = restic(test) else { return };
    let Some(bin) = postgres_bin(test) else { return };
    let tmp = tempfile::tempdir().unwrap();
    // The server runs as nobody when the test is root: it must reach its directory.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pgdir = tmp.path().join("pg");
    let (user, db_password) = ("backup", "pg pw 'with' $(quotes)");
    let pg = Postgres::start(&bin, &pgdir, user, db_password);
    let port = pg.port.to_string();
    let psql = |db: &str, sql: &str| -> String {
        let out = Command::new(bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", user, "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .env("PGPASSWORD", db_password)
            .output()
            .unwrap();
        ok(out, &format!("psql {sql}"))
    };
    psql("postgres", "CREATE DATABASE app");
    psql("postgres", "CREATE DATABASE restored");
    psql(
        "app",
        "CREATE TABLE notes (id serial PRIMARY KEY, body text, blob bytea, at timestamptz);
         INSERT INTO notes (body, blob, at)
           SELECT 'note ' || i || ' ünïcødé ''q''', decode(md5(i::text), 'hex'), '2026-01-01'::timestamptz + i * interval '1 hour'
           FROM generate_series(1, 500) AS i;
         INSERT INTO notes (body, blob, at) VALUES (NULL, NULL, NULL);",
    );
    let rows = "SELECT id, body, encode(blob, 'hex'), at FROM notes ORDER BY id";
    let before = psql("app", rows);
    assert_eq!(before.lines().count(), 501);

    let work_root = tmp.path().join("w");
    std::fs::create_dir_all(&work_root).unwrap();
    let layout = layout(&work_root, &work_root);
    let spec = spec(
        Source::Postgres {
            host: "127.0.0.1".to_owned(),
            port: pg.port,
            database: "app".to_owned(),
            user: user.to_owned(),
        },
        Destination::Volume {
            claim: "backups".to_owned(),
            prefix: String::new(),
        },
        Retention {
            keep_last: Some(2),
            ..Retention::default()
        },
    );
    let dump = dump_script(&spec, &layout).expect("a PostgreSQL source has a dump script");
    let backup = backup_script(&spec, &layout);
    assert!(!dump.contains(db_password) && !backup.contains(PASSWORD));
    // The client tools of the same version as the server.
    let tools = Some(bin.as_path());
    let env = [("RESTIC_PASSWORD", PASSWORD), ("PGPASSWORD", db_password)];

    // Without the password the dump script stops, naming PGPASSWORD.
    let out = sh(&dump, &env[..1], tools);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PGPASSWORD"));

    ok(sh(&dump, &env, tools), "the generated dump script");
    let dumped = std::fs::read(Path::new(&layout.work).join("database.dump")).unwrap();
    assert!(dumped.starts_with(b"PGDMP"), "pg_dump's custom format");
    ok(sh(&backup, &env, tools), "the generated backup script");

    let restore = restore_script(&spec, &layout, "restored");
    ok(sh(&restore, &env, tools), "the generated restore commands");
    assert_eq!(psql("restored", rows), before, "restored rows differ");
}
