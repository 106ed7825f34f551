# The whole platform from bare hosts in ONE apply: hosts hardened, a
# Kubernetes cluster with its add-ons, the gateway and the agents, their
# network policies, the gateway token and the backups.

locals {
  # Hosts normalised: an address, or { address, port, host_key }.
  hosts = [for h in var.hosts : {
    address  = try(h.address, h)
    port     = try(h.port, 22)
    host_key = try(h.host_key, null)
    hostname = try(h.hostname, null)
  }]
  control_plane = local.hosts[0].address
  # The nodes' own addresses as /32 networks, for the firewall rules between
  # them (all of them, or none when some are DNS names: then from anywhere).
  node_cidrs = [for h in local.hosts : "${h.address}/32" if can(cidrhost("${h.address}/32", 0))]
  node_only  = length(local.node_cidrs) == length(local.hosts) ? local.node_cidrs : null
  # The kubelet's port: the API server (nodes) and metrics-server (a pod).
  kubelet_sources = local.node_only == null ? null : concat(local.node_only, [var.pod_cidr])

  # The gateway is an agent like the others, named "gateway".
  all_agents = merge(var.agents, { gateway = var.gateway })
  port_of    = { for name, a in local.all_agents : name => try(a.port, null) }

  # Allowed flows: the caller's, plus the gateway to every agent.
  flows = concat(
    [for f in var.flows : {
      from = f.from
      to   = f.to
      port = try(f.port, local.port_of[f.to])
    }],
    var.gateway_reaches_agents ? [
      for name, a in var.agents : { from = "gateway", to = name, port = local.port_of[name] }
      if local.port_of[name] != null
    ] : [],
  )
  # Agents served through the ingress: their port is public anyway, so it
  # is open from anywhere (traefik runs in the node's network, so its
  # packets do not come from a pod an agent rule could name).
  public          = [for name, a in local.all_agents : name if try(a.ingress_host, null) != null]
  policy_targets  = var.isolation ? toset(distinct(concat([for f in local.flows : f.to], local.public))) : toset([])
  backed_up       = var.backup == null ? toset([]) : toset([for name, a in local.all_agents : name if try(a.storage, null) != null])
  backup_prefix   = try(var.backup.prefix, var.namespace)
  token_secret    = try(var.gateway_token.secret_name, "gateway-token")
  gateway_scheme  = var.acme == null ? "http" : "https"
  default_request = try(var.default_resources.request, null)
  default_limit   = try(var.default_resources.limit, null)
}

resource "selfhost_vps_host" "node" {
  for_each = { for h in local.hosts : h.address => h }

  ssh_connection {
    host        = each.value.address
    port        = each.value.port
    host_key    = each.value.host_key
    user        = var.ssh_user
    private_key = var.ssh_private_key
  }
  hostname = each.value.hostname
  timezone = var.timezone
  swap     = false
  sysctl   = { "net.ipv4.ip_forward" = "1" }

  ssh_hardening {
    password_authentication = false
    permit_root_login       = var.ssh_user == "root" ? "prohibit-password" : "no"
    x11_forwarding          = false
  }

  dynamic "firewall" {
    for_each = var.firewall ? [each.value] : []
    content {
      allow {
        port    = tostring(firewall.value.port)
        sources = length(var.ssh_allowed_sources) > 0 ? var.ssh_allowed_sources : null
      }
      allow { port = "80" }   # the ingress (ACME HTTP-01, redirect to HTTPS)
      allow { port = "443" }  # the ingress
      allow { port = "6443" } # the API server (Terraform, kubectl, the nodes)
      allow {
        port    = "10250" # the kubelets
        sources = local.kubelet_sources
      }
      allow {
        port     = "8472" # flannel's VXLAN between the nodes
        protocol = "udp"
        sources  = local.node_only
      }
    }
  }

  # Destroy removes what this resource wrote (drop-ins, firewall table).
  on_destroy = "revert"
}

