# Import by namespace/name; the kubeconfig comes from the file KUBECONFIG names.
KUBECONFIG=./cluster.kubeconfig terraform import selfhost_network_policy.research agents/research-isolation
