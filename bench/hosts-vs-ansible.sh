#!/usr/bin/env bash
# The same host hardening done two ways on N fresh test-bed hosts, timed
# and counted: a `selfhost_vps_host` configuration applied by a real
# Terraform CLI, and an ansible-core playbook.
#
#   bench/hosts-vs-ansible.sh [N]        N hosts per tool (default 3; the bed gets 2N)
#
# The hardening, identical in both: host name, time zone Europe/Paris, the
# packages jq and tree (apt, through the bed's apt proxy), the sysctl
# net.ipv4.ip_forward = 1 (file and live value), an admin user `ops` with
# one authorized key and passwordless sudo (checked by visudo), an sshd
# drop-in (no passwords, root by key only) checked by `sshd -t` before sshd
# is reloaded, and the nftables table `inet selfhost` allowing tcp 22, 80
# and 443 (loaded now, and at boot by a oneshot unit).
#
# What it does:
#   1. builds the provider (cargo build --release) into a filesystem mirror
#      (scripts/install-provider), installs ansible-core from PyPI into a venv
#      cached by version under ~/.cache/selfhost-bench/, takes the newest
#      Terraform of `testbed clis`;
#   2. brings up a test bed of 2N fresh hosts (testbed up --hosts 2N
#      --no-cluster): the first N for selfhost, the other N for ansible
#      (disjoint: both tools write the same files); prepares every host the
#      same way, NOT timed: sshd at LogLevel VERBOSE (so its log has a line
#      per exec), apt lists updated, python3 and python3-apt installed (what
#      ansible needs on a host), jq and tree fetched once into the apt
#      proxy's cache (then removed from the host), systemd-hostnamed kept
#      running (a bed workaround, see PREPARE);
#   3. first apply, one run each, one after the other: `terraform apply`
#      (after an untimed `terraform init`) on the selfhost hosts, then
#      `ansible-playbook` on the ansible hosts; then every host is checked
#      over plain ssh to hold the hardening (the same check for both);
#   4. no-op: one counted run each (connections and execs), then RUNS
#      rounds of `terraform plan` (refresh on; must plan no change) followed
#      by an `ansible-playbook` re-run (must report changed=0) that starts
#      with no SSH connection (a new ControlPath directory), as the
#      provider does; the ratio is taken round by round, so a change in the
#      machine's load hits both sides of a pair alike;
#   5. RUNS more rounds of plan and ansible re-run, the ansible runs reusing
#      the ControlPersist connections the run before left open;
#   6. the bed down; the table printed (also written to $work/result.md).
#
# A run that fails is not counted: it is named under the table and run
# again (3 tries). Seen before the keep-alive of step 2 (see PREPARE):
# ansible's hostname task timing out on systemd-hostnamed's activation.
#
# SSH connections and execs per host are counted in each host's sshd log
# (journalctl -u ssh, LogLevel VERBOSE): "Accepted publickey" lines are
# connections, "Starting session: command" lines execs, "Starting session:
# subsystem" lines file transfers (sftp); the reading sessions' own lines
# are left out.
#
# Ansible: ansible-core's defaults (ssh connection with ControlMaster=auto
# and ControlPersist=60s, interpreter discovery, linear strategy) plus
# pipelining = True and forks = N (all hosts at once, as Terraform's default
# parallelism of 10 does); the play sets gather_facts: false (no task reads
# a fact). ansible.builtin modules only.
#
# Environment:
#   SELFHOST_BENCH_RUNS           timed no-op rounds (default 5)
#   SELFHOST_BENCH_ANSIBLE_CORE   ansible-core version (default 2.19.14, the
#                                 newest for this machine's Python 3.11)
#   SELFHOST_BENCH_DIR            work directory (default target/bench-hosts-vs-ansible)
#   SELFHOST_BENCH_BINARY         use this provider binary instead of building
#   SELFHOST_BENCH_CLI            the Terraform binary (default: newest of `testbed clis`)
#   SELFHOST_BENCH_KEEP_BED=1     leave the bed up at the end
#   SELFHOST_TESTBED_INSTANCE     the bed instance used (default 6: the bench
#                                 brings it down and up, so it is not the
#                                 default bed 0 that tests use)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-3}"
case "$n" in '' | *[!0-9]*) echo "usage: $0 [N]" >&2; exit 2 ;; esac
[ "$n" -ge 1 ] || { echo "usage: $0 [N], N >= 1" >&2; exit 2; }
runs="${SELFHOST_BENCH_RUNS:-5}"
ansible_version="${SELFHOST_BENCH_ANSIBLE_CORE:-2.19.14}"
export SELFHOST_TESTBED_INSTANCE="${SELFHOST_TESTBED_INSTANCE:-6}"
testbed="$repo/testbed/testbed"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
bench_workdir "$repo/target/bench-hosts-vs-ansible"

