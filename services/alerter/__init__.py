"""The alerter service: alerts delivered to operators (webhooks, ...)."""
