"""Telnyx Messaging API v2: JSON send with a Bearer key, Ed25519-signed JSON webhooks."""
