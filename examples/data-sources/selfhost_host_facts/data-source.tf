data "selfhost_host_facts" "cp" {
  ssh_connection {
    host = "203.0.113.10"
  }
}

output "cp_os" {
  value = "${data.selfhost_host_facts.cp.os} (${data.selfhost_host_facts.cp.arch}, ${data.selfhost_host_facts.cp.cpus} CPUs)"
}
