# Import by namespace/name. An import has no configuration, so the
# kubeconfig is read as kubectl finds it ($KUBECONFIG, else
# ~/.kube/config): point it at the file the resource's `kubeconfig`
# attribute reads. The rest is read back from the agent's objects (its
# last-applied annotation and its Secret).
KUBECONFIG=./cluster.kubeconfig terraform import selfhost_agent.research agents/research
