//! Download-and-verify throughput and memory of `install.source =
//! "download"`: `Fetcher::verified` fetching a file of SIZE MiB from a local
//! HTTP server (`python3 -m http.server`) into an empty cache, RUNS times,
//! then once more from the cache (re-hashed, not fetched). Prints MB/s per
//! run and the process's peak resident memory (VmHWM), which stays flat
//! whatever the size: the body is hashed and written as it streams.
//!   bench/download.sh [SIZE_MIB] [RUNS]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use terraform_provider_selfhost::download::{Fetcher, sha256_file};
use tokio_util::sync::CancellationToken;

#[path = "rss.rs"]
mod rss;
use rss::peak_rss_kib;

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let size_mib: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let runs: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).map_err(|e| e.to_string())?;
    let file = www.join("artifact");
    {
        let mut f = std::fs::File::create(&file).map_err(|e| e.to_string())?;
        let mut block = vec![0u8; 1 << 20];
        for i in 0..size_mib {
            block
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = (i as usize * 31 + j) as u8);
            f.write_all(&block).map_err(|e| e.to_string())?;
        }
    }
    let sha = sha256_file(&file).map_err(|e| e.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())?;
    let mut server = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
        .arg(&www)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("python3 -m http.server: {e}"))?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = server.kill();
            return Err("the HTTP server did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("http://127.0.0.1:{port}/artifact");
    let cancel = CancellationToken::new();
    println!("{size_mib} MiB, {runs} runs; peak RSS before: {} KiB", peak_rss_kib());
    let mut result = Ok(());
    for run in 1..=runs {
        let cache = dir.path().join(format!("cache-{run}"));
        let f = Fetcher::new(cache).map_err(|e| e.to_string())?;
        let t = Instant::now();
        if let Err(e) = f.verified(&url, "artifact.sha256", &sha, &cancel).await {
            result = Err(e.to_string());
            break;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "run {run}: fetched and verified in {s:.2} s = {:.1} MB/s; peak RSS {} KiB",
            (size_mib << 20) as f64 / s / 1e6,
            peak_rss_kib()
        );
        if run == runs {
            let t = Instant::now();
            f.verified(&url, "artifact.sha256", &sha, &cancel)
                .await
                .map_err(|e| e.to_string())?;
            println!("cache hit (re-hashed, no request): {:.2} s", t.elapsed().as_secs_f64());
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    result
}
