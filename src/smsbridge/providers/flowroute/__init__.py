"""Flowroute: Messaging API v2.1 (JSON:API) out, JSON:API webhooks in."""
