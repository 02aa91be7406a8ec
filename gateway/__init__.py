"""The web gateway: REST API, sign-in and the web UI, in front of the services."""
