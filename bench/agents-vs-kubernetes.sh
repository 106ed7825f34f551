#!/usr/bin/env bash
# N agents (each a Deployment + Service + ConfigMap + Secret) created and
# refreshed two ways against the same real kube-apiserver by the same
# Terraform CLI: `selfhost_agent` of this provider, and the same four
# objects as kubernetes_deployment, kubernetes_service, kubernetes_config_map
# and kubernetes_secret of HashiCorp's kubernetes provider (built from the Go
# module proxy). Timed, counted (API requests, TCP connections) and weighed
# (the provider plugin's peak RSS).
#
#   bench/agents-vs-kubernetes.sh [N]    N agents per apply (default 50)
#
# What it does:
#   1. builds our provider (cargo build --release) into a filesystem mirror
#      (scripts/install-provider) and HashiCorp's into the same mirror: the
#      Go module proxy serves github.com/hashicorp/terraform-provider-kubernetes
#      only up to v1.13.4 (v2.x is refused); its go.mod has replace
#      directives, so it is built from a copy of the module as the main
#      module, with one more replace: vbom.ml/util (refused by the proxy) by
#      a local module holding github.com/fvbommel/sortorder v1.0.1, the same
#      package under its new name. Cached by version under
#      ~/.cache/selfhost-bench/terraform-provider-kubernetes-VERSION/. The
#      CLI is the bed's newest Terraform (`testbed clis`: 1.13.3); both
#      providers are installed from the mirror by `terraform init` (a CLI
#      config file in the work directory; nothing global is touched);
#   2. brings up a test bed with the Kubernetes control plane and no hosts
#      (testbed up --hosts 0: kube-apiserver v1.36.3, etcd, controller
#      manager, scheduler, kwok nodes), and starts bench/delay-relay.py: a
#      TCP relay to the API server that holds every chunk 5 ms in each
#      direction (~10 ms more per round trip; TLS passes through untouched,
#      the server certificate's SAN 127.0.0.1 still matches). The kernel has
#      no netem (no loadable modules), hence the userspace relay;
#   3. for each network, loopback (the API server's own address) and
#      +10 ms RTT (the relay):
#      a. RUNS rounds of: `terraform apply` of N agents with ours, then with
#         theirs, each into a fresh namespace (made beforehand, untimed) from
#         an empty state; neither waits for the rollout
#         (`wait_for_rollout = false` on both);
#      b. one apply of PLAN_N agents per provider (timed, 1 run), then RUNS
#         rounds of a no-change `terraform plan` (refresh on; it must plan no
#         change) with ours, then with theirs;
#      each run goes through bench/peak-rss.py: its wall time, and the
#      provider plugin's peak RSS (VmHWM, read every 10 ms while it runs);
#      the API requests of the first run of each kind are counted from the
#      API server's apiserver_request_total (GET /metrics before and after,
#      the four kinds only, sub-resources and the controllers' LIST/WATCH/
#      UPDATE left out), the TCP connections from the relay's log;
#      the namespaces of a phase are deleted after it (untimed);
#   4. the bed down; the table printed (also written to $work/result.md).
#
# The objects, as alike as the two providers allow: the Deployment (1
# replica, image registry.example/agent:1.0, non-root uid 65532, read-only
# root filesystem, every capability dropped, no privilege escalation, no
# service account token, an emptyDir /tmp, the ConfigMap mounted at /config,
# env LOG_LEVEL and the Secret's API_KEY), its ClusterIP Service (port 8080),
# the ConfigMap (one file) and the Secret (one key). Ours also writes its
# labels and last-applied annotation and a RuntimeDefault seccomp profile
# (v1.13.4 has no seccomp field).
#
# Environment:
#   SELFHOST_BENCH_RUNS           rounds per measurement (default 3)
#   SELFHOST_BENCH_PLAN_AGENTS    agents for the no-change plan (default 200)
#   SELFHOST_BENCH_DELAY_MS       relay delay per direction (default 5)
#   SELFHOST_BENCH_K8S_PROVIDER   hashicorp/kubernetes version (default 1.13.4)
#   SELFHOST_BENCH_DIR            work directory (default target/bench-agents-vs-kubernetes)
#   SELFHOST_BENCH_BINARY         use this provider binary instead of building
#   SELFHOST_BENCH_CLI            the Terraform binary (default: newest of `testbed clis`)
#   SELFHOST_BENCH_KEEP_BED=1     leave the bed up at the end
#   SELFHOST_TESTBED_INSTANCE     the bed instance used (default 6: the bench
#                                 brings it down and up, so it is not the
#                                 default bed 0 that tests use)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-50}"
case "$n" in '' | *[!0-9]*) echo "usage: $0 [N]" >&2; exit 2 ;; esac
[ "$n" -ge 1 ] || { echo "usage: $0 [N], N >= 1" >&2; exit 2; }
runs="${SELFHOST_BENCH_RUNS:-3}"
plan_n="${SELFHOST_BENCH_PLAN_AGENTS:-200}"
delay_ms="${SELFHOST_BENCH_DELAY_MS:-5}"
k8s_version="${SELFHOST_BENCH_K8S_PROVIDER:-1.13.4}"
export SELFHOST_TESTBED_INSTANCE="${SELFHOST_TESTBED_INSTANCE:-6}"
testbed="$repo/testbed/testbed"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
bench_workdir "$repo/target/bench-agents-vs-kubernetes"
rm -rf "$work/runs"
mkdir -p "$work/runs"

