# Import a host by user@host:port. The SSH key comes from the provider's
# ssh {} block (or the agent); the host key seen is recorded in state.
terraform import selfhost_vps_host.cp root@203.0.113.10:22
