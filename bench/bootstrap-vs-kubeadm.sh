#!/usr/bin/env bash
# A two-node kubeadm cluster bootstrapped from bare test-bed hosts two ways,
# timed and counted: a `selfhost_k8s_cluster` configuration applied by a
# real Terraform CLI, and the same steps by hand in plain shell over SSH
# (`testbed/selftest-kubeadm --bootstrap-only`, the bed's own kubeadm
# self-test).
#
#   bench/bootstrap-vs-kubeadm.sh [ROUNDS]     rounds per side (default 3)
#
# Both sides use the same bundle (`testbed bundle current`: Kubernetes
# v1.36.3, containerd, runc, CNI plugins, images), the same two k8s hosts
# (control plane + one worker), flannel, and stop at the same point: every
# node Ready. Each timed run starts on hosts that nothing touched yet: the
# bed's k8s hosts are brought down and up again before every run (not
# timed), and sshd is set to LogLevel VERBOSE so that its log has a line
# per connection and per exec.
#
#   selfhost: `terraform apply` (after an untimed `init`) of two
#             `selfhost_vps_host` (sysctl net.ipv4.ip_forward) and one
#             `selfhost_k8s_cluster` (bundle install, flannel); timed from
#             the start of `apply` to its end (the resource returns once
#             every node is Ready).
#   by hand:  selftest-kubeadm's upload (tar over ssh), install, image
#             import, `kubeadm init`, flannel, `kubeadm join`, `kubectl wait
#             --for=condition=Ready node --all`; timed from the upload to
#             that wait's end (the self-test prints it as "bootstrap: N s").
#             Its later rollout checks and its `kubeadm reset` are not timed.
#
# The cluster's default add-ons (metrics-server and the NetworkPolicy
# enforcer, on unless set false) are turned off here: the by-hand steps
# install neither. Left on, they add ≈ 30 s (metrics-server becoming ready).
#
# What differs: the provider also probes each host first (OS, init system,
# cgroup layout, what is installed) and picks the node settings from that
# (the self-test has them written in, marked TESTBED), verifies every
# uploaded file's SHA-256 (the self-test checks SHA256SUMS too), and uploads
# only what a node needs. Both run the two hosts' uploads and installs in
# parallel.
#
# SSH connections, execs and SFTP sessions per host are counted in each
# host's sshd log ("Accepted publickey", "Starting session: command",
# "Starting session: subsystem"), from just before the timed run to its end.
#
# Environment:
#   SELFHOST_BENCH_DIR            work directory (default target/bench-bootstrap-vs-kubeadm)
#   SELFHOST_BENCH_BINARY         use this provider binary instead of building
#   SELFHOST_BENCH_CLI            the Terraform binary (default: newest of `testbed clis`)
#   SELFHOST_TESTBED_INSTANCE     the bed instance (default 6: the bench brings
#                                 it down and up, so not the tests' bed 0)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${1:-3}"
case "$rounds" in '' | *[!0-9]* | 0) echo "usage: $0 [ROUNDS >= 1]" >&2; exit 2 ;; esac
export SELFHOST_TESTBED_INSTANCE="${SELFHOST_TESTBED_INSTANCE:-6}"
testbed="$repo/testbed/testbed"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
bench_workdir "$repo/target/bench-bootstrap-vs-kubeadm"

# --- the provider and the CLI --------------------------------------------

install_our_provider "$work/cli.tfrc"
cli="${SELFHOST_BENCH_CLI:-$("$testbed" clis | grep '/terraform-' | sort -V | tail -n1)}"
[ -x "$cli" ] || die "no Terraform CLI ($cli)"
cli_version="$(TF_CLI_CONFIG_FILE="$work/cli.tfrc" "$cli" version | head -n1)"
bundle="$("$testbed" bundle current)"
say "$cli_version; bundle $bundle"

# --- the bed ---------------------------------------------------------------

ssh_to() { # address, command...
  local a="$1"
  shift
  ssh -i "$SELFHOST_TEST_SSH_KEY" -o UserKnownHostsFile="$SELFHOST_TEST_KNOWN_HOSTS" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10 -o LogLevel=ERROR "root@$a" "$@"
}

# Two fresh k8s hosts with sshd at LogLevel VERBOSE; sets hosts (addresses).
fresh_hosts() {
  "$testbed" down >>"$logs/testbed.log" 2>&1 || die "testbed down failed (log: $logs/testbed.log)"
  "$testbed" up --hosts 0 --k8s-hosts 2 --no-cluster >>"$logs/testbed.log" 2>&1 ||
    die "testbed up failed (log: $logs/testbed.log)"
  eval "$("$testbed" env)"
  read -r -a hosts <<<"$SELFHOST_TEST_K8S_HOSTS"
  hosts=("${hosts[@]%:*}")
  [ "${#hosts[@]}" -ge 2 ] || die "the bed has ${#hosts[@]} k8s hosts, not 2"
  local a
  for a in "${hosts[@]:0:2}"; do
    ssh_to "$a" 'printf "LogLevel VERBOSE\n" >/etc/ssh/sshd_config.d/90-bench-verbose.conf && systemctl reload ssh' ||
      die "sshd VERBOSE on $a"
  done
  sleep 1
}

