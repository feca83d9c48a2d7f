"""A fake Simwood: the v3 SMS endpoint on 127.0.0.1, and Simwood's webhooks fired at a gateway.

It is an independent model of the carrier, written from shared/providers/simwood.md and
Simwood's API v3 reference, and does not import smsbridge's Simwood provider (so the two
cannot share a mistake). Simwood signs none of its webhooks.

    fake = FakeSimwood()
    server = start_server(fake.app)             # base_url for the provider: server.url
    fake.barred.add("447700900999")             # sends to it are refused (HTTP 400)
    fake.allowed_ips = {"203.0.113.7"}          # calls from anywhere else get HTTP 403
    fake.fail_next(503, retry_after=5)          # the next send is answered 503
    await fake.fire_inbound(gateway_inbound_url, from_="447700900321", to="447700900123",
                            message="hi")
    await fake.deliver_all()                    # reports 1, 2 and 11 for every send

Like Simwood, it honours ``concat``: a text longer than ``concat`` parts is cut, so a
sender that forgets it loses the end of its long texts. Simwood documents no error bodies
for this endpoint; the fake answers with the ``{"success": false, "errors": [...]}`` shape
of Simwood's other endpoints, and HTTP 400 for a refused message (both unconfirmed).

Run on its own: ``python -m smsbridge.testing.fake_simwood --port 9011``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core.segments import count_segments, split_segments
from .fake_base import (
    FakeCarrier,
    RecordedRequest,
    WebhookAnswer,
    basic_auth_ok,
    fake_parser,
    send_webhook,
    serve,
)

DEFAULT_ACCOUNT = "930123"
DEFAULT_USERNAME = "930123-api"
DEFAULT_API_KEY = "5imw00dFakeApiKey0123456789abcdef"

# "Recipient in e164 format (e.g. 447700900123)": digits, no '+'.
_E164_DIGITS = re.compile(r"[1-9][0-9]{6,14}")
# "alpha-numeric (maximum 11 characters if alphanumeric)".
_SENDER_ID = re.compile(r"[A-Za-z0-9 ]{1,11}")
# A single SMS holds 160 GSM-7 characters or 70 UCS-2 ones; one part of a long text less.
_SINGLE_PART = {"GSM-7": 160, "UCS-2": 70}

# What a message that reaches a handset reports: received, submitted, delivered.
DELIVERED_REPORTS = (1, 2, 11)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _refusal(status: int, *errors: str) -> JSONResponse:
    return JSONResponse({"success": False, "errors": list(errors)}, status_code=status)


def _cut(text: str, concat: int) -> str:
    """What reaches the handset when at most ``concat`` parts may carry ``text``."""
    parts = split_segments(text)
    if len(parts) <= concat:
        return text
    if concat == 1:
        return text[:_SINGLE_PART[count_segments(text).encoding]]
    return "".join(parts[:concat])


@dataclass
class SentMessage:
    """A message the fake accepted; ``message`` is what the handset gets (maybe cut)."""

    id: str
    to: str
    from_: str
    message: str
    concat: int
    report: str | None
    parts: int


class FakeSimwood(FakeCarrier[RecordedRequest, SentMessage, str]):
    """An in-memory Simwood account speaking the v3 SMS endpoint and its webhook formats."""

    def __init__(self, account: str = DEFAULT_ACCOUNT, username: str = DEFAULT_USERNAME,
                 api_key: str = DEFAULT_API_KEY, *, barred: Iterable[str] = ()) -> None:
        super().__init__()
        self.account = account
        self.username = username
        self.api_key = api_key
        self.barred: set[str] = set(barred)
        self.allowed_ips: set[str] | None = None  # None: the API takes calls from anywhere
        self.app = Starlette(routes=[
            Route("/v3/messaging/{account}/sms", self._send, methods=["POST"]),
            Route("/v3/accounts/{account}/type", self._account_type, methods=["GET"]),
            Route("/v3/tools/myip", self._my_ip, methods=["GET"]),
        ])

    # --- knobs -------------------------------------------------------------------------

    def fail_next(self, http_status: int, detail: str = "", times: int = 1,
                  retry_after: float | None = None, *, raw_body: str | None = None) -> None:
        """Answer the next ``times`` sends with this error (``raw_body``: a non-JSON body)."""
        self._queue_failure(detail or f"HTTP {http_status}", http_status, times, retry_after,
                            raw_body)

    def _forget_knobs(self) -> None:
        self.barred.clear()
        self.allowed_ips = None

    # --- the v3 API ----------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        try:
            loaded: Any = json.loads(await request.body())
        except ValueError:
            loaded = None
        body = loaded if isinstance(loaded, dict) else {}
        recorded = self._keep_request(RecordedRequest(
            request.method, request.url.path, body,
            basic_auth_ok(request, self.username, self.api_key)))
        refused = self._access_refused(request, recorded)
        if refused is not None:
            return refused
        failed = self._failure_answer(
            lambda failure: _refusal(failure.http_status, failure.error))
        if failed is not None:
            return failed
        if loaded is None or not isinstance(loaded, dict):
            return _refusal(400, "Request body must be a JSON object")
        return self._accept(body)

    async def _account_type(self, request: Request) -> Response:
        """The account's type and limits, behind the same address check and auth as sends."""
        recorded = self._keep_request(RecordedRequest(
            request.method, request.url.path, {},
            basic_auth_ok(request, self.username, self.api_key)))
        refused = self._access_refused(request, recorded)
        return refused or JSONResponse({"success": True, "data": {
            "account_type": "managed", "number_limit": 1000, "channel_limit": 100,
            "min_prepay": 0}})

    def _access_refused(self, request: Request, recorded: RecordedRequest) -> Response | None:
        """The answer to a caller the API will not serve: address, credentials, account."""
        client = request.client.host if request.client else ""
        if self.allowed_ips is not None and client not in self.allowed_ips:
            return _refusal(403, f"Access denied from {client}")
        if not recorded.auth_ok:
            return Response("Unauthorized", 401, {"WWW-Authenticate": 'Basic realm="API"'})
        if request.path_params["account"] != self.account:
            return _refusal(404, "Not found")
        return None

    async def _my_ip(self, request: Request) -> Response:
        """The caller's address as the API sees it; needs no credentials."""
        return JSONResponse({"ip": request.client.host if request.client else ""})

    def _accept(self, body: dict[str, Any]) -> Response:
        """Validate a send the way the SMS endpoint documents it, and queue it."""
        to, from_, text = body.get("to"), body.get("from"), body.get("message")
        concat, report = body.get("concat", 1), body.get("report")
        if not isinstance(to, str) or not _E164_DIGITS.fullmatch(to):
            return _refusal(400, f"Invalid destination {to!r}: e164 digits, no '+'")
        if not isinstance(from_, str) or not (_E164_DIGITS.fullmatch(from_)
                                              or _SENDER_ID.fullmatch(from_)):
            return _refusal(400, f"Invalid originator {from_!r}")
        if not isinstance(text, str) or not text:
            return _refusal(400, "No message")
        if isinstance(concat, bool) or not isinstance(concat, int) or concat < 1:
            return _refusal(400, "concat must be a positive integer")
        if report is not None and not (isinstance(report, str)
                                       and report.startswith(("http://", "https://"))):
            return _refusal(400, "report must be a URL")
        if to in self.barred:
            return _refusal(400, f"Destination {to} is barred")
        delivered = _cut(text, concat)
        sent = SentMessage(secrets.token_hex(16), to, from_, delivered, concat, report,
                           len(split_segments(delivered)))
        self._keep_message(sent)
        if body.get("extended") in (1, "1", True):
            return JSONResponse({"success": True, "data": {
                "id": sent.id, "desc": "SMS - United Kingdom", "parts": sent.parts,
                "charge": round(0.02 * sent.parts, 2), "currency": "GBP"}})
        return JSONResponse([{"id": sent.id}])

    # --- webhooks fired at the gateway ---------------------------------------------------

    def inbound_event(self, *, from_: str, to: str, message: str,
                      event_id: str | None = None, legacy: bool = False) -> dict[str, Any]:
        """An inbound SMS event (``http_json`` mode; ``legacy``: the old ``http`` mode)."""
        return {"app": "mvno_inbound_sms" if legacy else "sms_inbound",
                "id": event_id or secrets.token_hex(16),
                "data": {"destination": to, "length": len(message), "message": message,
                         "originator": from_, "time": _now()}}

    async def fire_inbound(self, url: str, *, from_: str, to: str, message: str,
                           event_id: str | None = None, legacy: bool = False) -> WebhookAnswer:
        """POST an inbound SMS to ``url`` as JSON (``legacy``: as the form field payload)."""
        event = self.inbound_event(from_=from_, to=to, message=message, event_id=event_id,
                                   legacy=legacy)
        if legacy:
            return await self.fire_form(url, event)
        return await self.fire_json(url, event)

    def report_event(self, message_id: str, status: int) -> dict[str, Any]:
        """A delivery report for ``message_id`` with a numeric status."""
        return {"app": "sms_send_status", "id": message_id,
                "data": {"dtime": _now(), "status": status}}

    async def fire_report(self, url: str, message_id: str, status: int) -> WebhookAnswer:
        """POST a delivery report to a send's report ``url`` (``%id%``/``%status%`` filled)."""
        target = url.replace("%id%", message_id).replace("%status%", str(status))
        return await self.fire_form(target, self.report_event(message_id, status))

    async def deliver_all(self) -> list[WebhookAnswer]:
        """Fire reports 1, 2 and 11 for every accepted message that named a report URL."""
        answers = []
        for sent in list(self.messages):
            if sent.report:
                for status in DELIVERED_REPORTS:
                    answers.append(await self.fire_report(sent.report, sent.id, status))
        return answers

    async def fire_json(self, url: str, event: dict[str, Any]) -> WebhookAnswer:
        """POST any event as a JSON body (how ``http_json`` numbers get theirs)."""
        return await send_webhook("POST", url, data=json.dumps(event),
                                  headers={"Content-Type": "application/json"})

    async def fire_form(self, url: str, event: dict[str, Any]) -> WebhookAnswer:
        """POST any event as the form field ``payload`` (reports, the legacy ``http`` mode)."""
        return await send_webhook(
            "POST", url, data=urlencode({"payload": json.dumps(event)}),
            headers={"Content-Type": "application/x-www-form-urlencoded"})


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Simwood account with uvicorn."""
    parser = fake_parser("Simwood v3 SMS API", 9015)
    parser.add_argument("--account", default=DEFAULT_ACCOUNT, help="account number")
    parser.add_argument("--username", default=DEFAULT_USERNAME, help="API username")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="API key")
    args = parser.parse_args(argv)
    fake = FakeSimwood(args.account, args.username, args.api_key)
    serve(fake.app, args.host, args.port,
          f"fake Simwood on http://{args.host}:{args.port} (account {fake.account},"
          f" API username {fake.username})")


if __name__ == "__main__":
    main()
