# Inputs of the platform module. Objects are typed `any` and read with
# try(): optional object attributes need Terraform 1.3, and the module
# works with every Terraform from 1.0 and with OpenTofu.

variable "hosts" {
  description = <<-EOT
    The machines, in order: the first is the control plane, the others are
    workers. Each is an address ("203.0.113.10") or an object
    { address = "203.0.113.10", host_key = "ssh-ed25519 AAAA...", port = 22 }
    (host_key pins the host's key; without it the key seen first is recorded).
  EOT
  type        = any
  validation {
    condition     = length(var.hosts) >= 1
    error_message = "At least one host (the control plane) is needed."
  }
}

variable "ssh_user" {
  description = "SSH user on every host (root, or a user with passwordless sudo)."
  type        = string
  default     = "root"
}

variable "ssh_private_key" {
  description = <<-EOT
    Private key for the hosts' SSH connections, kept (sensitive) in state.
    Leave null (recommended) to use the key of the caller's provider
    `ssh {}` block, which is never stored and is what the cluster uses.
  EOT
  type        = string
  default     = null
  sensitive   = true
}

variable "ssh_allowed_sources" {
  description = "Networks (CIDR) allowed to reach SSH through the hosts' firewall; empty: from anywhere."
  type        = list(string)
  default     = []
}

variable "firewall" {
  description = "Give every host an nftables firewall (default drop) opening only SSH, 80/443, the API server and the cluster's own ports between the nodes."
  type        = bool
  default     = true
}

variable "timezone" {
  description = "IANA time zone of the hosts (null: leave it)."
  type        = string
  default     = null
}

variable "kubernetes_version" {
  description = "Kubernetes release, e.g. \"v1.36.3\"."
  type        = string
  default     = "v1.36.3"
}

variable "distribution" {
  description = "\"kubeadm\" or \"k3s\"."
  type        = string
  default     = "kubeadm"
}

variable "install" {
  description = <<-EOT
    Where Kubernetes comes from: { source = "download" } (official releases,
    checked against their SHA-256; optional base_url and the other mirror
    settings of selfhost_k8s_cluster's install block) or
    { source = "bundle", bundle = "/path/to/k8s-bundle" } (air-gapped).
  EOT
  type        = any
  default     = { source = "download" }
}

variable "node_settings" {
  description = <<-EOT
    Explicit node settings (selfhost_k8s_cluster's node_settings block, as an
    object with the same attribute names). null (default): the provider's
    choice. For hosts that need something else, e.g. container-based VPS.
  EOT
  type        = any
  default     = null
}

variable "pod_cidr" {
  type    = string
  default = "10.244.0.0/16"
}

variable "service_cidr" {
  type    = string
  default = "10.96.0.0/12"
}

variable "metrics_server" {
  description = "metrics-server (kubectl top, autoscaling)."
  type        = bool
  default     = true
}

variable "secrets_encryption" {
  description = "Encrypt Secrets at rest in etcd (the key stays on the control plane)."
  type        = bool
  default     = true
}

variable "secrets_encryption_key_version" {
  description = "Raise it to rotate the encryption key."
  type        = number
  default     = 1
}

variable "audit_log" {
  description = "The API server's audit log (Secret reads by name, never their values)."
  type        = bool
  default     = true
}

variable "pod_security" {
  description = "Pod Security Standard of the namespace: restricted, baseline or privileged."
  type        = string
  default     = "restricted"
}

variable "deployer" {
  description = "Deploy credentials for a pipeline in the namespace: { token_duration = \"24h\", long_lived_token = false } (both optional), or null for none."
  type        = any
  default     = null
}

variable "network_policy_enforcement" {
  description = "Enforce the NetworkPolicies (kube-network-policies)."
  type        = bool
  default     = true
}

variable "acme" {
  description = <<-EOT
    HTTPS ingress (traefik with ACME, on the control plane's 80/443):
    { email = "ops@example.com" } for Let's Encrypt, plus optional
    server (any ACME directory), ca_certificate (PEM of a private ACME
    server's CA) and staging. null: no ingress controller (agents'
    ingress_host then needs one you bring).
  EOT
  type        = any
  default     = null
}

variable "namespace" {
  description = "Namespace of the gateway, the agents, their policies, token and backups."
  type        = string
  default     = "agents"
}

variable "namespace_quota" {
  description = "ResourceQuota of the namespace, e.g. { cpu = \"8\", memory = \"16Gi\", pods = \"50\" }."
  type        = map(string)
  default     = {}
}

variable "default_resources" {
  description = "LimitRange defaults of the namespace: { request = { cpu, memory }, limit = { cpu, memory } }."
  type        = any
  default = {
    request = { cpu = "50m", memory = "64Mi" }
    limit   = { cpu = "500m", memory = "256Mi" }
  }
}

variable "gateway" {
  description = <<-EOT
    The gateway: an agent reachable from outside at https://<ingress_host>/.
    Same attributes as an agent (see `agents`); ingress_host is required. It
    gets the gateway token in its environment as GATEWAY_TOKEN.
  EOT
  type        = any
}

variable "agents" {
  description = <<-EOT
    The agents, by name. Each is an object with:
      image (required), port (number; a Service "http" on it), command, args,
      replicas (default 1), env (map), config_files (map), resources
      ({ cpu_request, cpu_limit, memory_request, memory_limit }),
      storage ({ size, mount_path, storage_class }: a volume, backed up
      nightly when `backup` is set), ingress_host (public over HTTPS),
      readiness_path (HTTP readiness probe), node_selector (map),
      disruption_budget ({ min_available } or { max_unavailable }: "1" or
      "50%"; a PodDisruptionBudget that node drains respect).
    Secret environment goes in `secret_env`, not here (sensitive values
    cannot key a for_each).
  EOT
  type        = any
  default     = {}
}

variable "secret_env" {
  description = "Secret environment by agent name (\"gateway\" included): { research = { OPENAI_API_KEY = \"...\" } }. Kept in each agent's Secret."
  type        = map(map(string))
  default     = {}
  sensitive   = true
}

variable "isolation" {
  description = "Default-deny ingress for every pod of the namespace; only `flows` (and public ingress to agents with an ingress_host) pass."
  type        = bool
  default     = true
}

variable "gateway_reaches_agents" {
  description = "Allow the gateway to reach every agent on its port (added to `flows`)."
  type        = bool
  default     = true
}

variable "flows" {
  description = "Allowed flows: [{ from = \"billing\", to = \"authority\" }] (names of agents or \"gateway\"); optional port (default: the target's port)."
  type        = any
  default     = []
}

variable "gateway_token" {
  description = "The gateway token: { length = 48, rotation_days = 90, secret_name = \"gateway-token\", keepers = {} }; stored in a Secret of the namespace."
  type        = any
  default     = {}
}

variable "backup" {
  description = <<-EOT
    Nightly backups (restic, to S3) of every agent with storage; null: none.
    { schedule = "0 3 * * *", time_zone = "UTC", endpoint, bucket,
      region = "us-east-1", prefix = "<namespace>" (each agent under
      <prefix>/<agent>), image, retention = { keep_last, keep_daily, ... } }
    Credentials go in `backup_credentials`.
  EOT
  type        = any
  default     = null
}

variable "backup_credentials" {
  description = "{ access_key_id, secret_access_key, encryption_password } of the backups."
  type = object({
    access_key_id       = string
    secret_access_key   = string
    encryption_password = string
  })
  default   = null
  sensitive = true
}
