"""Plivo: the Message API, and Plivo's V3-signed form webhooks."""