# --- the providers ---------------------------------------------------------

# HashiCorp's provider from the Go module proxy, built once per version.
prepare_theirs() {
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/selfhost-bench/terraform-provider-kubernetes-$k8s_version"
  local bin="$cache/terraform-provider-kubernetes_v$k8s_version"
  if [ ! -x "$bin" ]; then
    say "hashicorp/kubernetes $k8s_version from the Go module proxy into $cache (a few CPU-minutes)"
    local mod dir sortorder
    mod="github.com/hashicorp/terraform-provider-kubernetes@v$k8s_version"
    dir="$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$mod" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
    [ -d "$dir" ] || die "go mod download $mod failed"
    rm -rf "$cache/src"
    mkdir -p "$cache"
    cp -r "$dir" "$cache/src"
    chmod -R u+w "$cache/src"
    # vbom.ml/util (a vanity path the proxy refuses) is
    # github.com/fvbommel/sortorder now: a local module under the old path.
    sortorder="$(cd /tmp && go mod download -json github.com/fvbommel/sortorder@v1.0.1 | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
    mkdir -p "$cache/src/_vbom/sortorder"
    cp "$sortorder"/doc.go "$sortorder"/natsort.go "$cache/src/_vbom/sortorder/"
    printf 'module vbom.ml/util\n\ngo 1.12\n' >"$cache/src/_vbom/go.mod"
    echo 'replace vbom.ml/util => ./_vbom' >>"$cache/src/go.mod"
    (cd "$cache/src" && GOFLAGS=-mod=mod GOTOOLCHAIN=local nice -n 10 go build -o "$bin.tmp" .) \
      >"$logs/build-kubernetes-provider.log" 2>&1 || die "building $mod failed (log: $logs/build-kubernetes-provider.log)"
    mv "$bin.tmp" "$bin"
  fi
  local dest="$work/mirror/registry.terraform.io/hashicorp/kubernetes/$k8s_version/linux_amd64"
  mkdir -p "$dest"
  cp "$bin" "$dest/"
  theirs_version="$k8s_version"
}