mark_logs() {
  local i out
  marks=()
  for i in 0 1; do
    out="$(ssh_to "${hosts[$i]}" 'journalctl -u ssh -n 0 --show-cursor --no-pager')"
    marks[i]="$(sed -n 's/^-- cursor: //p' <<<"$out")"
    [ -n "${marks[$i]}" ] || die "no journal cursor from ${hosts[$i]}"
  done
}

# conns/execs/sftps per host since mark_logs, as "a/b" (host 1/host 2);
# with FROM and TO (epoch seconds) only the lines logged in that span.
count_logs() { # label [FROM TO]
  local i out self c=() e=() f=() from="${2:-0}" to="${3:-99999999999}"
  for i in 0 1; do
    # shellcheck disable=SC2016 # expanded on the host
    out="$(ssh_to "${hosts[$i]}" 'echo "self=${SSH_CONNECTION#* }"'"; journalctl -u ssh --no-pager -o short-unix --after-cursor '${marks[$i]}'")"
    self="$(sed -n 's/^self=\([0-9]*\) .*/\1/p' <<<"$out")"
    grep -v -e '^self=' -e " port $self " <<<"$out" |
      awk -v a="$from" -v b="$to" '$1 + 0 >= a && $1 + 0 <= b + 1' >"$logs/sshd-$1-$i.log" || true
    c[i]="$(grep -c 'Accepted publickey' "$logs/sshd-$1-$i.log" || true)"
    e[i]="$(grep -c 'Starting session: command' "$logs/sshd-$1-$i.log" || true)"
    f[i]="$(grep -c 'Starting session: subsystem' "$logs/sshd-$1-$i.log" || true)"
  done
  counted="${c[0]}/${c[1]} conn, ${e[0]}/${e[1]} exec, ${f[0]}/${f[1]} sftp"
}

write_terraform() {
  local dir="$work/selfhost"
  rm -rf "$dir"
  mkdir -p "$dir"
  cat >"$dir/main.tf" <<EOF
terraform {
  required_providers {
    selfhost = { source = "selfhost/selfhost" }
  }
}

provider "selfhost" {
  ssh {
    user        = "root"
    private_key = file("$SELFHOST_TEST_SSH_KEY")
  }
}

resource "selfhost_vps_host" "cp" {
  ssh_connection {
    host     = "${hosts[0]}"
    host_key = "$(host_key "${hosts[0]}")"
  }
  sysctl = { "net.ipv4.ip_forward" = "1" }
}

resource "selfhost_vps_host" "w1" {
  ssh_connection {
    host     = "${hosts[1]}"
    host_key = "$(host_key "${hosts[1]}")"
  }
  sysctl = { "net.ipv4.ip_forward" = "1" }
}

resource "selfhost_k8s_cluster" "main" {
  version = "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kubernetes"])' "$bundle/MANIFEST.json")"
  install {
    source = "bundle"
    bundle = "$bundle"
  }
  control_plane = selfhost_vps_host.cp.ssh
  workers       = [selfhost_vps_host.w1.ssh]
  pod_cidr      = "10.244.0.0/16"
  service_cidr  = "10.96.0.0/12"
  cni           = "flannel"

  # the by-hand steps install no add-on: both on by default, ≈ 30 s more
  # (metrics-server's readiness) when left on
  metrics_server             = false
  network_policy_enforcement = false
}
EOF
}

