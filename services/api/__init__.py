"""The HTTP API's routes, one module per concept, each a router factory (see services/alerter/api.py)."""
