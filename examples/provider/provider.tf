terraform {
  required_providers {
    selfhost = {
      source = "selfhost/selfhost"
    }
  }
}

# The provider needs no configuration for the gateway token. SSH defaults
# and a default kubeconfig for the host and cluster resources are set here.
provider "selfhost" {}
