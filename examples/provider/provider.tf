terraform {
  required_providers {
    selfhost = {
      source = "selfhost/selfhost"
    }
  }
}

# SSH defaults every host resource and data source inherits. The key set
# here is never stored in state (a key set on a resource's `ssh_connection`
# block is, flagged sensitive), so this is the recommended place for it.
provider "selfhost" {
  ssh {
    user        = "root"
    private_key = file(pathexpand("~/.ssh/id_ed25519"))
    # agent = true                      # or use the SSH agent at SSH_AUTH_SOCK
    # bastion { host = "198.51.100.7" } # a jump host for every host
  }
}