# --- the tools -------------------------------------------------------------

prepare_selfhost() {
  install_our_provider "$work/cli.tfrc"

  cli="${SELFHOST_BENCH_CLI:-}"
  if [ -z "$cli" ]; then
    # `testbed clis` lists terraform 1.0.3, 1.8.5, tofu, terraform 1.13.3.
    cli="$("$testbed" clis 2>>"$logs/testbed.log" | grep '/terraform-[^/]*/terraform$' | tail -n1)"
  fi
  [ -x "$cli" ] || die "no Terraform CLI ($cli)"
  cli_version="$(TF_CLI_CONFIG_FILE="$work/cli.tfrc" "$cli" version)"
  cli_version="${cli_version%%$'\n'*}" # Terraform v1.13.3
}

prepare_ansible() {
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/selfhost-bench/ansible-core-$ansible_version"
  if [ ! -f "$venv/.complete" ]; then
    say "ansible-core $ansible_version from PyPI into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "ansible-core==$ansible_version"
    touch "$venv/.complete"
  fi
  ansible_line="$("$venv/bin/ansible-playbook" --version 2>/dev/null)"
  ansible_line="${ansible_line%%$'\n'*}" # ansible-playbook [core 2.19.14]
}

# --- the test bed ----------------------------------------------------------

bed_ssh() { # address, command...
  local addr="$1"
  shift
  ssh -i "$SELFHOST_TEST_SSH_KEY" -o UserKnownHostsFile="$SELFHOST_TEST_KNOWN_HOSTS" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10 -o LogLevel=ERROR \
    -o ControlMaster=no -o ControlPath=none "root@$addr" "$@"
}

# Run a script (stdin of this function) on every host at once; fail naming
# the hosts where it failed.
on_all_hosts() { # label
  local label="$1" script pids=() failed="" i
  script="$(cat)"
  for i in "${!hosts[@]}"; do
    bed_ssh "${hosts[$i]}" sh -s >"$logs/$label-$i.log" 2>&1 <<<"$script" &
    pids+=("$!")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed="$failed ${hosts[$i]}"
  done
  [ -z "$failed" ] || die "$label failed on:$failed (logs: $logs/$label-*.log)"
}

# What each host gets before either tool runs (not timed). The last line
# works around the bed: in its nspawn hosts (cgroup v1 hybrid) a unit
# started again soon after it stopped may fail with "Failed to attach to
# cgroup ...: No such file or directory" (status 219/CGROUP), and
# dbus-daemon then waits 25 s for the activation: ansible's hostname task
# (hostnamectl over D-Bus) failed that way whenever the idle
# systemd-hostnamed (it exits 30 s after its last call) had to start
# again. A call every 10 s keeps it running, as it would start in
# milliseconds on a VPS. Same on both tools' hosts.
# shellcheck disable=SC2016 # run on the host
readonly PREPARE='set -eu
printf "LogLevel VERBOSE\n" > /etc/ssh/sshd_config.d/90-bench-verbose.conf
systemctl reload ssh
i=0; while [ $i -lt 50 ] && ! ss -ltn | grep -q ":22 "; do sleep 0.1; i=$((i + 1)); done
export DEBIAN_FRONTEND=noninteractive
apt-get -q -y update
apt-get -q -y install --no-install-recommends python3 python3-apt
apt-get -q -y install --no-install-recommends --download-only jq tree
apt-get clean
systemd-run --quiet --unit=bench-hostnamed-keepalive sh -c "while :; do hostnamectl --static >/dev/null 2>&1; sleep 10; done"
'

