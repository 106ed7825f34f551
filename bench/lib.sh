# shellcheck shell=bash disable=SC2034,SC2154 # variables shared with the scripts that source this
# bench/lib.sh — what the side-by-side benchmarks share. Sourced by
# bench/*.sh after they set `repo` (the checkout); never run on its own.

# The work directory: SELFHOST_BENCH_DIR or DEFAULT, absolute, with an
# empty `logs/` in it. Sets work, logs and t_start (for `say`).
bench_workdir() { # default
  work="${SELFHOST_BENCH_DIR:-$1}"
  mkdir -p "$work"
  work="$(cd "$work" && pwd)"
  logs="$work/logs"
  rm -rf "$logs"
  mkdir -p "$logs"
  t_start=$(date +%s)
}

say() { echo "bench: [$(($(date +%s) - t_start))s] $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN { printf "%.*f", d, b - a }'; } # from, to[, decimals]

# Our provider, a release build (or SELFHOST_BENCH_BINARY), installed into
# the filesystem mirror $work/mirror; with CLI_CONFIG, a CLI configuration
# file that uses that mirror is written there too. Sets provider_version
# and provider_commit (for the report).
install_our_provider() { # [cli-config]
  say "the provider (release build) into a filesystem mirror"
  local binary="${SELFHOST_BENCH_BINARY:-}"
  if [ -z "$binary" ]; then
    (cd "$repo" && nice cargo build --release --quiet --bin terraform-provider-selfhost)
    binary="${CARGO_TARGET_DIR:-$repo/target}/release/terraform-provider-selfhost"
  fi
  rm -rf "$work/mirror"
  local args=(--binary "$binary" --mirror "$work/mirror")
  [ -z "${1:-}" ] || args+=(--cli-config "$1")
  "$repo/scripts/install-provider" "${args[@]}" >/dev/null 2>"$logs/install-provider.log" ||
    die "scripts/install-provider failed (log: $logs/install-provider.log)"
  provider_version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$repo/Cargo.toml" | head -n1)"
  provider_commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git -C "$repo" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    provider_commit="$provider_commit + uncommitted changes"
  fi
}

host_key() { # address: its ed25519 key from the bed's known_hosts
  awk -v a="$1" '$1 == a && $2 == "ssh-ed25519" { print $2 " " $3; exit }' "$SELFHOST_TEST_KNOWN_HOSTS"
}
