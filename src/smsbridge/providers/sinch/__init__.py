"""Sinch: the SMS REST API (XMS) out, JSON callbacks in."""
