"""Peerless Network: SMS/MMS by JSON POST to an account-specific URL, inbound by JSON POST."""
