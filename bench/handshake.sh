#!/bin/sh
# Handshake latency of the release binary as the CLI sees it: process start
# to handshake line, to the first GetProviderSchema over mutual TLS, and
# Shutdown to exit; min/median/max over RUNS runs (default 30).
#   bench/handshake.sh [RUNS]
set -eu
cd "$(dirname "$0")/.."
RUNS="${1:-30}"
cargo build --release --quiet --bin terraform-provider-selfhost --example handshake_bench
exec target/release/examples/handshake_bench --runs "$RUNS" --bin target/release/terraform-provider-selfhost
