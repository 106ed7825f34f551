resource "selfhost_gateway_token" "gw" {
  length        = 48
  rotation_days = 90
  keepers = {
    gateway = "v1"
  }
}
