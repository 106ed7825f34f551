resource "selfhost_vps_host" "cp" {
  ssh_connection { host = "203.0.113.10" }
  hostname       = "cp-1"
  swap           = false
  kernel_modules = ["overlay", "br_netfilter"]
  sysctl         = { "net.ipv4.ip_forward" = "1" }
  firewall {
    allow { port = "22" }
    allow { port = "6443" }  # the API server (Terraform, the workers)
    allow { port = "10250" } # the kubelet (logs, exec, metrics-server)
    allow {
      port     = "8472" # flannel's VXLAN between the nodes
      protocol = "udp"
    }
    allow { port = "80" }  # the ingress: HTTP (redirects to HTTPS) and ACME HTTP-01
    allow { port = "443" } # the ingress: HTTPS
  }
}

resource "selfhost_vps_host" "w1" {
  ssh_connection { host = "203.0.113.11" }
  hostname       = "worker-1"
  swap           = false
  kernel_modules = ["overlay", "br_netfilter"]
  sysctl         = { "net.ipv4.ip_forward" = "1" }
}

# Hosts, cluster and workloads in ONE apply: the workload resources take
# selfhost_k8s_cluster.main.kubeconfig.
resource "selfhost_k8s_cluster" "main" {
  version = "v1.36.3"
  install {
    source = "download"         # default: official releases, each checked against its published SHA-256
    # base_url = "https://mirror.example/k8s-release"   # a mirror of dl.k8s.io/release
    # air-gapped instead: source = "bundle", bundle = "./k8s-bundle" (its layout: "Air-gapped bundle layout" below)
  }
  control_plane = selfhost_vps_host.cp.ssh
  workers       = [selfhost_vps_host.w1.ssh]
  pod_cidr      = "10.244.0.0/16"
  service_cidr  = "10.96.0.0/12"
  cni           = "flannel"

  # No node_settings {}: each node's containerd and kubelet settings are
  # chosen from its host's facts (a VM gets the VPS defaults; a container-based
  # VPS such as LXC or OpenVZ what it needs); `effective_node_settings` shows
  # the choice in the plan. Set an attribute there only to override it.

  # Add-ons, installed in the same apply (defaults shown):
  network_policy_enforcement = true # kube-network-policies: every selfhost_network_policy is enforced
  metrics_server             = true # kubectl top, and numbers for selfhost_agent's autoscaling

  # HTTPS for agents with `ingress { host = "..." }`: traefik on the control
  # plane's ports 80/443, certificates from Let's Encrypt (HTTP-01).
  ingress {
    acme {
      email = "ops@example.com"
      # staging = true                                  # Let's Encrypt staging while testing
      # server = "https://acme.internal/directory"      # any ACME server ...
      # ca_certificate = file("acme-internal-ca.pem")   # ... and the CA its HTTPS uses
    }
  }

  # Every namespace below enforces this Pod Security level (default shown).
  pod_security = "restricted"

  namespace {
    name            = "agents"
    quota           = { cpu = "8", memory = "16Gi", pods = "50" }
    default_request = { cpu = "100m", memory = "128Mi" }
    default_limit   = { cpu = "1", memory = "512Mi" }
  }

  # A namespace a CI pipeline deploys into, with its own credentials.
  namespace {
    name = "shop"
    deployer {
      token_duration = "24h" # renewed by the first apply once less than 8h are left
    }
  }
}

output "api_server_url" {
  value = selfhost_k8s_cluster.main.api_server_url
}

# The pipeline's kubeconfig: `terraform output -raw shop_deployer > kubeconfig`.
output "shop_deployer" {
  value     = selfhost_k8s_cluster.main.deployer_kubeconfigs["shop"]
  sensitive = true
}

# k3s instead of kubeadm: the k3s binary, /etc/rancher/k3s/config.yaml,
# k3s.service on the server and k3s-agent.service (joined with the server's
# node-token) on the workers; k3s's own flannel and network-policy controller.
# resource "selfhost_k8s_cluster" "main" {
#   distribution = "k3s"
#   version      = "v1.36.3" # installs k3s v1.36.3+k3s1 (install.k3s_version to pin another k3s release of it)
#   install {
#     source = "download" # github.com/k3s-io/k3s releases, checked against sha256sum-amd64.txt
#   }
#   control_plane = selfhost_vps_host.cp.ssh
#   workers       = [selfhost_vps_host.w1.ssh]
# }
