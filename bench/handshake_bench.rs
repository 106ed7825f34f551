//! Handshake latency of the real binary, as the CLI experiences it: from
//! process start to the handshake line on stdout, and to the first
//! GetProviderSchema answered over mutual TLS (go-plugin's client steps:
//! P-521 client certificate, TLS with ALPN h2, HTTP/2, the RPC). Then
//! GRPCController.Shutdown to process exit.
//!
//! Usage: handshake_bench [--runs N] [--bin PATH]   (run by bench/handshake.sh)

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/go_plugin.rs"]
mod go_plugin;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use go_plugin::*;
use terraform_provider_selfhost::plugin::proto::plugin::Empty;
use terraform_provider_selfhost::plugin::proto::plugin::grpc_controller_client::GrpcControllerClient;

struct Sample {
    handshake_line: Duration,
    first_schema: Duration,
    shutdown_to_exit: Duration,
}

async fn one_run(bin: &std::path::Path, cli: &ClientIdentity) -> Result<Sample, String> {
    let t0 = Instant::now();
    let mut plugin = start(bin, cli);
    let handshake_line = t0.elapsed();
    let tls = client_tls(&plugin.server_cert, Some(cli));
    let ch = channel(&plugin.socket, tls, Arc::default())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let schema = get_schema(ch.clone())
        .await
        .map_err(|e| format!("GetProviderSchema: {e}"))?;
    let first_schema = t0.elapsed();
    if schema.provider.is_none() {
        return Err("GetProviderSchema answered without a provider schema".into());
    }
    let t1 = Instant::now();
    GrpcControllerClient::new(ch)
        .shutdown(Empty {})
        .await
        .map_err(|e| format!("Shutdown: {e}"))?;
    wait_exit(&mut plugin.child, Duration::from_secs(10)).ok_or("no exit 10 s after Shutdown")?;
    Ok(Sample {
        handshake_line,
        first_schema,
        shutdown_to_exit: t1.elapsed(),
    })
}

fn row(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = if xs.len() % 2 == 1 {
        ms(xs[xs.len() / 2])
    } else {
        (ms(xs[xs.len() / 2 - 1]) + ms(xs[xs.len() / 2])) / 2.0
    };
    println!(
        "{name:<34} {:>9.2} {:>9.2} {:>9.2}",
        ms(xs[0]),
        median,
        ms(xs[xs.len() - 1])
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let mut runs = 30usize;
    let mut bin = PathBuf::from("target/release/terraform-provider-selfhost");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--runs takes a number")?
            }
            "--bin" => bin = args.next().map(PathBuf::from).ok_or("--bin takes a path")?,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: handshake_bench [--runs N] [--bin PATH]"
                ));
            }
        }
    }
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    // One certificate for all runs: the CLI makes its own before starting
    // the plugin, so that cost is not the plugin's.
    let cli = go_plugin_client_identity();
    one_run(&bin, &cli).await?; // warm-up (page cache)
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        samples.push(one_run(&bin, &cli).await?);
    }
    println!("binary: {}  runs: {runs} (+1 warm-up)", bin.display());
    println!("{:<34} {:>9} {:>9} {:>9}", "milliseconds", "min", "median", "max");
    row(
        "start -> handshake line",
        samples.iter().map(|s| s.handshake_line).collect(),
    );
    row(
        "start -> first GetProviderSchema",
        samples.iter().map(|s| s.first_schema).collect(),
    );
    row(
        "Shutdown -> process exit",
        samples.iter().map(|s| s.shutdown_to_exit).collect(),
    );
    Ok(())
}