bed_down() {
  "$testbed" down >>"$logs/testbed.log" 2>&1 || die "testbed down failed (log: $logs/testbed.log)"
}

# A bed of 2N fresh hosts, prepared: sh_hosts and an_hosts, N each.
fresh_bed() {
  say "test bed instance $SELFHOST_TESTBED_INSTANCE: down, up with $((2 * n)) fresh hosts"
  bed_down
  "$testbed" up --hosts "$((2 * n))" --no-cluster >>"$logs/testbed.log" 2>&1 ||
    die "testbed up failed (log: $logs/testbed.log)"
  eval "$("$testbed" env)"
  read -r -a hosts <<<"$SELFHOST_TEST_HOSTS"
  [ "${#hosts[@]}" -eq "$((2 * n))" ] || die "the bed has ${#hosts[@]} hosts, not $((2 * n))"
  hosts=("${hosts[@]%:*}") # addresses (all on port 22)
  sh_hosts=("${hosts[@]:0:n}")
  an_hosts=("${hosts[@]:n:n}")
  pubkey="$(cat "$SELFHOST_TEST_SSH_KEY.pub")"
  say "preparing the hosts (LogLevel VERBOSE, apt lists, python3, apt proxy cache; not timed)"
  on_all_hosts prepare <<<"$PREPARE"
}

# The hosts the functions below work on: one tool's set.
use_hosts() { # selfhost | ansible
  case "$1" in
    selfhost) hosts=("${sh_hosts[@]}") ;;
    ansible) hosts=("${an_hosts[@]}") ;;
  esac
}

# --- sshd's log ------------------------------------------------------------

# Remember where each host's sshd log ends now.
mark_logs() {
  local i out
  marks=()
  for i in "${!hosts[@]}"; do
    # shellcheck disable=SC2016 # expanded on the host
    out="$(bed_ssh "${hosts[$i]}" 'echo "self=${SSH_CONNECTION#* }"; journalctl -u ssh -n 0 --show-cursor --no-pager')"
    marks[i]="$(sed -n 's/^-- cursor: //p' <<<"$out")"
    mark_ports[i]="$(sed -n 's/^self=\([0-9]*\) .*/\1/p' <<<"$out")"
    [ -n "${marks[$i]}" ] || die "no journal cursor from ${hosts[$i]}: $out"
  done
}

# Count, per host, what sshd logged since mark_logs; sets conns, execs, sftps
# (one number per host) and writes the lines to $logs/sshd-LABEL-i.log.
count_logs() { # label
  local i out self
  conns=()
  execs=()
  sftps=()
  for i in "${!hosts[@]}"; do
    out="$(bed_ssh "${hosts[$i]}" "echo \"self=\${SSH_CONNECTION#* }\"; journalctl -u ssh --no-pager -o cat --after-cursor '${marks[$i]}'")"
    self="$(sed -n 's/^self=\([0-9]*\) .*/\1/p' <<<"$out")"
    # Leave out the marking and the reading sessions (their client ports).
    grep -v -e '^self=' -e " port $self " -e " port ${mark_ports[$i]} " <<<"$out" >"$logs/sshd-$1-$i.log" || true
    conns[i]="$(grep -c 'Accepted publickey' "$logs/sshd-$1-$i.log" || true)"
    execs[i]="$(grep -c 'Starting session: command' "$logs/sshd-$1-$i.log" || true)"
    sftps[i]="$(grep -c 'Starting session: subsystem' "$logs/sshd-$1-$i.log" || true)"
  done
}

# "3" when every host has 3, else "3–5" (min–max over the hosts).
span() {
  printf '%s\n' "$@" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print (lo == hi ? lo : lo "–" hi) }'
}

# --- checking a host (same for both tools) ---------------------------------