tf() { (cd "$work/selfhost" && TF_CLI_CONFIG_FILE="$work/cli.tfrc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 "$cli" "$@"); }

# --- the runs --------------------------------------------------------------

selfhost_run() { # round
  local t0 t1
  fresh_hosts
  write_terraform
  tf init -input=false -no-color >"$logs/selfhost-init-$1.log" 2>&1 || die "terraform init failed (log: $logs/selfhost-init-$1.log)"
  mark_logs
  load="$(cut -d' ' -f1 /proc/loadavg)"
  t0=$(now)
  TF_LOG_PROVIDER=INFO TF_LOG_PATH="$logs/selfhost-trace-$1.log" \
    tf apply -auto-approve -input=false -no-color >"$logs/selfhost-apply-$1.log" 2>&1 ||
    { failed "selfhost round $1" "$logs/selfhost-apply-$1.log"; return 1; }
  t1=$(now)
  count_logs "selfhost-$1"
  local ready
  ready="$(ssh_to "${hosts[0]}" "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes --no-headers" | awk '$2 == "Ready"' | wc -l)"
  [ "$ready" = 2 ] || die "selfhost round $1: $ready Ready nodes after apply"
  sh_uploads+=("$(upload_seconds "$logs/selfhost-trace-$1.log")")
  sh_times+=("$(elapsed "$t0" "$t1" 1)")
  sh_counts+=("$counted")
  sh_loads+=("$load")
  say "selfhost round $1: $(elapsed "$t0" "$t1" 1) s ($counted; load $load)"
}

# Seconds from the first "uploading N files" line of the provider's INFO
# log to the last "installing binaries" line (both hosts upload at once).
upload_seconds() { # log
  python3 - "$1" <<'PY'
import re, sys
from datetime import datetime
t = lambda l: datetime.strptime(re.match(r"(\S+?)Z? ", l).group(1)[:23], "%Y-%m-%dT%H:%M:%S.%f")
lines = open(sys.argv[1], errors="replace").read().splitlines()
up = [t(l) for l in lines if ": uploading " in l and " files (" in l]
done = [t(l) for l in lines if ": installing binaries and units" in l]
print(f"{(max(done) - min(up)).total_seconds():.0f}" if up and done else "?")
PY
}

hand_run() { # round
  local out secs
  fresh_hosts
  mark_logs
  load="$(cut -d' ' -f1 /proc/loadavg)"
  "$repo/testbed/selftest-kubeadm" --bootstrap-only --keep >"$logs/by-hand-$1.log" 2>&1 ||
    { failed "by hand round $1" "$logs/by-hand-$1.log"; return 1; }
  out="$(grep -m1 '^selftest-kubeadm: bootstrap: ' "$logs/by-hand-$1.log")" || die "no bootstrap time in $logs/by-hand-$1.log"
  secs="$(sed -E 's/^selftest-kubeadm: bootstrap: ([0-9]+) s.*/\1/' <<<"$out")"
  # only the sessions from the upload until every node was Ready: not the self-test's later checks and reset
  count_logs "by-hand-$1" "$(sed -E 's/.*\[([0-9]+)-([0-9]+)\]$/\1/' <<<"$out")" "$(sed -E 's/.*\[([0-9]+)-([0-9]+)\]$/\2/' <<<"$out")"
  hand_uploads+=("$(sed -n 's/.*bundle uploaded and verified on both hosts in \([0-9]*\)s.*/\1/p' "$logs/by-hand-$1.log")")
  hand_times+=("$secs")
  hand_counts+=("$counted")
  hand_loads+=("$load")
  say "by hand round $1: $secs s ($counted; load $load)"
}

# A run that fails is not counted: named under the table (with the first
# error line of its log, kept as LOG.tryN) and run again on fresh hosts,
# 3 tries. Seen on the bed: a k8s host's cgroup v1 subtree
# (/sys/fs/cgroup/cpu/<host>) gone right after `testbed up`, so its kubelet
# cannot start ("cgroup [...] has some missing paths").
failures=()
failed() { # label, log
  local why
  why="$(grep -m1 -E 'Error:|FATAL|FAIL|missing paths' "$2" | cut -c1-200 || true)"
  failures+=("$1: ${why:-see $2}")
  mv "$2" "$2.try${#failures[@]}"
  say "$1 FAILED (${why:-see $2}); again on fresh hosts"
}
attempt() { # function, round
  for _ in 1 2 3; do
    "$1" "$2" && return 0
  done
  die "$1 $2 failed 3 times: ${failures[*]}"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

sh_times=() sh_counts=() sh_loads=() sh_uploads=() hand_times=() hand_counts=() hand_loads=() hand_uploads=()
trap '"$testbed" down >>"$logs/testbed.log" 2>&1 || true' EXIT
for r in $(seq "$rounds"); do
  # alternate which side goes first, so a drift in the machine's load hits both
  if [ $((r % 2)) = 1 ]; then
    attempt selfhost_run "$r"
    attempt hand_run "$r"
  else
    attempt hand_run "$r"
    attempt selfhost_run "$r"
  fi
done

sh_med="$(median "${sh_times[@]}")"
hand_med="$(median "${hand_times[@]}")"
ratio="$(awk -v a="$sh_med" -v b="$hand_med" 'BEGIN { printf "%.2f", a / b }')"
{
  echo
  echo "Bootstrap of a 2-node kubeadm cluster (v1.36.3 bundle, flannel), bare hosts to every node Ready;"
  echo "$rounds rounds per side, fresh hosts each run; $cli_version; provider ${SELFHOST_BENCH_BINARY:-built at $(cd "$repo" && git rev-parse --short HEAD)}; $(nproc) cores"
  echo
  echo "| | selfhost (terraform apply) | by hand (plain shell over ssh) | ratio selfhost ÷ by hand |"
  echo "|---|---|---|---|"
  echo "| median | ${sh_med} s | ${hand_med} s | **${ratio}×** |"
  echo "| runs | ${sh_times[*]} s | ${hand_times[*]} s | |"
  echo "| of which the upload of the node files, both hosts at once | ${sh_uploads[*]} s | ${hand_uploads[*]} s | |"
  echo "| load (1 min) at start | ${sh_loads[*]} | ${hand_loads[*]} | |"
  echo "| SSH per host (cp/worker), last round | ${sh_counts[-1]} | ${hand_counts[-1]} | |"
  echo
  echo "Target: within 1.2× of by hand: $(awk -v r="$ratio" 'BEGIN { print (r <= 1.2 ? "met" : "NOT met") }')"
  if [ "${#failures[@]}" -gt 0 ]; then
    echo
    echo "Runs that failed and were run again (not counted):"
    printf -- '- %s\n' "${failures[@]}"
  fi
} | tee "$work/result.md"
say "done; logs in $logs"