write_cli_config() {
  cat >"$work/cli.tfrc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$work/mirror"
    include = ["registry.terraform.io/selfhost/selfhost", "registry.terraform.io/hashicorp/kubernetes"]
  }
}
EOF
  cli="${SELFHOST_BENCH_CLI:-}"
  if [ -z "$cli" ]; then
    cli="$("$testbed" clis 2>>"$logs/testbed.log" | grep '/terraform-[^/]*/terraform$' | tail -n1)"
  fi
  [ -x "$cli" ] || die "no Terraform CLI ($cli)"
  cli_version="$(TF_CLI_CONFIG_FILE="$work/cli.tfrc" "$cli" version)"
  cli_version="${cli_version%%$'\n'*}" # Terraform v1.13.3
}

# --- the bed and the relay -------------------------------------------------

relay_pid=""
bed_up() {
  say "test bed instance $SELFHOST_TESTBED_INSTANCE: down, up with the control plane and no hosts"
  "$testbed" down >>"$logs/testbed.log" 2>&1 || die "testbed down failed (log: $logs/testbed.log)"
  "$testbed" up --hosts 0 >>"$logs/testbed.log" 2>&1 || die "testbed up failed (log: $logs/testbed.log)"
  eval "$("$testbed" env)"
  kubectl="$SELFHOST_TEST_KUBECTL"
  server="$(sed -n 's/^ *server: *//p' "$KUBECONFIG" | head -n1)" # https://127.0.0.1:PORT
  local port="${server##*:}"
  relay_port=$((port + 10000))
  # Both providers authenticate alike, with a ServiceAccount token bound to
  # cluster-admin: the bed's admin kubeconfig has an X.509 v1 client
  # certificate, which rustls (ours) refuses.
  "$kubectl" create namespace bench-auth >/dev/null
  "$kubectl" -n bench-auth create serviceaccount bench >/dev/null
  "$kubectl" create clusterrolebinding bench-admin --clusterrole cluster-admin \
    --serviceaccount bench-auth:bench >/dev/null
  local token ca
  token="$("$kubectl" -n bench-auth create token bench --duration 4h)"
  ca="$("$kubectl" config view --minify --raw -o 'jsonpath={.clusters[0].cluster.certificate-authority-data}')"
  kubeconfig_for "$server" >"$work/kubeconfig-loopback"
  kubeconfig_for "https://127.0.0.1:$relay_port" >"$work/kubeconfig-relay"
  openssl x509 -noout -ext subjectAltName -in "$(dirname "$KUBECONFIG")/pki/apiserver.crt" 2>/dev/null |
    grep -q 'IP Address:127.0.0.1' || die "the API server's certificate does not cover 127.0.0.1"
  : >"$logs/relay.log"
  python3 "$repo/bench/delay-relay.py" "$relay_port" 127.0.0.1 "$port" "$delay_ms" "$logs/relay.log" &
  relay_pid=$!
  local _
  for _ in $(seq 50); do grep -q listening "$logs/relay.log" && break; sleep 0.1; done
  grep -q listening "$logs/relay.log" || die "the relay did not start (log: $logs/relay.log)"
  # What a request costs each way: TLS handshake + GET /version, new connection.
  rtt_direct="$(probe "$server")"
  rtt_relay="$(probe "https://127.0.0.1:$relay_port")"
  say "GET /version on a new TLS connection (median of 5): loopback $rtt_direct ms, relay $rtt_relay ms"
}

kubeconfig_for() { # server (uses token, ca)
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: bed
  cluster:
    server: $1
    certificate-authority-data: $ca
contexts:
- name: bench
  context: {cluster: bed, user: bench}
current-context: bench
users:
- name: bench
  user:
    token: $token
EOF
}

probe() { # url: median ms of 5 connect + TLS + GET /version
  local d _ t=()
  d="$(dirname "$KUBECONFIG")/pki"
  for _ in 1 2 3 4 5; do
    t+=("$(curl -s -o /dev/null -w '%{time_total}' --cacert "$d/ca.crt" "$1/version")")
  done
  printf '%s\n' "${t[@]}" | sort -g | awk '{ v[NR] = $1 } END { printf "%.1f", v[3] * 1000 }'
}

