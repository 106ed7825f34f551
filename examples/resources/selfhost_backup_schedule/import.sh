# Import by "namespace/name". The kubeconfig is read as kubectl finds it
# ($KUBECONFIG, else ~/.kube/config): point it at the file the
# configuration's `kubeconfig` holds. The configuration comes from the
# CronJob, the secrets from its Secret.
KUBECONFIG=./kubeconfig terraform import selfhost_backup_schedule.research_data agents/research-data
