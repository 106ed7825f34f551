resource "selfhost_gateway_token" "gw" {
  length        = 48
  rotation_days = 90
  keepers = {
    gateway = "v1"
  }
}

# Kept in a Kubernetes Secret as well: written on create and on every
# rotation; a Secret edited or deleted by hand shows as drift in the plan
# and apply writes the token back (never a new token).
variable "kubeconfig" {
  type      = string
  sensitive = true
}

resource "selfhost_gateway_token" "stored" {
  secret {
    kubeconfig = var.kubeconfig # e.g. selfhost_k8s_cluster.main.kubeconfig
    namespace  = "gateway"
    name       = "gateway-token"
    key        = "token"
  }
}
