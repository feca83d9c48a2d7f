"""A fake 382 Communications: sendsms.cgi on 127.0.0.1, and its webhooks fired at a gateway.

An independent model of the carrier, written from shared/providers/382com.md (the jambonz
plug-in's behaviour); it does not import smsbridge's 382com provider, so the two cannot share
a mistake. It reads the query string as a CGI script does (split on ``&`` and ``=``, then
%-decode), so a sender that does not escape ``&`` in a text sees the text cut short here as
it would at 382.

What 382 answers is not published: the fake answers ``200 OK`` to a send it takes and
``200 ERROR: <reason>`` to one it refuses (credentials, numbers, missing text). 382 signs
nothing and sends no delivery receipts.

    fake = FakeCom382()
    server = start_server(fake.app)             # base_url for the provider: server.url
    fake.fail_next(503, retry_after=5)          # the next send gets a bare 503
    fake.fail_next(200, "ERROR: destination not reachable")
    await fake.fire_inbound(gateway_inbound_url, source="4385550123",
                            destination="5145550100", message="hi")

Run on its own: ``python -m smsbridge.testing.fake_com382 --port 9382``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .fake_base import FakeCarrier, WebhookAnswer, fake_parser, send_webhook, serve

DEFAULT_USERNAME = "acme382"
DEFAULT_PASSWORD = "Pa55&word=382"  # '&' and '=' prove the sender escapes the query
SEND_PATH = "/sendsms.cgi"
_TEN_DIGITS = re.compile(r"[2-9][0-9]{9}")


@dataclass(frozen=True)
class RecordedRequest:
    """One request sendsms.cgi received: the raw query as sent and its decoded pairs."""

    method: str
    path: str
    raw_query: str
    params: tuple[tuple[str, str], ...]
    auth_ok: bool

    def get(self, name: str) -> str | None:
        """The first value of ``name`` in the query, if any."""
        return next((value for key, value in self.params if key == name), None)


@dataclass(frozen=True)
class SentMessage:
    """A send the fake took: a text (``message``) or a picture (``file_url``)."""

    id: str  # the fake's own: 382 hands out none
    source: str
    destination: str
    message: str | None
    file_url: str | None


class FakeCom382(FakeCarrier[RecordedRequest, SentMessage, str]):
    """An in-memory 382 account speaking sendsms.cgi and 382's inbound webhook formats."""

    def __init__(self, username: str = DEFAULT_USERNAME,
                 password: str = DEFAULT_PASSWORD) -> None:
        super().__init__()
        self.username = username
        self.password = password
        self._ids = itertools.count(1)
        self.app = Starlette(routes=[Route(SEND_PATH, self._send, methods=["GET"])])

    # --- knobs -------------------------------------------------------------------------

    def fail_next(self, http_status: int, body: str = "", times: int = 1,
                  retry_after: float | None = None, *, raw_body: str | None = None) -> None:
        """Answer the next ``times`` sends with this status and plain-text body (or HTML)."""
        self._queue_failure(body, http_status, times, retry_after, raw_body)

    # --- sendsms.cgi ---------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        raw_query = request.scope["query_string"].decode("latin-1")
        params = tuple(parse_qsl(raw_query, keep_blank_values=True))
        fields = dict(params)
        auth_ok = (fields.get("user"), fields.get("pass")) == (self.username, self.password)
        self._keep_request(RecordedRequest(request.method, request.url.path, raw_query, params,
                                           auth_ok))
        if not auth_ok:
            return _answer("ERROR: invalid user or pass")
        failed = self._failure_answer(
            lambda failure: PlainTextResponse(failure.error, failure.http_status))
        return failed or self._accept(params)

    def _accept(self, params: tuple[tuple[str, str], ...]) -> Response:
        """Check a send the way a strict sendsms.cgi would, and keep it."""
        names = [key for key, _ in params]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            return _answer(f"ERROR: {', '.join(repeated)} given more than once")
        fields = dict(params)
        for key in ("source", "destination"):
            if not _TEN_DIGITS.fullmatch(fields.get(key, "")):
                return _answer(f"ERROR: {key} must be a 10-digit number")
        text, file_url = fields.get("message"), fields.get("file_url")
        if (text is None) == (file_url is None):
            return _answer("ERROR: give message or file_url")
        if text is not None and not text:
            return _answer("ERROR: message is empty")
        if file_url is not None and not file_url.startswith(("http://", "https://")):
            return _answer("ERROR: file_url must be an http(s) URL")
        self._keep_message(SentMessage(f"fake382-{next(self._ids)}", fields["source"],
                                       fields["destination"], text, file_url))
        return _answer("OK")

    # --- webhooks fired at the gateway ---------------------------------------------------

    async def fire_inbound(self, url: str, *, source: str, destination: str, message: str,
                           type: str = "sms") -> WebhookAnswer:
        """POST an inbound SMS (or, with ``type="mms"``, a picture URL) as 382's JSON."""
        document = {"source": source, "destination": destination, "type": type,
                    "message": message}
        return await send_webhook("POST", url, data=json.dumps(document),
                                  headers={"Content-Type": "application/json"})

    async def fire_inbound_lines(self, url: str, *, source: str, destination: str,
                                 message: str) -> WebhookAnswer:
        """POST an inbound message in the newline-separated key=value format 382 documented."""
        body = f"source={source}\ndestination={destination}\nmessage={message}\n"
        return await send_webhook("POST", url, data=body.encode(),
                                  headers={"Content-Type": "text/plain; charset=utf-8"})


def _answer(text: str) -> PlainTextResponse:
    """sendsms.cgi's answer: HTTP 200 and a line of plain text, whatever happened."""
    return PlainTextResponse(text + "\n", 200)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake 382 Communications sendsms.cgi with uvicorn."""
    parser = fake_parser("382 Communications API", 9382)
    parser.add_argument("--username", default=DEFAULT_USERNAME, help="API user (user=)")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="API password (pass=)")
    args = parser.parse_args(argv)
    fake = FakeCom382(args.username, args.password)
    serve(fake.app, args.host, args.port,
          f"fake 382com on http://{args.host}:{args.port}{SEND_PATH} (user {fake.username})")


if __name__ == "__main__":
    main()
