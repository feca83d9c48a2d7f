"""Simwood provider tests."""
