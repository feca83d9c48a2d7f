"""Peerless Network provider tests."""
