"""Simwood: the v3 messaging API out (JSON), ``http_json`` SMS and delivery reports in."""
