"""A test server answering a carrier's API with recorded responses, for the provider tests.

A carrier's test module gives ``new_replay`` (module scope): the carrier's success status,
content type and what to keep of each request; tests/providers/conftest.py serves it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smsbridge.testing.server import RunningServer, start_server


class Replay:
    """Answers every POST with one canned response and remembers what it got."""

    def __init__(self, status: int, content_type: str, note: Callable[[Request, bytes], Any],
                 body: bytes = b"") -> None:
        self.default_status = status
        self.default_content_type = content_type
        self.default_body = body
        self._note = note
        self.reset()

    def reset(self) -> None:
        """The default answer again, and nothing seen."""
        self.status = self.default_status
        self.body = self.default_body
        self.headers: dict[str, str] = {}
        self.content_type = self.default_content_type
        self.seen: list[Any] = []

    def load(self, fixture: Path, status: int, **headers: str) -> None:
        """Answer with a recorded fixture file (an .html one as text/html)."""
        self.body = fixture.read_bytes()
        self.status = status
        self.headers = headers
        self.content_type = "text/html" if fixture.suffix == ".html" else (
            self.default_content_type)

    async def handle(self, request: Request) -> Response:
        """Keep what ``note`` takes of the request; answer the canned response."""
        self.seen.append(self._note(request, await request.body()))
        return Response(self.body, self.status, self.headers, media_type=self.content_type)


def path_headers_body(request: Request, raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """Keep the path, the headers and the raw body."""
    return request.url.path, dict(request.headers), raw


def path_headers_json(request: Request, raw: bytes) -> tuple[str, dict[str, str], Any]:
    """Keep the path, the headers and the body parsed as JSON."""
    return request.url.path, dict(request.headers), json.loads(raw)


def serve_replay(replay: Replay, methods: tuple[str, ...] = ("POST",)
                 ) -> Iterator[tuple[Replay, RunningServer]]:
    """Serve ``replay`` on 127.0.0.1 at every path for ``methods`` (``yield from`` it)."""
    server = start_server(Starlette(routes=[Route("/{path:path}", replay.handle,
                                                  methods=list(methods))]))
    try:
        yield replay, server
    finally:
        server.stop()