# shellcheck disable=SC2016 # run on the host
readonly CHECK='set -eu
fail() { echo "NOT HARDENED: $*" >&2; exit 1; }
[ "$(hostname)" = "$1" ] || fail "hostname $(hostname)"
[ "$(cat /etc/hostname)" = "$1" ] || fail "/etc/hostname"
grep -q "^127\.0\.1\.1[[:space:]]*$1\$" /etc/hosts || fail "/etc/hosts"
[ "$(readlink /etc/localtime)" = /usr/share/zoneinfo/Europe/Paris ] || fail "localtime"
[ "$(cat /etc/timezone)" = Europe/Paris ] || fail "/etc/timezone"
for p in jq tree; do dpkg-query -W -f="\${Status}" "$p" 2>/dev/null | grep -q "install ok installed" || fail "package $p"; done
[ "$(sysctl -n net.ipv4.ip_forward)" = 1 ] || fail "sysctl live"
grep -q "^net.ipv4.ip_forward = 1$" /etc/sysctl.d/99-selfhost.conf || fail "sysctl file"
[ "$(cat ~ops/.ssh/authorized_keys)" = "$2" ] || fail "authorized_keys"
[ "$(stat -c %a ~ops/.ssh/authorized_keys)" = 600 ] || fail "authorized_keys mode"
sudo -l -U ops | grep -q "NOPASSWD: ALL" || fail "sudo"
sshd -T | grep -qx "passwordauthentication no" || fail "sshd passwords"
sshd -T | grep -qx "kbdinteractiveauthentication no" || fail "sshd kbdinteractive"
sshd -T | grep -Eqx "permitrootlogin (without-password|prohibit-password)" || fail "sshd root login"
t=$(nft list table inet selfhost) || fail "no nft table"
for p in 22 80 443; do echo "$t" | grep -q "tcp dport $p accept" || fail "port $p"; done
echo "$t" | grep -q "drop comment" || fail "final drop"
systemctl is-enabled --quiet selfhost-firewall.service || fail "firewall unit"
echo hardened
'

check_hosts() { # label
  local i pids=() failed=""
  for i in "${!hosts[@]}"; do
    bed_ssh "${hosts[$i]}" sh -s "bench-$((i + 1))" "'$pubkey'" <<<"$CHECK" >"$logs/$1-check-$i.log" 2>&1 &
    pids+=("$!")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed="$failed ${hosts[$i]}"
  done
  [ -z "$failed" ] || die "$1: hosts not hardened:$failed (logs: $logs/$1-check-*.log)"
  say "$1: every host holds the hardening (checked over plain ssh)"
}

# --- statistics ------------------------------------------------------------

# "median min max" of the numbers given.
stats() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.3f %.3f %.3f", m, v[1], v[NR] }'
}

fmt_s() { awk -v s="$1" 'BEGIN { printf(s < 10 ? "%.2f s" : "%.1f s", s) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f×", a / b; else print "—" }'; }

# --- selfhost --------------------------------------------------------------

write_terraform() {
  local dir="$1" i addr
  mkdir -p "$dir"
  {
    cat <<EOF
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

locals {
  hosts = {
EOF
    for i in "${!hosts[@]}"; do
      addr="${hosts[$i]}"
      printf '    "bench-%d" = { address = "%s", host_key = "%s" }\n' "$((i + 1))" "$addr" "$(host_key "$addr")"
    done
    cat <<EOF
  }
}

resource "selfhost_vps_host" "h" {
  for_each = local.hosts
  ssh_connection {
    host     = each.value.address
    host_key = each.value.host_key
  }
  hostname = each.key
  timezone = "Europe/Paris"
  packages = ["jq", "tree"]
  sysctl   = { "net.ipv4.ip_forward" = "1" }
  admin_user {
    name            = "ops"
    authorized_keys = ["$pubkey"]
    sudo            = true
  }
  ssh_hardening {
    password_authentication = false
    permit_root_login       = "prohibit-password"
  }
  firewall {
    allow { port = "22" }
    allow { port = "80" }
    allow { port = "443" }
  }
}
EOF
  } >"$dir/main.tf"
}

tf() { (cd "$work/selfhost" && TF_CLI_CONFIG_FILE="$work/cli.tfrc" TF_IN_AUTOMATION=1 "$cli" "$@"); }

# --- runs that may fail ---------------------------------------------------

# Why a run failed: the first error lines of its log, on one line.
failure_of() { # log
  grep -E '^fatal:|Error:' "$1" | head -n3 | cut -c1-300 | tr '\n' ' ' || true
}

