"""Bandwidth: Messaging API v2 out, JSON arrays of events in, guarded by HTTP Basic auth."""
