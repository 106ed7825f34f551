//! SSH upload throughput and memory: streams a file of SIZE MiB to a test
//! bed host with `Connection::upload_file`, RUNS times, and prints MB/s per
//! run and the process's peak resident memory (VmHWM), which stays flat
//! whatever the file size because the file is never held in memory.
//!   bench/upload.sh [SIZE_MIB] [RUNS]   (needs the bed: testbed/testbed up)

use std::time::Instant;

use terraform_provider_selfhost::sensitive::Sensitive;
use terraform_provider_selfhost::ssh::{ConnectSpec, HostKeyPolicy, Pool};
use tokio_util::sync::CancellationToken;

#[path = "rss.rs"]
mod rss;
use rss::peak_rss_kib;

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set: run `eval \"$(testbed/testbed env)\"`"))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let size_mib: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let runs: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let host = var("SELFHOST_TEST_HOSTS")?
        .split_whitespace()
        .next()
        .map(|h| h.rsplit_once(':').map_or(h, |(a, _)| a).to_owned())
        .ok_or("SELFHOST_TEST_HOSTS is empty")?;
    let key = std::fs::read_to_string(var("SELFHOST_TEST_SSH_KEY")?).map_err(|e| e.to_string())?;
    let known = std::fs::read_to_string(var("SELFHOST_TEST_KNOWN_HOSTS")?).map_err(|e| e.to_string())?;
    let host_key = known
        .lines()
        .find(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|h| h.split(',').any(|h| h == host))
        })
        .and_then(|l| {
            let mut f = l.split_whitespace().skip(1);
            Some(format!("{} {}", f.next()?, f.next()?))
        })
        .ok_or(format!("{host} is not in the bed's known_hosts"))?;

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let local = dir.path().join("payload.bin");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&local).map_err(|e| e.to_string())?;
        let block: Vec<u8> = (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for _ in 0..size_mib {
            f.write_all(&block).map_err(|e| e.to_string())?;
        }
    }
    let mut spec = ConnectSpec::new(host.clone(), var("SELFHOST_TEST_SSH_USER")?);
    spec.auth.private_key = Some(Sensitive::new(key));
    spec.host_key = HostKeyPolicy::Pinned(host_key);
    let cancel = CancellationToken::new();
    let conn = Pool::new().connect(&spec, &cancel).await.map_err(|e| e.to_string())?;
    let rss_before = peak_rss_kib();
    println!("upload of {size_mib} MiB to {host} over one SSH connection");
    for run in 1..=runs {
        let t = Instant::now();
        conn.upload_file(&local, "/tmp/selfhost-upload-bench.bin", 0o600, &cancel)
            .await
            .map_err(|e| e.to_string())?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "run {run}: {secs:.2} s, {:.1} MB/s",
            (size_mib as f64 * 1048576.0 / 1e6) / secs
        );
    }
    conn.run_script("rm -f /tmp/selfhost-upload-bench.bin", b"", &cancel)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "peak RSS: {} MiB after connecting, {} MiB after the uploads",
        rss_before / 1024,
        peak_rss_kib() / 1024
    );
    Ok(())
}