# Run "$@" (a function taking a log file) until it succeeds, at most
# `tries` times. A failed run is reported in the table and not counted.
# Sets run_log (the log of the run that succeeded) and run_time (its wall
# time in seconds). The counted runs mark sshd's logs before each try.
failures=()
attempt() { # side, label, tries, function...
  local side="$1" label="$2" tries="$3" k=0 t0 t1
  shift 3
  while :; do
    k=$((k + 1))
    run_log="$logs/$side-$label-$k.log"
    if [ "$label" = counted ]; then
      use_hosts "$side"
      mark_logs
    fi
    t0=$(now)
    if "$@" "$run_log"; then
      t1=$(now)
      run_time=$(elapsed "$t0" "$t1")
      return 0
    fi
    failures+=("$side $label (try $k): $(failure_of "$run_log")")
    say "$side: $label run FAILED, not counted (log: $run_log): $(failure_of "$run_log")"
    [ "$k" -lt "$tries" ] || die "$side: $label failed $k times"
    sleep 5
  done
}

# The no-op counted: sets noop_conns, noop_execs, noop_sftps (spans) and
# noop_conns_list, noop_execs_list (per host).
counted_noop() { # side (selfhost | ansible), function
  attempt "$1" counted 3 "$2"
  count_logs "$1-noop"
  noop_conns=$(span "${conns[@]}")
  noop_execs=$(span "${execs[@]}")
  noop_sftps=$(span "${sftps[@]}")
  noop_conns_list="${conns[*]}"
  noop_execs_list="${execs[*]}"
}

# RUNS rounds of a no-op plan, then an ansible no-op run (function given);
# sets a_times (plan), b_times (ansible) and ratios (ansible / plan, by round).
rounds() { # label, ansible function
  local i
  a_times=()
  b_times=()
  ratios=()
  for i in $(seq "$runs"); do
    attempt selfhost "$1$i" 3 noop_plan
    a_times+=("$run_time")
    attempt ansible "$1$i" 3 "$2"
    b_times+=("$run_time")
    ratios+=("$(awk -v a="${a_times[-1]}" -v b="$run_time" 'BEGIN { printf "%.3f", b / a }')")
  done
}

# --- selfhost --------------------------------------------------------------

# A no-op `terraform plan` (refresh on): it must plan no change.
noop_plan() { # log
  local code=0
  tf plan -detailed-exitcode -input=false -no-color >"$1" 2>&1 || code=$?
  [ "$code" -ne 2 ] || die "the no-op plan is not empty (log: $1)"
  return "$code"
}

first_apply() { # log
  tf apply -auto-approve -input=false -no-color >"$1" 2>&1
}

# --- ansible ---------------------------------------------------------------

write_ansible() {
  local dir="$1" i
  mkdir -p "$dir"
  cat >"$dir/ansible.cfg" <<EOF
[defaults]
inventory = $dir/inventory.ini
forks = $n
retry_files_enabled = False

[ssh_connection]
pipelining = True
EOF
  {
    echo "[bench]"
    for i in "${!hosts[@]}"; do
      echo "${hosts[$i]} bench_hostname=bench-$((i + 1))"
    done
    cat <<EOF

[bench:vars]
ansible_user=root
ansible_ssh_private_key_file=$SELFHOST_TEST_SSH_KEY
ansible_ssh_common_args='-o UserKnownHostsFile=$SELFHOST_TEST_KNOWN_HOSTS -o StrictHostKeyChecking=yes'
admin_key='$pubkey'
EOF
  } >"$dir/inventory.ini"
  cp "$repo/bench/hosts-vs-ansible.yml" "$dir/site.yml"
}

# One ansible-playbook run; ssh's ControlPersist masters live in the
# ControlPath directory given (a new directory: no open connection).
playbook() { # control path directory, log
  ANSIBLE_CONFIG="$work/ansible/ansible.cfg" ANSIBLE_SSH_CONTROL_PATH_DIR="$1" ANSIBLE_NOCOLOR=1 \
    "$venv/bin/ansible-playbook" "$work/ansible/site.yml" >"$2" 2>&1
}

# The run changed nothing on any host (its PLAY RECAP).
expect_unchanged() { # log
  local bad
  bad="$(grep -E '^[0-9.]+ +: ok=' "$1" | grep -v 'changed=0 ' || true)"
  [ -z "$bad" ] || die "the no-op ansible run changed something (log: $1): $bad"
  [ "$(grep -cE '^[0-9.]+ +: ok=' "$1")" -eq "$n" ] || die "no recap for $n hosts in $1"
}

