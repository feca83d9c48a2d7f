"""Fake carriers and a server runner: for tests, benchmarks, and trying smsbridge freely."""