# --- the configurations ----------------------------------------------------

write_ours() { # dir, namespace, count, kubeconfig
  mkdir -p "$1"
  cat >"$1/main.tf" <<EOF
terraform {
  required_providers {
    selfhost = { source = "selfhost/selfhost" }
  }
}

resource "selfhost_agent" "a" {
  count      = $3
  kubeconfig = file("$4")
  namespace  = "$2"
  name       = "agent-\${count.index}"
  image      = "registry.example/agent:1.0"
  replicas   = 1
  env        = { LOG_LEVEL = "info" }
  secret_env = { API_KEY = "key-\${count.index}" }
  config_files = {
    "agent.yaml" = "model: small\n"
  }
  port {
    name = "http"
    port = 8080
  }
  wait_for_rollout = false
}
EOF
}

write_theirs() { # dir, namespace, count, kubeconfig
  mkdir -p "$1"
  cat >"$1/main.tf" <<EOF
terraform {
  required_providers {
    kubernetes = { source = "hashicorp/kubernetes", version = "$k8s_version" }
  }
}

provider "kubernetes" {
  load_config_file = true
  config_path      = "$4"
}

locals {
  labels = { for i in range($3) : i => {
    "app.kubernetes.io/name"       = "agent-\${i}"
    "app.kubernetes.io/managed-by" = "terraform"
    "selfhost.dev/agent"           = "agent-\${i}"
  } }
}

resource "kubernetes_secret" "env" {
  count = $3
  metadata {
    name      = "agent-\${count.index}-env"
    namespace = "$2"
    labels    = local.labels[count.index]
  }
  data = { API_KEY = "key-\${count.index}" }
}

resource "kubernetes_config_map" "config" {
  count = $3
  metadata {
    name      = "agent-\${count.index}-config"
    namespace = "$2"
    labels    = local.labels[count.index]
  }
  data = { "agent.yaml" = "model: small\n" }
}

resource "kubernetes_deployment" "agent" {
  count = $3
  metadata {
    name      = "agent-\${count.index}"
    namespace = "$2"
    labels    = local.labels[count.index]
  }
  spec {
    replicas = 1
    selector {
      match_labels = { "selfhost.dev/agent" = "agent-\${count.index}" }
    }
    template {
      metadata {
        labels = local.labels[count.index]
      }
      spec {
        automount_service_account_token = false
        security_context {
          run_as_non_root = true
          run_as_user     = 65532
          run_as_group    = 65532
        }
        container {
          name  = "agent"
          image = "registry.example/agent:1.0"
          env {
            name  = "LOG_LEVEL"
            value = "info"
          }
          env {
            name = "API_KEY"
            value_from {
              secret_key_ref {
                name = kubernetes_secret.env[count.index].metadata[0].name
                key  = "API_KEY"
              }
            }
          }
          port {
            name           = "http"
            container_port = 8080
          }
          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            capabilities {
              drop = ["ALL"]
            }
          }
          volume_mount {
            name       = "config"
            mount_path = "/config"
            read_only  = true
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }
        volume {
          name = "config"
          config_map {
            name = kubernetes_config_map.config[count.index].metadata[0].name
          }
        }
        volume {
          name = "tmp"
          empty_dir {}
        }
      }
    }
  }
  wait_for_rollout = false
}

resource "kubernetes_service" "agent" {
  count = $3
  metadata {
    name      = "agent-\${count.index}"
    namespace = "$2"
    labels    = local.labels[count.index]
  }
  spec {
    type     = "ClusterIP"
    selector = { "selfhost.dev/agent" = "agent-\${count.index}" }
    port {
      name        = "http"
      port        = 8080
      target_port = "http"
    }
  }
}
EOF
}