first_playbook() { # log
  playbook "$cp/apply" "$1"
}

# A no-op run with no connection open: a new ControlPath directory each.
cp_seq=0
noop_playbook_cold() { # log
  cp_seq=$((cp_seq + 1))
  playbook "$cp/cold-$cp_seq" "$1" || return 1
  expect_unchanged "$1"
}

# A no-op run reusing the connections the run before left open.
noop_playbook_warm() { # log
  playbook "$cp/warm" "$1" || return 1
  expect_unchanged "$1"
}

# --- the bench -------------------------------------------------------------

run_bench() {
  local cp
  fresh_bed
  cp="$(mktemp -d /tmp/bench-cp.XXXXXX)" # short: ssh's ControlPath is a socket path

  use_hosts selfhost
  rm -rf "$work/selfhost"
  write_terraform "$work/selfhost"
  tf init -input=false -no-color >"$logs/selfhost-init.log" 2>&1 || die "terraform init failed (log: $logs/selfhost-init.log)"
  say "selfhost: first apply on $n fresh hosts"
  sh_load="$(cut -d' ' -f1-3 /proc/loadavg)"
  mark_logs
  attempt selfhost apply 1 first_apply
  sh_first=$run_time
  count_logs selfhost-apply
  sh_first_conns=$(span "${conns[@]}")
  sh_first_execs=$(span "${execs[@]}")
  sh_first_sftps=$(span "${sftps[@]}")
  say "selfhost: first apply $(fmt_s "$sh_first"); per host $sh_first_conns connection(s), $sh_first_execs exec(s)"
  check_hosts selfhost

  use_hosts ansible
  rm -rf "$work/ansible"
  write_ansible "$work/ansible"
  say "ansible: first run on $n fresh hosts"
  an_load="$(cut -d' ' -f1-3 /proc/loadavg)"
  mark_logs
  attempt ansible apply 1 first_playbook
  an_first=$run_time
  count_logs ansible-apply
  an_first_conns=$(span "${conns[@]}")
  an_first_execs=$(span "${execs[@]}")
  an_first_sftps=$(span "${sftps[@]}")
  say "ansible: first run $(fmt_s "$an_first"); per host $an_first_conns connection(s), $an_first_execs exec(s), $an_first_sftps sftp"
  check_hosts ansible

  say "no-op: one counted run each"
  counted_noop selfhost noop_plan
  sh_noop_conns=$noop_conns sh_noop_execs=$noop_execs sh_noop_sftps=$noop_sftps
  sh_noop_conns_list=$noop_conns_list sh_noop_execs_list=$noop_execs_list
  counted_noop ansible noop_playbook_cold
  an_noop_conns=$noop_conns an_noop_execs=$noop_execs an_noop_sftps=$noop_sftps
  say "no-op per host: selfhost $sh_noop_conns connection(s), $sh_noop_execs exec(s); ansible $an_noop_conns, $an_noop_execs"

  say "no-op: $runs rounds of terraform plan, then ansible-playbook with no open connection"
  rounds noop noop_playbook_cold
  sh_noop=("${a_times[@]}") an_noop=("${b_times[@]}") an_ratios=("${ratios[@]}")
  read -r sh_med sh_min sh_max <<<"$(stats "${sh_noop[@]}")"
  read -r an_med an_min an_max <<<"$(stats "${an_noop[@]}")"
  read -r r_med r_min r_max <<<"$(stats "${an_ratios[@]}")"
  say "no-op: selfhost ${sh_noop[*]}; ansible ${an_noop[*]}; ratios ${an_ratios[*]}"

  say "no-op: $runs rounds of terraform plan, then ansible-playbook reusing the connections of its run before"
  noop_playbook_warm "$logs/ansible-warm-opening.log" || true # opens them
  rounds warm noop_playbook_warm
  sh_noop2=("${a_times[@]}") aw_noop=("${b_times[@]}") aw_ratios=("${ratios[@]}")
  read -r sh2_med sh2_min sh2_max <<<"$(stats "${sh_noop2[@]}")"
  read -r aw_med aw_min aw_max <<<"$(stats "${aw_noop[@]}")"
  read -r rw_med rw_min rw_max <<<"$(stats "${aw_ratios[@]}")"
  say "no-op: selfhost ${sh_noop2[*]}; ansible (open connections) ${aw_noop[*]}; ratios ${aw_ratios[*]}"
  rm -rf "$cp"
}

