"""The HTTP API as a service of its own (`vigil api`, service.py, app.py) and its routes, one
module per concept (each a router factory the app includes)."""
