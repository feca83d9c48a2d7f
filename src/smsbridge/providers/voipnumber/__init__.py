"""VoIP Number: SMS out by JSON POST (path unconfirmed, configurable), JSON webhooks in."""
