# The provider comes from the caller (module conventions: no provider block
# here). Its `ssh {}` block holds the SSH key the cluster uses for every
# node; its other settings are the caller's.
terraform {
  required_providers {
    selfhost = {
      source = "selfhost/selfhost"
    }
  }
}
