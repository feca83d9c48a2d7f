"""What the carriers' credentials-check and number-list tests share.

A carrier's ``test_<carrier>_account.py`` serves its recorded answers with ``serve_reads``
(GET, unlike the send replays), checks each refusal or failure with ``assert_fails``, and
runs its fake carrier with ``serve_fake``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

import aiohttp
import pytest
from starlette.requests import Request

from smsbridge.core.errors import ProviderError
from smsbridge.testing.server import RunningServer, free_port, start_server
from tests.providers.replay import Replay, serve_replay

AccountCall = Callable[[aiohttp.ClientSession], Awaitable[Any]]


class HasApp(Protocol):
    app: Any


FakeT = TypeVar("FakeT", bound=HasApp)


def path_and_query(request: Request, raw: bytes) -> tuple[str, str]:
    """Keep the path and the raw query string."""
    return request.url.path, request.url.query


def path_query_auth(request: Request, raw: bytes) -> tuple[str, str, str | None]:
    """Keep the path, the raw query string and the Authorization header."""
    return request.url.path, request.url.query, request.headers.get("authorization")


def serve_reads(note: Callable[[Request, bytes], Any], content_type: str = "application/json"
                ) -> Iterator[tuple[Replay, RunningServer]]:
    """A replay answering GETs (200 and ``content_type`` by default); ``yield from`` it."""
    yield from serve_replay(Replay(200, content_type, note), ("GET",))


def serve_fake(carrier: FakeT) -> Iterator[tuple[FakeT, RunningServer]]:
    """``carrier``'s app on 127.0.0.1 for one test; ``yield from`` it."""
    server = start_server(carrier.app)
    try:
        yield carrier, server
    finally:
        server.stop()


def unreachable_url() -> str:
    """An address on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


async def closed_session() -> aiohttp.ClientSession:
    """A session any request on which raises: proof that an answer needed none."""
    session = aiohttp.ClientSession()
    await session.close()
    return session


async def assert_fails(calls: Iterable[AccountCall], http: aiohttp.ClientSession,
                       error: type[ProviderError], retryable: bool, code: str, *,
                       secret: str | None = None) -> list[ProviderError]:
    """Each call raises exactly ``error`` with this retryability and code, ``secret`` unshown."""
    raised: list[ProviderError] = []
    for call in calls:
        with pytest.raises(ProviderError) as err:
            await call(http)
        assert (type(err.value), err.value.retryable, err.value.code) == (error, retryable, code)
        if secret is not None:
            assert secret not in str(err.value) and secret not in repr(err.value)
        raised.append(err.value)
    return raised
