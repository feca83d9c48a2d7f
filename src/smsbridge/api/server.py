"""How uvicorn serves the gateway: an over-long URL is answered with a 414 problem document.

uvicorn's httptools protocol buffers a URL of any length, and when it is over the 64 KiB
that httptools can parse, answers a plain-text 400. ``GatewayHttpProtocol`` stops
reading at ``MAX_URL_BYTES`` and answers as the API does; ``UrlLengthLimit`` answers the
same for URLs that reach the app through another server (h11, or another ASGI server).
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from .problems import PROBLEM_MEDIA_TYPE, problem, problem_body

# Twice the longest real carrier webhook URL: a GET callback with 1,600 characters of
# percent-encoded UTF-8 text and ten media URLs is about 16 KiB.
MAX_URL_BYTES = 32 * 1024
LINGER_SECONDS = 2.0
_TITLE = "URI too long"
_DETAIL = f"the URL is over the limit of {MAX_URL_BYTES} bytes"


def _detail(length: int | None) -> str:
    return _DETAIL if length is None else f"the URL has {length} bytes; the limit is " \
                                          f"{MAX_URL_BYTES}"


class UrlLengthLimit:
    """Answers 414 to a request whose path and query pass ``MAX_URL_BYTES``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = len(scope.get("raw_path") or scope["path"]) + len(scope["query_string"])
            if length > MAX_URL_BYTES:
                await problem(414, "uri-too-long", _TITLE, _detail(length),
                              headers={"Connection": "close"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _UrlTooLong(Exception):
    """Raised from the parser callback to stop reading a URL past the limit."""


@functools.cache
def _httptools_protocol() -> type[Any]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GatewayHttpProtocol(HttpToolsProtocol):  # type: ignore[misc]
        """uvicorn's httptools protocol that answers a URL past the limit with a 414 problem."""

        url_too_long = False
        discarding = False

        def on_url(self, url: bytes) -> None:
            if len(self.url) + len(url) > MAX_URL_BYTES:
                # The parser turns this into an HttpParserError, which uvicorn answers
                # through send_400_response below and then closes the connection.
                self.url_too_long = True
                raise _UrlTooLong
            super().on_url(url)

        def send_400_response(self, msg: str) -> None:
            if not self.url_too_long:
                super().send_400_response(msg)
                return
            body = problem_body(414, "uri-too-long", _TITLE, _detail(None))
            head = [b"HTTP/1.1 414 URI Too Long\r\n"]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head.append(b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n"
                        b"content-length: " + str(len(body)).encode() + b"\r\n"
                        b"connection: close\r\n\r\n")
            self.transport.write(b"".join(head) + body)
            # Close lingering, as a browser-facing server must: closing with the rest of the
            # URL unread makes the kernel reset the connection, and the client loses the
            # answer. Read and drop what follows for a moment, then close.
            self.discarding = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)

        def data_received(self, data: bytes) -> None:
            if not self.discarding:
                super().data_received(data)

    return GatewayHttpProtocol


def uvicorn_options() -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that serve the gateway."""
    try:
        return {"http": _httptools_protocol()}
    except ImportError:  # uvicorn without its [standard] extra: h11
        # h11 limits the whole request head; leave room for a URL at the limit, so that
        # UrlLengthLimit answers it rather than h11's plain-text 400.
        return {"http": "h11", "h11_max_incomplete_event_size": MAX_URL_BYTES + 64 * 1024}
