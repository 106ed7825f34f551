output "kubeconfig" {
  description = "Admin kubeconfig of the cluster."
  value       = selfhost_k8s_cluster.main.kubeconfig
  sensitive   = true
}

output "api_server_url" {
  description = "https://<control plane>:6443"
  value       = selfhost_k8s_cluster.main.api_server_url
}

output "gateway_url" {
  description = "Where the gateway answers from outside (its ingress_host must resolve to ingress_address)."
  value       = "${local.gateway_scheme}://${var.gateway.ingress_host}/"
}

output "ingress_address" {
  description = "The node the ingress listens on (80/443): point the ingress hosts' DNS names at it."
  value       = local.control_plane
}

output "service_dns" {
  description = "Each agent's Service DNS name inside the cluster, by agent name (the gateway included; agents without a port have none)."
  value       = { for name, a in selfhost_agent.agent : name => a.service_dns if a.service_dns != null }
}

output "nodes" {
  description = "The cluster's nodes (name, host, role, ready, version, status)."
  value       = selfhost_k8s_cluster.main.nodes
}

output "gateway_token_secret" {
  description = "namespace/name of the Secret holding the gateway token (key \"token\")."
  value       = "${var.namespace}/${local.token_secret}"
}

output "gateway_token_fingerprint" {
  description = "SHA-256 of the gateway token: safe to show and compare."
  value       = selfhost_gateway_token.gw.fingerprint
}

output "gateway_token_expires_at" {
  value = selfhost_gateway_token.gw.expires_at
}

output "gateway_token" {
  value     = selfhost_gateway_token.gw.token
  sensitive = true
}

output "restore_commands" {
  description = "By agent: the shell commands that restore the latest snapshot of its volume."
  value       = { for name, b in selfhost_backup_schedule.volume : name => b.restore_command }
}

output "deployer_kubeconfig" {
  description = "Kubeconfig of the namespace's deployer (null without `deployer`): workloads in the namespace only."
  value       = try(selfhost_k8s_cluster.main.deployer_kubeconfigs[var.namespace], null)
  sensitive   = true
}
