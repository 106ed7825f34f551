variable "kubeconfig" {
  type      = string
  sensitive = true
}

variable "openai_api_key" {
  type      = string
  sensitive = true
}

# One isolated agent: non-root, read-only root filesystem, no capabilities,
# RuntimeDefault seccomp and no service account token unless overridden in
# a `security {}` block. Drift of the fields it manages (a `kubectl edit`,
# a deleted Service) shows in the plan as `drift` and apply repairs it.
resource "selfhost_agent" "research" {
  kubeconfig = var.kubeconfig # e.g. selfhost_k8s_cluster.main.kubeconfig
  namespace  = "agents"
  name       = "research"
  image      = "ghcr.io/example/research-agent:1.4.2"
  replicas   = 1
  env        = { LOG_LEVEL = "info" }
  secret_env = { OPENAI_API_KEY = var.openai_api_key }
  config_files = {
    "agent.yaml" = "model: small\n"
  }
  port {
    name = "http"
    port = 8080
  }
  resources {
    cpu_request    = "250m"
    cpu_limit      = "1"
    memory_request = "256Mi"
    memory_limit   = "512Mi"
  }
  readiness_probe {
    http_path = "/healthz"
  }
  storage {
    size       = "5Gi"
    mount_path = "/data"
  }
  # HTTPS through the cluster's traefik, with a certificate traefik obtains
  # from Let's Encrypt (ACME HTTP-01): research.example.com must resolve to
  # the cluster and port 80 be reachable from the internet.
  ingress {
    host = "research.example.com"
  }
  wait_for_rollout = true
}

# Scaled by a HorizontalPodAutoscaler between 2 and 10 pods, aiming at 70 %
# of the CPU request and 80 % of the memory request on average (needs the
# cluster's metrics-server). `replicas` stays unset: the count is the
# autoscaler's, and its changes are never drift.
resource "selfhost_agent" "worker" {
  kubeconfig = var.kubeconfig
  namespace  = "agents"
  name       = "worker"
  image      = "ghcr.io/example/research-agent:1.4.2"
  port {
    name = "http"
    port = 8080
  }
  resources {
    cpu_request    = "250m"
    memory_request = "256Mi"
    memory_limit   = "512Mi"
  }
  autoscaling {
    min_replicas   = 2
    max_replicas   = 10
    cpu_percent    = 70
    memory_percent = 80
  }
  # Node drains (kubectl drain, an in-place cluster upgrade) evict at most
  # one pod at a time: at least one keeps serving while the other moves.
  disruption_budget {
    max_unavailable = "1"
  }
  # Plain HTTP through the cluster's traefik (no certificate).
  ingress {
    host = "worker.internal.example.com"
    tls  = false
  }
}
