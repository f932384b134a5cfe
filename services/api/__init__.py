"""The HTTP API's routes, one module per concept, each a router factory (hosted by the alerter for now)."""