tf() { # dir, args...
  local dir="$1"
  shift
  (cd "$dir" && TF_CLI_CONFIG_FILE="$work/cli.tfrc" TF_IN_AUTOMATION=1 timeout 1800 "$cli" "$@")
}

# --- measuring -------------------------------------------------------------

# Sum of apiserver_request_total for the four kinds (main resource only)
# and for non-resource requests (discovery, /version), by verb: "verb
# resource count" lines.
request_counts() { # out
  "$kubectl" get --raw /metrics | awk '
    /^apiserver_request_total\{/ {
      split($0, a, "}"); labels = a[1]; value = $NF
      verb = labels; sub(/.*verb="/, "", verb); sub(/".*/, "", verb)
      res = labels; sub(/.*[{,]resource="/, "", res); sub(/".*/, "", res)
      sub_ = labels; sub(/.*subresource="/, "", sub_); sub(/".*/, "", sub_)
      if (sub_ != "") next
      if (res == "") res = "non-resource"
      if (res !~ /^(deployments|services|configmaps|secrets|non-resource)$/) next
      if (verb ~ /^(LIST|WATCH|UPDATE)$/) next
      n[verb " " res] += value
    }
    END { for (k in n) print k, n[k] }' | sort >"$1"
}

# Requests a run made (after minus before), e.g. "APPLY 200 (deployments 50, ...)".
request_diff() { # before, after, agents -> "total per agent: verb n, ..."; the detail in AFTER.diff
  awk -v agents="$3" -v detail="$2.diff" '
    FNR == NR { b[$1 " " $2] = $3; next }
    { d = $3 - b[$1 " " $2]; if (d > 0) { by[$1] += d; total += d; r[$1] = r[$1] sprintf("%s %s %d; ", $1, $2, d) } }
    END {
      for (v in r) print r[v] > detail
      printf "%.1f/agent (", total / agents
      sep = ""
      for (v in by) { printf "%s%s %.1f", sep, v, by[v] / agents; sep = ", " }
      printf ")"
    }' "$1" "$2"
}

relay_conns() { grep -c '^open ' "$logs/relay.log" || true; }

# One timed run: sets run_wall, run_rss (KiB of the provider of `side`).
# `counted` runs also set run_requests and run_conns.
measure() { # side, dir, label, agents, counted (0|1), terraform args...
  local side="$1" dir="$2" label="$3" agents="$4" counted="$5" out c0=0 code=0
  shift 5
  out="$work/runs/$label"
  if [ "$counted" = 1 ]; then
    request_counts "$out.before"
    c0=$(relay_conns)
  fi
  loads+=("$(cut -d' ' -f1 /proc/loadavg)")
  python3 "$repo/bench/peak-rss.py" "$out.measure" -- bash -c \
    "cd '$dir' && TF_CLI_CONFIG_FILE='$work/cli.tfrc' TF_IN_AUTOMATION=1 exec timeout 1800 '$cli' \"\$@\"" \
    tf "$@" >"$logs/$label.log" 2>&1 || code=$?
  if [ "$1" = plan ] && [ "$code" = 2 ]; then
    die "$label: the no-change plan is not empty (log: $logs/$label.log)"
  fi
  [ "$code" = 0 ] || die "$label failed with status $code (log: $logs/$label.log)"
  run_wall=$(awk '$1 == "wall" { print $2 }' "$out.measure")
  local name=terraform-provider-selfhost
  [ "$side" = theirs ] && name=terraform-provider-kubernetes
  run_rss=$(awk -v n="$name" '$1 == "rss" && $2 == n { print $3 }' "$out.measure")
  [ -n "$run_rss" ] || run_rss=0
  if [ "$counted" = 1 ]; then
    request_counts "$out.after"
    run_requests="$(request_diff "$out.before" "$out.after" "$agents")"
    run_conns=$(($(relay_conns) - c0))
  fi
  say "$label: $(fmt_s "$run_wall"), provider peak RSS $(fmt_mib "$run_rss")${run_requests:+, requests $run_requests}"
}

new_namespace() { # name
  "$kubectl" create namespace "$1" >/dev/null
  # The controller manager puts kube-root-ca.crt into every new namespace:
  # let it do so before anything is counted.
  local _
  for _ in $(seq 50); do
    "$kubectl" -n "$1" get configmap kube-root-ca.crt >/dev/null 2>&1 && return 0
    sleep 0.2
  done
}

drop_namespaces() { # names...
  "$kubectl" delete namespace --wait=false "$@" >/dev/null 2>&1 || true
  local _
  for _ in $(seq 120); do
    [ -n "$("$kubectl" get namespace "$@" -o name 2>/dev/null)" ] || return 0
    sleep 1
  done
  say "namespaces $* still terminating after 120 s; going on"
}

# --- statistics ------------------------------------------------------------

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minmax() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo, hi }'; }
fmt_s() { awk -v s="$1" 'BEGIN { printf(s < 10 ? "%.2f s" : "%.1f s", s) }'; }
fmt_mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
fmt_times() { # times... -> "median [min–max]" (or the one value)
  local lo hi
  read -r lo hi <<<"$(minmax "$@")"
  if [ "$#" -eq 1 ]; then fmt_s "$1"; else echo "$(fmt_s "$(median "$@")") [$(fmt_s "$lo")–$(fmt_s "$hi")]"; fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f×", a / b; else print "—" }'; }

# --- the bench -------------------------------------------------------------

declare -A res # key -> value
loads=()

bench_network() { # net (loopback | relay)
  local net="$1" kc="$work/kubeconfig-$1" r side ns dir times_o=() times_t=() rss_o=() rss_t=() nss=()
  say "$net: $runs rounds of apply of $n agents (ours, then theirs), each into a fresh namespace"
  for r in $(seq "$runs"); do
    for side in ours theirs; do
      ns="bench-$net-$side-apply-$r"
      dir="$work/runs/$net-$side-apply-$r"
      new_namespace "$ns"
      nss+=("$ns")
      rm -rf "$dir"
      "write_$side" "$dir" "$ns" "$n" "$kc"
      tf "$dir" init -input=false -no-color >"$logs/$net-$side-init-$r.log" 2>&1 ||
        die "terraform init failed (log: $logs/$net-$side-init-$r.log)"
      run_requests=""
      measure "$side" "$dir" "$net-$side-apply-$r" "$n" "$([ "$r" = 1 ] && echo 1 || echo 0)" \
        apply -auto-approve -input=false -no-color
      if [ "$side" = ours ]; then times_o+=("$run_wall") rss_o+=("$run_rss"); else times_t+=("$run_wall") rss_t+=("$run_rss"); fi
      if [ "$r" = 1 ]; then res[$net-$side-apply-req]="$run_requests" res[$net-$side-apply-conns]="$run_conns"; fi
    done
  done
  res[$net-ours-apply]="${times_o[*]}" res[$net-theirs-apply]="${times_t[*]}"
  res[$net-ours-apply-rss]="$(median "${rss_o[@]}")" res[$net-theirs-apply-rss]="$(median "${rss_t[@]}")"
  say "$net: deleting the apply namespaces (untimed)"
  drop_namespaces "${nss[@]}"

  say "$net: $plan_n agents per provider (one timed apply each), then $runs rounds of a no-change plan"
  nss=()
  for side in ours theirs; do
    ns="bench-$net-$side-plan"
    dir="$work/runs/$net-$side-plan"
    new_namespace "$ns"
    nss+=("$ns")
    rm -rf "$dir"
    "write_$side" "$dir" "$ns" "$plan_n" "$kc"
    tf "$dir" init -input=false -no-color >"$logs/$net-$side-plan-init.log" 2>&1 ||
      die "terraform init failed (log: $logs/$net-$side-plan-init.log)"
    run_requests=""
    measure "$side" "$dir" "$net-$side-apply-$plan_n" "$plan_n" 0 apply -auto-approve -input=false -no-color
    res[$net-$side-apply-big]="$run_wall"
  done
  times_o=() times_t=() rss_o=() rss_t=()
  for r in $(seq "$runs"); do
    for side in ours theirs; do
      run_requests=""
      measure "$side" "$work/runs/$net-$side-plan" "$net-$side-plan-$r" "$plan_n" "$([ "$r" = 1 ] && echo 1 || echo 0)" \
        plan -detailed-exitcode -input=false -no-color
      if [ "$side" = ours ]; then times_o+=("$run_wall") rss_o+=("$run_rss"); else times_t+=("$run_wall") rss_t+=("$run_rss"); fi
      if [ "$r" = 1 ]; then res[$net-$side-plan-req]="$run_requests" res[$net-$side-plan-conns]="$run_conns"; fi
    done
  done
  res[$net-ours-plan]="${times_o[*]}" res[$net-theirs-plan]="${times_t[*]}"
  res[$net-ours-plan-rss]="$(median "${rss_o[@]}")" res[$net-theirs-plan-rss]="$(median "${rss_t[@]}")"
  res[$net-ours-plan-rss-max]="$(minmax "${rss_o[@]}" | cut -d' ' -f2)"
  say "$net: deleting the plan namespaces (untimed)"
  drop_namespaces "${nss[@]}"
}

# --- the report ------------------------------------------------------------

verdict() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "NOT met"; fi; }

row_times() { # label, key
  local o t
  read -r -a o <<<"${res[$2-ours-$3]}"
  read -r -a t <<<"${res[$2-theirs-$3]}"
  echo "| $1 | $(fmt_times "${o[@]}") | $(fmt_times "${t[@]}") | $(ratio "$(median "${t[@]}")" "$(median "${o[@]}")") |"
}

report() {
  local net o t lo hi
  read -r lo hi <<<"$(minmax "${loads[@]}")"
  cat <<EOF

agents-vs-kubernetes: $n agents (Deployment + Service + ConfigMap + Secret each) applied, $plan_n refreshed, against the bed's kube-apiserver v1.36.3 (kwok nodes), $(date -u +%Y-%m-%d)
CLI: $cli_version (the same for both), parallelism 10 (default); neither provider waits for the rollout
ours: terraform-provider-selfhost $provider_version (release build, commit $provider_commit), selfhost_agent
theirs: hashicorp/kubernetes $theirs_version (the newest on the Go module proxy; built with $(go env GOVERSION)), 4 resources per agent
network: loopback; and +$((2 * delay_ms)) ms RTT through bench/delay-relay.py ($delay_ms ms each way; new TLS connection + GET /version: $rtt_direct ms direct, $rtt_relay ms relayed)
machine: $(nproc) cores, shared; 1-min load average at the runs' starts $lo–$hi
times: median [min–max] of $runs runs (the $plan_n-agent apply: 1 run); RSS: the provider plugin's peak (VmHWM), median of the runs; ratio = theirs / ours

EOF
  for net in loopback relay; do
    if [ "$net" = loopback ]; then echo "**loopback**"; else echo "**+$((2 * delay_ms)) ms RTT**"; fi
    cat <<EOF

| | ours (selfhost_agent) | theirs (hashicorp/kubernetes $theirs_version) | ratio |
|---|---|---|---|
$(row_times "apply, $n agents (fresh namespace, empty state)" "$net" apply)
| apply, $plan_n agents (1 run) | $(fmt_s "${res[$net-ours-apply-big]}") | $(fmt_s "${res[$net-theirs-apply-big]}") | $(ratio "${res[$net-theirs-apply-big]}" "${res[$net-ours-apply-big]}") |
$(row_times "no-change plan (refresh), $plan_n agents" "$net" plan)
| provider peak RSS, apply of $n | $(fmt_mib "${res[$net-ours-apply-rss]}") | $(fmt_mib "${res[$net-theirs-apply-rss]}") | $(ratio "${res[$net-theirs-apply-rss]}" "${res[$net-ours-apply-rss]}") |
| provider peak RSS, plan of $plan_n | $(fmt_mib "${res[$net-ours-plan-rss]}") | $(fmt_mib "${res[$net-theirs-plan-rss]}") | $(ratio "${res[$net-theirs-plan-rss]}" "${res[$net-ours-plan-rss]}") |
| API requests, apply (first run) | ${res[$net-ours-apply-req]} | ${res[$net-theirs-apply-req]} | |
| API requests, plan (first run) | ${res[$net-ours-plan-req]} | ${res[$net-theirs-plan-req]} | |
EOF
    if [ "$net" = relay ]; then
      echo "| TCP connections to the API server, apply of $n / plan of $plan_n | ${res[$net-ours-apply-conns]} / ${res[$net-ours-plan-conns]} | ${res[$net-theirs-apply-conns]} / ${res[$net-theirs-plan-conns]} | |"
    fi
    echo
  done
  local ao at po pt
  read -r -a o <<<"${res[loopback-ours-apply]}"; read -r -a t <<<"${res[loopback-theirs-apply]}"
  ao=$(median "${o[@]}") at=$(median "${t[@]}")
  read -r -a o <<<"${res[loopback-ours-plan]}"; read -r -a t <<<"${res[loopback-theirs-plan]}"
  po=$(median "${o[@]}") pt=$(median "${t[@]}")
  local rao rat rpo rpt
  read -r -a o <<<"${res[relay-ours-apply]}"; read -r -a t <<<"${res[relay-theirs-apply]}"
  rao=$(median "${o[@]}") rat=$(median "${t[@]}")
  read -r -a o <<<"${res[relay-ours-plan]}"; read -r -a t <<<"${res[relay-theirs-plan]}"
  rpo=$(median "${o[@]}") rpt=$(median "${t[@]}")
  local rss_max
  rss_max=$(awk -v a="${res[loopback-ours-plan-rss-max]}" -v b="${res[relay-ours-plan-rss-max]}" 'BEGIN { print (a > b ? a : b) }')
  cat <<EOF
targets (issue 20):
- apply >= 3× faster ($n agents): loopback $(ratio "$at" "$ao") — $(verdict "$at >= 3 * $ao"); +$((2 * delay_ms)) ms $(ratio "$rat" "$rao") — $(verdict "$rat >= 3 * $rao")
- no-change plan >= 10× faster at $plan_n agents: loopback $(ratio "$pt" "$po") — $(verdict "$pt >= 10 * $po"); +$((2 * delay_ms)) ms $(ratio "$rpt" "$rpo") — $(verdict "$rpt >= 10 * $rpo")
- our RSS <= 25 MB at $plan_n agents: at most $(fmt_mib "$rss_max") over the plans ($(awk -v k="$rss_max" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }') MB) — $(verdict "$rss_max * 1024 <= 25e6")
EOF
}

cleanup() {
  [ -z "$relay_pid" ] || kill "$relay_pid" 2>/dev/null || true
  if [ "${SELFHOST_BENCH_KEEP_BED:-}" = 1 ]; then
    say "leaving test bed instance $SELFHOST_TESTBED_INSTANCE up (SELFHOST_BENCH_KEEP_BED=1)"
  else
    say "test bed instance $SELFHOST_TESTBED_INSTANCE down"
    "$testbed" down >>"$logs/testbed.log" 2>&1 || true
  fi
}

trap cleanup EXIT
install_our_provider ""
prepare_theirs
write_cli_config
bed_up
bench_network loopback
bench_network relay
report | tee "$work/result.md"
say "done in $(($(date +%s) - t_start)) s (logs: $logs)"
