variable "kubeconfig" {
  type      = string
  sensitive = true
}

# Only the gateway may reach the research agent, on 8080; the research agent
# may reach HTTPS outside the cluster's 10.0.0.0/8, and cluster DNS.
resource "selfhost_network_policy" "research" {
  kubeconfig   = var.kubeconfig # e.g. selfhost_k8s_cluster.main.kubeconfig
  namespace    = "agents"
  name         = "research-isolation"
  agents       = ["research"] # empty = every pod in the namespace
  default_deny = ["ingress", "egress"]
  allow_dns    = true
  ingress {
    from_agents = ["gateway"]
    ports       = ["8080/tcp"]
  }
  egress {
    to_cidrs = ["0.0.0.0/0"]
    except   = ["10.0.0.0/8"]
    ports    = ["443/tcp"]
  }
}