resource "selfhost_k8s_cluster" "main" {
  distribution  = var.distribution
  version       = var.kubernetes_version
  control_plane = selfhost_vps_host.node[local.control_plane].ssh
  workers       = [for i, h in local.hosts : selfhost_vps_host.node[h.address].ssh if i > 0]
  pod_cidr      = var.pod_cidr
  service_cidr  = var.service_cidr

  install {
    source              = try(var.install.source, "download")
    bundle              = try(var.install.bundle, null)
    base_url            = try(var.install.base_url, null)
    image_archives      = try(var.install.image_archives, null)
    containerd_url      = try(var.install.containerd_url, null)
    containerd_version  = try(var.install.containerd_version, null)
    runc_url            = try(var.install.runc_url, null)
    runc_version        = try(var.install.runc_version, null)
    cni_plugins_url     = try(var.install.cni_plugins_url, null)
    cni_plugins_version = try(var.install.cni_plugins_version, null)
    k3s_url             = try(var.install.k3s_url, null)
    k3s_version         = try(var.install.k3s_version, null)
  }

  metrics_server             = var.metrics_server
  network_policy_enforcement = var.network_policy_enforcement

  secrets_encryption             = var.secrets_encryption
  secrets_encryption_key_version = var.secrets_encryption_key_version
  audit_log                      = var.audit_log
  pod_security                   = var.pod_security

  dynamic "ingress" {
    for_each = var.acme == null ? [] : [var.acme]
    content {
      acme {
        email          = ingress.value.email
        server         = try(ingress.value.server, null)
        ca_certificate = try(ingress.value.ca_certificate, null)
        staging        = try(ingress.value.staging, null)
      }
    }
  }

  dynamic "node_settings" {
    for_each = var.node_settings == null ? [] : [var.node_settings]
    content {
      containerd_snapshotter            = try(node_settings.value.containerd_snapshotter, null)
      containerd_restrict_oom_score_adj = try(node_settings.value.containerd_restrict_oom_score_adj, null)
      containerd_oom_score_adjust       = try(node_settings.value.containerd_oom_score_adjust, null)
      kubelet_cgroup_driver             = try(node_settings.value.kubelet_cgroup_driver, null)
      kubelet_cgroup_root               = try(node_settings.value.kubelet_cgroup_root, null)
      kubelet_extra_config              = try(node_settings.value.kubelet_extra_config, null)
      kube_proxy_extra_config           = try(node_settings.value.kube_proxy_extra_config, null)
      ignore_preflight_errors           = try(node_settings.value.ignore_preflight_errors, null)
    }
  }

  namespace {
    name            = var.namespace
    quota           = length(var.namespace_quota) > 0 ? var.namespace_quota : null
    default_request = local.default_request
    default_limit   = local.default_limit

    dynamic "deployer" {
      for_each = var.deployer == null ? [] : [var.deployer]
      content {
        token_duration   = try(deployer.value.token_duration, null)
        long_lived_token = try(deployer.value.long_lived_token, null)
      }
    }
  }
}

resource "selfhost_gateway_token" "gw" {
  length        = try(var.gateway_token.length, 48)
  rotation_days = try(var.gateway_token.rotation_days, 90)
  keepers       = try(var.gateway_token.keepers, null)
  secret {
    kubeconfig = selfhost_k8s_cluster.main.kubeconfig
    namespace  = var.namespace
    name       = local.token_secret
    key        = "token"
  }
}

