"""The mechanics every fake carrier shares, and no fact about any carrier.

A fake subclasses ``FakeCarrier`` for its records of requests and messages and its queue of
"fail the next send with this answer"; it keeps its own routes, error bodies, validation and
webhook formats, so each fake stays an independent model of its carrier.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aiohttp
from starlette.requests import Request
from starlette.responses import Response

RequestT = TypeVar("RequestT")
MessageT = TypeVar("MessageT")
ErrorT = TypeVar("ErrorT")

# A webhook's answer: the gateway's status, headers (lower-case names) and body.
WebhookAnswer = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class RecordedRequest:
    """One request a JSON API received: its JSON object body ({} if none) and auth verdict."""

    method: str
    path: str
    body: dict[str, Any]
    auth_ok: bool


@dataclass
class Failure(Generic[ErrorT]):
    """One queued failure: the carrier's own error detail, or a raw (non-JSON) body."""

    error: ErrorT
    http_status: int
    retry_after: float | None
    raw_body: str | None
    remaining: int = 1


class FakeCarrier(Generic[RequestT, MessageT, ErrorT]):
    """Requests received, messages accepted, and the fail-next queue, all behind one lock."""

    def __init__(self) -> None:
        self.requests: list[RequestT] = []
        self.messages: list[MessageT] = []
        self._failures: deque[Failure[ErrorT]] = deque()
        self._lock = threading.Lock()

    def _queue_failure(self, error: ErrorT, http_status: int, times: int,
                       retry_after: float | None, raw_body: str | None) -> None:
        with self._lock:
            self._failures.append(Failure(error, http_status, retry_after, raw_body, times))

    def reset(self) -> None:
        """Forget requests, messages, queued failures and what ``_forget_knobs`` forgets."""
        with self._lock:
            self.requests.clear()
            self.messages.clear()
            self._failures.clear()
            self._forget_knobs()

    def message(self, message_id: str) -> MessageT | None:
        """The accepted message with this id, if any (a carrier with other ids overrides it)."""
        return next((m for m in self.messages if getattr(m, "id", None) == message_id), None)

    def _forget_knobs(self) -> None:
        """Put the fake's own knobs (opt-outs, delays) back as new; called under the lock."""

    def _keep_request(self, recorded: RequestT) -> RequestT:
        with self._lock:
            self.requests.append(recorded)
        return recorded

    def _keep_message(self, message: MessageT) -> None:
        with self._lock:
            self.messages.append(message)

    def _take_failure(self) -> Failure[ErrorT] | None:
        with self._lock:
            if not self._failures:
                return None
            failure = self._failures[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.popleft()
            return failure

    def _failure_answer(self, render: Callable[[Failure[ErrorT]], Response]) -> Response | None:
        """The next queued failure as a response (``render`` draws the carrier's error body)."""
        failure = self._take_failure()
        if failure is None:
            return None
        headers = {} if failure.retry_after is None else {
            "Retry-After": f"{failure.retry_after:g}"}
        if failure.raw_body is not None:
            return Response(failure.raw_body, failure.http_status, headers,
                            media_type="text/html")
        response = render(failure)
        response.headers.update(headers)
        return response


def basic_auth_ok(request: Request, user: str, password: str) -> bool:
    """Whether ``request`` carries HTTP Basic credentials equal to ``user`` and ``password``."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given_user, _, given_password = base64.b64decode(
            encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(given_user, user) and hmac.compare_digest(
        given_password, password)


async def send_webhook(method: str, url: str, *, data: Any, headers: dict[str, str]
                       ) -> WebhookAnswer:
    """Send one webhook to the gateway and return its answer."""
    async with aiohttp.ClientSession() as session, session.request(
        method.upper(), url, data=data, headers=headers,
        timeout=aiohttp.ClientTimeout(total=15),
    ) as resp:
        headers_out = {name.lower(): value for name, value in resp.headers.items()}
        return resp.status, headers_out, await resp.read()


def fake_parser(what: str, port: int) -> argparse.ArgumentParser:
    """The command line of a fake carrier: ``--host`` and ``--port`` (each fake its own
    default, so that several run side by side); the fake adds its credentials."""
    parser = argparse.ArgumentParser(description=f"A fake {what} for smsbridge")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=port, help="port to listen on")
    return parser


def serve(app: Any, host: str, port: int, banner: str) -> None:
    """Print ``banner`` to stderr and serve ``app`` with uvicorn until interrupted."""
    import uvicorn

    print(banner, file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")
