"""Short-lived access to the gateway for CLI commands: no workers, no HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .config import Settings
from .runtime import Runtime
from .service import Gateway


@asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """A migrated, started gateway without workers, closed on exit."""
    runtime = Runtime(settings, run_workers=False)
    gateway = await runtime.start()
    try:
        yield gateway
    finally:
        await runtime.stop()


async def provision(
    settings: Settings, key_name: str = "default"
) -> tuple[dict[str, str], str | None]:
    """Migrate, create webhook tokens, and create a first API key if the store has none."""
    runtime = Runtime(settings, run_workers=False)
    await runtime.start()
    try:
        key = await runtime.ensure_first_api_key(key_name)
        assert runtime.gateway is not None
        return dict(runtime.gateway.tokens), key
    finally:
        await runtime.stop()
