# The demo platform (`scripts/demo` applies it): three local machines become
# a hardened kubeadm cluster with HTTPS ingress, a gateway and three agents
# isolated by network policies, a gateway token in a Secret rotated every
# 90 days and nightly backups of the agent volume to S3, in ONE apply, through
# the platform module (../modules/platform).
#
# scripts/demo passes every input below as TF_VAR_* from the test bed: its
# hosts, their SSH key, the air-gapped Kubernetes bundle (the hosts are
# offline), a private ACME server and an S3 server on the bed's host side.
# To run it by hand: terraform init && terraform apply -var-file=my.tfvars.

terraform {
  required_providers {
    selfhost = {
      source = "selfhost/selfhost"
    }
  }
}

variable "hosts" {
  description = "Addresses of the machines (the first is the control plane); each may be { address, host_key, port }."
  type        = any
}

variable "ssh_user" {
  type    = string
  default = "root"
}

variable "ssh_private_key_file" {
  description = "Path of the SSH private key authorized on the hosts."
  type        = string
  default     = "~/.ssh/id_ed25519"
}

variable "k8s_bundle" {
  description = "Directory of an air-gapped Kubernetes bundle; null downloads the official releases (hosts with internet access)."
  type        = string
  default     = null
}

variable "node_settings" {
  description = "Explicit node settings (selfhost_k8s_cluster's node_settings as an object); null: the provider's choice."
  type        = any
  default     = null
}

variable "ingress_domain" {
  description = "The gateway answers at https://gateway.<ingress_domain>/."
  type        = string
  default     = "selfhost.test"
}

variable "acme_server" {
  description = "ACME directory URL; null: Let's Encrypt."
  type        = string
  default     = null
}

variable "acme_ca_certificate_file" {
  description = "PEM file of the CA of a private ACME server's HTTPS certificate."
  type        = string
  default     = null
}

variable "backup_endpoint" {
  description = "S3 endpoint of the backups, e.g. https://s3.example.com."
  type        = string
}

variable "backup_bucket" {
  type    = string
  default = "backups"
}

variable "backup_access_key_id" {
  type      = string
  sensitive = true
}

variable "backup_secret_access_key" {
  type      = string
  sensitive = true
}

variable "backup_password" {
  description = "restic repository password (encrypts the snapshots)."
  type        = string
  sensitive   = true
}

variable "images" {
  description = "Images of the demo: an HTTP echo server, a shell client, restic (the bundle's images: the hosts are offline)."
  type        = map(string)
  default = {
    echo   = "selfhost.test/echo:1"
    client = "selfhost.test/client:1"
    restic = "selfhost.test/restic:1"
  }
}

provider "selfhost" {
  ssh {
    user        = var.ssh_user
    private_key = file(pathexpand(var.ssh_private_key_file))
  }
}

locals {
  small = {
    cpu_request    = "50m"
    cpu_limit      = "200m"
    memory_request = "32Mi"
    memory_limit   = "64Mi"
  }
}

module "platform" {
  source = "../modules/platform"

  hosts              = var.hosts
  ssh_user           = var.ssh_user
  kubernetes_version = "v1.36.3"
  install            = { source = var.k8s_bundle == null ? "download" : "bundle", bundle = var.k8s_bundle }
  node_settings      = var.node_settings

  acme = {
    email          = "ops@${var.ingress_domain}"
    server         = var.acme_server
    ca_certificate = var.acme_ca_certificate_file == null ? null : file(var.acme_ca_certificate_file)
  }

  namespace       = "agents"
  namespace_quota = { pods = "30", "limits.memory" = "4Gi" }

  gateway = {
    image          = var.images.echo
    port           = 8080
    ingress_host   = "gateway.${var.ingress_domain}"
    readiness_path = "/ready"
    resources      = local.small
  }

  agents = {
    # The authority: answers the gateway and the billing agent.
    authority = {
      image          = var.images.echo
      port           = 8080
      readiness_path = "/ready"
      env            = { ROLE = "authority" }
      resources      = local.small
    }
    # A business agent with a volume, backed up every night.
    billing = {
      image          = var.images.echo
      port           = 8080
      readiness_path = "/ready"
      env            = { ROLE = "billing" }
      resources      = local.small
      storage        = { size = "64Mi", mount_path = "/data" }
    }
    # A shell to try things from inside (kubectl exec deploy/toolbox -- fetch URL).
    toolbox = {
      image     = var.images.client
      command   = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 3600 & wait; done"]
      resources = local.small
    }
  }

  # Kept in each agent's Secret, never in logs (the demo's values are not secrets).
  secret_env = {
    authority = { SIGNING_KEY = "demo-signing-key-4b1d9e" }
    toolbox   = { DEMO_API_KEY = "demo-api-key-7f3a9c41d2e8" }
  }

  # Besides the gateway reaching every agent: billing asks the authority,
  # and the toolbox may try the authority (and nothing else).
  flows = [
    { from = "billing", to = "authority" },
    { from = "toolbox", to = "authority" },
  ]

  gateway_token = { length = 48, rotation_days = 90 }

  backup = {
    schedule  = "0 3 * * *"
    time_zone = "UTC"
    endpoint  = var.backup_endpoint
    bucket    = var.backup_bucket
    region    = "us-east-1"
    image     = var.images.restic
    retention = { keep_daily = 7, keep_weekly = 4 }
  }
  backup_credentials = {
    access_key_id       = var.backup_access_key_id
    secret_access_key   = var.backup_secret_access_key
    encryption_password = var.backup_password
  }
}

output "kubeconfig" {
  value     = module.platform.kubeconfig
  sensitive = true
}

output "api_server_url" {
  value = module.platform.api_server_url
}

output "gateway_url" {
  value = module.platform.gateway_url
}

output "ingress_address" {
  value = module.platform.ingress_address
}

output "service_dns" {
  value = module.platform.service_dns
}

output "nodes" {
  value = module.platform.nodes
}

output "gateway_token_secret" {
  value = module.platform.gateway_token_secret
}

output "gateway_token_fingerprint" {
  value = module.platform.gateway_token_fingerprint
}

output "restore_commands" {
  value = module.platform.restore_commands
}
