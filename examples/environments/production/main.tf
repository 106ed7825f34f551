# Production: one control plane and two workers (VPS), a gateway and the
# eleven agents (an authority agent and ten business agents), default-deny
# isolation with the gateway allowed to reach each agent, a gateway token
# in a Secret rotated every 90 days, and nightly backups of the agents'
# volumes to S3. Everything in ONE apply, through ../../modules/platform.
#
#   cp terraform.tfvars.example terraform.tfvars   # fill in hosts, keys, S3
#   terraform init && terraform apply

terraform {
  required_providers {
    selfhost = {
      source = "selfhost/selfhost"
    }
  }
}

variable "hosts" {
  description = "Control plane first, then the two workers: { address, host_key } each (pin the keys)."
  type        = any
}

variable "ssh_private_key_file" {
  type    = string
  default = "~/.ssh/id_ed25519"
}

variable "ops_email" {
  description = "Contact of the Let's Encrypt account."
  type        = string
}

variable "domain" {
  description = "The gateway answers at https://gateway.<domain>/ (point its DNS name at the control plane)."
  type        = string
}

variable "image_registry" {
  type    = string
  default = "ghcr.io/example"
}

variable "release" {
  description = "Tag of the agents' images."
  type        = string
  default     = "1.4.2"
}

variable "llm_api_key" {
  type      = string
  sensitive = true
}

variable "backup_endpoint" {
  type = string
}

variable "backup_bucket" {
  type    = string
  default = "platform-backups"
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
  type      = string
  sensitive = true
}

provider "selfhost" {
  ssh {
    user        = "root"
    private_key = file(pathexpand(var.ssh_private_key_file))
  }
}

locals {
  business = ["research", "support", "sales", "billing", "marketing", "legal", "recruiting", "analytics", "operations", "content"]

  agent_resources = {
    cpu_request    = "250m"
    cpu_limit      = "1"
    memory_request = "256Mi"
    memory_limit   = "1Gi"
  }

  agents = merge(
    {
      authority = {
        image          = "${var.image_registry}/authority-agent:${var.release}"
        port           = 8080
        readiness_path = "/healthz"
        env            = { LOG_LEVEL = "info" }
        resources      = local.agent_resources
        storage        = { size = "5Gi", mount_path = "/data" }
      }
    },
    { for name in local.business : name => {
      image          = "${var.image_registry}/${name}-agent:${var.release}"
      port           = 8080
      readiness_path = "/healthz"
      env            = { LOG_LEVEL = "info", AUTHORITY_URL = "http://authority.agents.svc.cluster.local:8080" }
      resources      = local.agent_resources
      storage        = { size = "5Gi", mount_path = "/data" }
    } },
  )
}

module "platform" {
  source = "../../modules/platform"

  hosts              = var.hosts
  kubernetes_version = "v1.36.3"
  install            = { source = "download" }
  timezone           = "UTC"

  acme = { email = var.ops_email }

  namespace       = "agents"
  namespace_quota = { cpu = "12", memory = "24Gi", pods = "60" }

  gateway = {
    image          = "${var.image_registry}/gateway:${var.release}"
    port           = 8080
    ingress_host   = "gateway.${var.domain}"
    readiness_path = "/healthz"
    replicas       = 2
    resources      = local.agent_resources
    # Node drains (upgrades) move one pod at a time: one keeps serving.
    disruption_budget = { min_available = "1" }
  }
  agents     = local.agents
  secret_env = { for name in keys(local.agents) : name => { LLM_API_KEY = var.llm_api_key } }

  # Default-deny; the gateway reaches every agent (gateway_reaches_agents),
  # and each business agent may ask the authority.
  isolation = true
  flows     = [for name in local.business : { from = name, to = "authority" }]

  gateway_token = { length = 48, rotation_days = 90 }

  backup = {
    schedule  = "0 3 * * *"
    time_zone = "UTC"
    endpoint  = var.backup_endpoint
    bucket    = var.backup_bucket
    prefix    = "production"
    retention = { keep_daily = 7, keep_weekly = 4, keep_monthly = 6 }
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

output "service_dns" {
  value = module.platform.service_dns
}

output "restore_commands" {
  value = module.platform.restore_commands
}
