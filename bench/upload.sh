#!/bin/sh
# SSH upload throughput and peak memory (release build) against a test bed
# host: bench/upload.sh [SIZE_MIB] [RUNS]. Needs `testbed/testbed up`.
set -eu
cd "$(dirname "$0")/.."
eval "$(testbed/testbed env)"
cargo build --release --quiet --example upload_bench
exec target/release/examples/upload_bench "${1:-256}" "${2:-3}"
