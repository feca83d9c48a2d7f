"""The HTTP API: REST endpoints, carrier webhooks, health; built by ``create_app``."""

from .app import create_app

__all__ = ["create_app"]
