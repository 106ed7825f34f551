# A gateway token kept in a Kubernetes Secret (namespace/name/key), for a
# cluster reached with an existing kubeconfig. The namespace must exist.
#
#   terraform init
#   terraform apply -var kubeconfig_path=~/.kube/config -var namespace=gateway
#
# The kubeconfig's user needs get/patch/delete on Secrets in the namespace.
# Edit or delete the Secret with kubectl and the next plan shows
# `stored_fingerprint` changing back: apply writes the token in state again.

terraform {
  required_providers {
    selfhost = {
      source = "selfhost/selfhost"
    }
  }
}

variable "kubeconfig_path" {
  type    = string
  default = "~/.kube/config"
}

variable "namespace" {
  type    = string
  default = "gateway"
}

resource "selfhost_gateway_token" "gw" {
  length        = 48
  rotation_days = 90
  keepers = {
    gateway = "v1"
  }
  secret {
    kubeconfig = file(pathexpand(var.kubeconfig_path))
    namespace  = var.namespace
    name       = "gateway-token"
    key        = "token"
  }
}

output "gateway_token_fingerprint" {
  description = "sha256 of the token: compare with the Secret's without reading it."
  value       = selfhost_gateway_token.gw.fingerprint
}