# --- the report ------------------------------------------------------------

verdict() { # condition text
  if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "NOT met"; fi
}

report() {
  local want_ratio=20
  [ "$n" -ge 10 ] && want_ratio=30
  cat <<EOF

hosts-vs-ansible: the same hardening on $n fresh test-bed hosts per tool (Debian 12, systemd-nspawn, real sshd), $(date -u +%Y-%m-%d)
selfhost: $cli_version, terraform-provider-selfhost $provider_version (release build, $provider_commit)
ansible: ansible-core $(sed -n 's/.*\[core \([^]]*\)\].*/\1/p' <<<"$ansible_line") (ansible-playbook), defaults + pipelining=True, forks=$n, ControlPersist=60s (default), gather_facts: false
machine: $(nproc) cores, shared; load averages (1, 5, 15 min) at the first applies: selfhost $sh_load, ansible $an_load
no-op: \`terraform plan\` (refresh on) vs \`ansible-playbook\` re-run, $runs rounds (plan, then ansible); times median [min–max], ratio the median [min–max] of the rounds' ratios

| | selfhost | ansible | ratio (ansible / selfhost) |
|---|---|---|---|
| first apply (1 run each) | $(fmt_s "$sh_first") | $(fmt_s "$an_first") | $(ratio "$an_first" "$sh_first") |
| no-op (each run opens its connections) | $(fmt_s "$sh_med") [$(fmt_s "$sh_min")–$(fmt_s "$sh_max")] | $(fmt_s "$an_med") [$(fmt_s "$an_min")–$(fmt_s "$an_max")] | $(printf '%.1f× [%.1f–%.1f]' "$r_med" "$r_min" "$r_max") |
| no-op, ansible reusing the connections of its run before | $(fmt_s "$sh2_med") [$(fmt_s "$sh2_min")–$(fmt_s "$sh2_max")] | $(fmt_s "$aw_med") [$(fmt_s "$aw_min")–$(fmt_s "$aw_max")] | $(printf '%.1f× [%.1f–%.1f]' "$rw_med" "$rw_min" "$rw_max") |
| connections/host, no-op | $sh_noop_conns | $an_noop_conns | |
| execs/host, no-op | $sh_noop_execs | $an_noop_execs | |
| sftp transfers/host, no-op | $sh_noop_sftps | $an_noop_sftps | |
| connections/host, first apply | $sh_first_conns | $an_first_conns | |
| execs/host, first apply | $sh_first_execs | $an_first_execs | |
| sftp transfers/host, first apply | $sh_first_sftps | $an_first_sftps | |

targets:
- no-op >= ${want_ratio}× faster at $n hosts: $(printf '%.1f×' "$r_med") (median of the rounds) — $(verdict "$r_med >= $want_ratio")
- exactly 1 connection + 1 exec per host on the no-op plan: connections per host [$sh_noop_conns_list], execs per host [$sh_noop_execs_list] — $(verdict "\"$sh_noop_conns\" == \"1\" && \"$sh_noop_execs\" == \"1\"")
- first apply faster: $(ratio "$an_first" "$sh_first") — $(verdict "$an_first > $sh_first")
EOF
  if [ "${#failures[@]}" -gt 0 ]; then
    echo
    echo "runs that failed (not counted; run again):"
    printf -- '- %s\n' "${failures[@]}"
  fi
}

cleanup() {
  if [ "${SELFHOST_BENCH_KEEP_BED:-}" = 1 ]; then
    say "leaving test bed instance $SELFHOST_TESTBED_INSTANCE up (SELFHOST_BENCH_KEEP_BED=1)"
  else
    say "test bed instance $SELFHOST_TESTBED_INSTANCE down"
    "$testbed" down >>"$logs/testbed.log" 2>&1 || true
  fi
}

trap cleanup EXIT
prepare_selfhost
prepare_ansible
run_bench
report | tee "$work/result.md"
say "done (logs: $logs)"
