# Import a cluster this provider created (it keeps its settings in the
# kube-system/selfhost-k8s-cluster ConfigMap). The ID is the control plane's
# SSH object as JSON, its host key pinned like every connection's; the
# kubeconfig is read from the control plane over SSH. With Terraform 1.5+:
#   import {
#     to = selfhost_k8s_cluster.main
#     id = jsonencode(selfhost_vps_host.cp.ssh)
#   }
terraform import selfhost_k8s_cluster.main \
  '{"host":"203.0.113.10","port":22,"user":"root","host_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA..."}'
