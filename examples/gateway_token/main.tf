# A gateway token generated on first apply, replaced every 90 days and
# whenever a keeper changes.
#
#   scripts/install-provider --cli-config /tmp/selfhost.tfrc
#   export TF_CLI_CONFIG_FILE=/tmp/selfhost.tfrc
#   terraform init && terraform apply

terraform {
  required_providers {
    selfhost = {
      source = "selfhost/selfhost"
    }
  }
}

provider "selfhost" {}

resource "selfhost_gateway_token" "gw" {
  length        = 48
  rotation_days = 90
  keepers = {
    gateway = "v1"
  }
}

output "gateway_token_id" {
  value = selfhost_gateway_token.gw.id
}

output "gateway_token_fingerprint" {
  description = "sha256 of the token: safe to log and compare."
  value       = selfhost_gateway_token.gw.fingerprint
}

output "gateway_token_expires_at" {
  value = selfhost_gateway_token.gw.expires_at
}

output "gateway_token" {
  value     = selfhost_gateway_token.gw.token
  sensitive = true
}
