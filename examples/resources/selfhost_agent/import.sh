# Import by namespace/name. An import has no configuration, so the
# kubeconfig comes from the file KUBECONFIG names (the one the resource's
# `kubeconfig` attribute reads); the rest is read back from the agent's
# objects (its last-applied annotation and its Secret).
KUBECONFIG=./cluster.kubeconfig terraform import selfhost_agent.research agents/research
