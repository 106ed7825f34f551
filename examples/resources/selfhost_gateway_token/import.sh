# Import an existing token by value, read from an environment variable so it
# stays out of shell history and process listings:
GATEWAY_TOKEN='...' terraform import selfhost_gateway_token.gw env:GATEWAY_TOKEN
