"""Shared fixtures: a real PostgreSQL database per test, and the gateway running over HTTP."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import psycopg
import pytest

# Before any test module imports them (tests/cli does too), so the shared helpers' asserts
# explain their failures.
pytest.register_assert_rewrite("tests.e2e.carriers", "tests.e2e.calls")

from smsbridge.gateway.config import Settings, settings_from_dict  # noqa: E402
from tests.harness import GatewayHarness  # noqa: E402

PG_ADMIN = os.environ.get("SMSBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_up() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """The admin URL of the PostgreSQL server on 127.0.0.1, started if it is down."""
    if not _pg_up() and shutil.which("pg_ctlcluster"):
        versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
        if versions:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main",
                            "start"], check=False, capture_output=True)
    if not _pg_up():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}; run scripts/test, which starts it")
    return PG_ADMIN


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"smsbridge_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_admin.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    """A SQLite database file in the test's temporary folder."""
    return f"sqlite:///{tmp_path}/smsbridge.db"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each store test runs on SQLite and on the real PostgreSQL server."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


FAST_WORKER = {"poll_interval": 0.1, "backoff_base": 0.05, "backoff_max": 0.5,
               "lease_seconds": 5}


def make_settings(database: str, connections: list[dict[str, Any]], *,
                  webhooks: list[dict[str, Any]] | None = None,
                  worker: dict[str, Any] | None = None,
                  public_url: str | None = None) -> Settings:
    """Settings for a test gateway (fast polling and backoff)."""
    server: dict[str, Any] = {"database": database}
    if public_url:
        server["public_url"] = public_url
    return settings_from_dict({
        "server": server,
        "worker": {**FAST_WORKER, **(worker or {})},
        "connections": connections,
        "webhooks": webhooks or [],
    })


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., GatewayHarness]]:
    """Start gateways over real HTTP on 127.0.0.1; all are stopped after the test."""
    started: list[GatewayHarness] = []

    def start(settings: Settings, **kwargs: Any) -> GatewayHarness:
        harness = GatewayHarness.start(settings, **kwargs)
        started.append(harness)
        return harness

    yield start
    for harness in started:
        harness.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for the test's own requests."""
    async with aiohttp.ClientSession() as session:
        yield session


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05
                     ) -> Any:
    """Await ``check()`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
        await asyncio.sleep(interval)
