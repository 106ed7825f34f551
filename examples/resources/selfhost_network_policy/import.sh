# Import by namespace/name. The kubeconfig is read as kubectl finds it
# ($KUBECONFIG, else ~/.kube/config): point it at the file the resource's
# `kubeconfig` attribute reads.
KUBECONFIG=./cluster.kubeconfig terraform import selfhost_network_policy.research agents/research-isolation