resource "selfhost_agent" "agent" {
  for_each = local.all_agents

  kubeconfig    = selfhost_k8s_cluster.main.kubeconfig
  namespace     = var.namespace
  name          = each.key
  image         = each.value.image
  command       = try(each.value.command, null)
  args          = try(each.value.args, null)
  replicas      = try(each.value.replicas, 1)
  env           = try(each.value.env, null)
  config_files  = try(each.value.config_files, null)
  node_selector = try(each.value.node_selector, null)
  # The gateway also gets its token (a rotation restarts it with the new one).
  secret_env = each.key == "gateway" ? merge(lookup(var.secret_env, each.key, {}), {
    GATEWAY_TOKEN = selfhost_gateway_token.gw.token
  }) : (length(lookup(var.secret_env, each.key, {})) > 0 ? var.secret_env[each.key] : null)

  dynamic "port" {
    for_each = local.port_of[each.key] == null ? [] : [local.port_of[each.key]]
    content {
      name = "http"
      port = port.value
    }
  }

  dynamic "resources" {
    for_each = try([each.value.resources], [])
    content {
      cpu_request    = try(resources.value.cpu_request, null)
      cpu_limit      = try(resources.value.cpu_limit, null)
      memory_request = try(resources.value.memory_request, null)
      memory_limit   = try(resources.value.memory_limit, null)
    }
  }

  dynamic "readiness_probe" {
    for_each = try(each.value.readiness_path, null) == null ? [] : [each.value.readiness_path]
    content {
      http_path = readiness_probe.value
    }
  }

  dynamic "storage" {
    for_each = try([each.value.storage], [])
    content {
      size          = storage.value.size
      mount_path    = try(storage.value.mount_path, "/data")
      storage_class = try(storage.value.storage_class, null)
    }
  }

  dynamic "ingress" {
    for_each = try(each.value.ingress_host, null) == null ? [] : [each.value.ingress_host]
    content {
      host = ingress.value
      tls  = var.acme != null
    }
  }

  # Node drains (an in-place upgrade drains each node in turn) wait while
  # evicting would break the budget.
  dynamic "disruption_budget" {
    for_each = try(each.value.disruption_budget, null) == null ? [] : [each.value.disruption_budget]
    content {
      min_available   = try(disruption_budget.value.min_available, null)
      max_unavailable = try(disruption_budget.value.max_unavailable, null)
    }
  }
}

# Default deny: no pod of the namespace takes traffic unless a policy below
# allows it.
resource "selfhost_network_policy" "default_deny" {
  count = var.isolation ? 1 : 0

  kubeconfig   = selfhost_k8s_cluster.main.kubeconfig
  namespace    = var.namespace
  name         = "default-deny"
  default_deny = ["ingress"]
}

# One policy per agent that takes traffic: from the agents the flows name,
# and from anywhere on its port when it is public (ingress_host).
resource "selfhost_network_policy" "allow" {
  for_each = local.policy_targets

  kubeconfig   = selfhost_k8s_cluster.main.kubeconfig
  namespace    = var.namespace
  name         = "allow-to-${each.key}"
  agents       = [selfhost_agent.agent[each.key].name]
  default_deny = ["ingress"]

  dynamic "ingress" {
    for_each = [for f in local.flows : f if f.to == each.key]
    content {
      from_agents = [ingress.value.from]
      ports       = ingress.value.port == null ? null : ["${ingress.value.port}/tcp"]
    }
  }

  dynamic "ingress" {
    for_each = contains(local.public, each.key) && local.port_of[each.key] != null ? [local.port_of[each.key]] : []
    content {
      from_cidrs = ["0.0.0.0/0"]
      ports      = ["${ingress.value}/tcp"]
    }
  }
}

# Nightly backups of every agent's volume, restic to S3.
resource "selfhost_backup_schedule" "volume" {
  for_each = local.backed_up

  kubeconfig = selfhost_k8s_cluster.main.kubeconfig
  namespace  = var.namespace
  name       = "${each.key}-backup"
  schedule   = try(var.backup.schedule, "0 3 * * *")
  time_zone  = try(var.backup.time_zone, null)
  image      = try(var.backup.image, null)

  source {
    agent = selfhost_agent.agent[each.key].name
  }

  destination {
    s3 {
      endpoint          = var.backup.endpoint
      bucket            = var.backup.bucket
      prefix            = "${local.backup_prefix}/${each.key}"
      region            = try(var.backup.region, null)
      access_key_id     = try(var.backup_credentials.access_key_id, null)
      secret_access_key = try(var.backup_credentials.secret_access_key, null)
    }
  }

  retention {
    keep_last    = try(var.backup.retention.keep_last, null)
    keep_daily   = try(var.backup.retention.keep_daily, 7)
    keep_weekly  = try(var.backup.retention.keep_weekly, 4)
    keep_monthly = try(var.backup.retention.keep_monthly, 6)
  }

  encryption_password = try(var.backup_credentials.encryption_password, null)
}
