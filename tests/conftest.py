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
from tests.pgcluster import PgClusterUnavailable, start_cluster  # noqa: E402

PG_ADMIN = os.environ.get("SMSBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_refusal(url: str) -> str | None:
    """Why the server at ``url`` does not take the tests' connection, or None when it does."""
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.OperationalError as exc:
        return " ".join(str(exc).split())


def _pg_place(url: str) -> str:
    """HOST:PORT of ``url``, without the credentials it may hold."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}"


@pytest.fixture(scope="session")
def pg_admin(pytestconfig: pytest.Config) -> Iterator[str]:
    """The admin URL of the tests' PostgreSQL: the configured server, else a throwaway cluster.

    ``$SMSBRIDGE_TEST_PG`` or postgres@127.0.0.1:5432, started if it is down; when it is missing or
    refuses the connection (a fresh install has no trust authentication), a cluster of the
    session's own (tests/pgcluster.py), stopped and deleted at the end.
    """
    refusal = _pg_refusal(PG_ADMIN)
    if refusal and shutil.which("pg_ctlcluster"):
        versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
        if versions:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main",
                            "start"], check=False, capture_output=True)
            refusal = _pg_refusal(PG_ADMIN)
    if refusal is None:
        yield PG_ADMIN
        return
    try:
        cluster = start_cluster()
    except PgClusterUnavailable as exc:
        pytest.fail(f"PostgreSQL at {_pg_place(PG_ADMIN)} refuses the tests ({refusal}), "
                    f"and {exc}")
    try:
        line = (f"PostgreSQL at {_pg_place(PG_ADMIN)} refuses the tests ({refusal}); using a "
                f"throwaway cluster on 127.0.0.1:{cluster.port} for this session")
        reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
        capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
        if reporter is not None and capture is not None:
            # Output is captured while fixtures run; this line is for the person at the terminal.
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)
        yield cluster.url
    finally:
        cluster.stop()


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


@pytest.fixture(autouse=True, scope="session")
def _data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the gateway's data folder (and its secret key file) out of the user's home."""
    before = os.environ.get("SMSBRIDGE_DATA_DIR")
    os.environ["SMSBRIDGE_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    yield
    if before is None:
        os.environ.pop("SMSBRIDGE_DATA_DIR", None)
    else:
        os.environ["SMSBRIDGE_DATA_DIR"] = before
