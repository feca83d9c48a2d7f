"""VoIP Number provider tests."""
