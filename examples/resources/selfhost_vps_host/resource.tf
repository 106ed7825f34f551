resource "selfhost_vps_host" "cp" {
  ssh_connection {
    host = "203.0.113.10"
    port = 22
    # host_key = "ssh-ed25519 AAAA..."  # pin it; else the first key seen is recorded
    # bastion { host = "198.51.100.7" }
  }
  hostname       = "cp-1"
  timezone       = "Europe/Paris"
  packages       = ["curl", "fail2ban"]
  swap           = false
  kernel_modules = ["overlay", "br_netfilter"]
  sysctl = {
    "net.ipv4.ip_forward" = "1"
  }
  ssh_hardening {
    password_authentication = false
    permit_root_login       = "prohibit-password"
  }
  firewall {
    allow { port = "22" }
    allow { port = "80" }
    allow { port = "443" }
    allow {
      port    = "6443"
      sources = ["10.0.0.0/8"]
    }
    allow {
      port     = "30000-32767"
      protocol = "tcp"
    }
  }
  admin_user {
    name            = "ops"
    authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"]
    sudo            = true
  }
  container_runtime = "containerd"
  on_destroy        = "keep"
}
