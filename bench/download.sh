#!/bin/sh
# Download-and-verify throughput and peak memory of the download source
# (release build) from a local HTTP server: bench/download.sh [SIZE_MIB] [RUNS].
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --example download_bench
exec target/release/examples/download_bench "${1:-256}" "${2:-3}"
