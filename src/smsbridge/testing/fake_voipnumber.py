"""A fake VoIP Number: the send API on 127.0.0.1, and its SMS webhook fired at a gateway.

It is an independent model of the carrier, written from shared/providers/voipnumber.md
(VoIP Number's "API Reference > SMS/MMS" page and the ``voipnumber`` npm README), and does
not import smsbridge's VoIP Number provider (so the two cannot share a mistake).

VoIP Number publishes only its Node SDK, not the HTTP request behind ``sms.send``; the fake
takes what smsbridge's docs describe as the most likely one (a JSON POST carrying
``accountId``, ``apiToken``, ``from``, ``to`` and ``body``) at ``send_path``. Its answers and
error codes are the documented ones: the doubled ``{"status": "OK", "result": ...}`` wrapper
around the queued message record, and ``{"status": "Error", "result": {"error_code": ...}}``
(with HTTP 200, as an SDK that resolves its promise with the error would see it).

    fake = FakeVoipNumber()
    server = start_server(fake.app)             # base_url for the provider: server.url
    fake.fail_next(200, "NUMBER_OWNERSHIP")     # the next send is refused with that code
    fake.fail_next(429, retry_after=5)          # the next send is throttled (no JSON body)
    await fake.fire_inbound(gateway_inbound_url, from_="+447700900123", to="+447700900456",
                            body="hi")

VoIP Number sends no delivery receipts and signs nothing; its webhook carries
``Host: api.voipnumber.net``, which the fake sends too.

Run on its own: ``python -m smsbridge.testing.fake_voipnumber --port 9012``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .fake_base import FakeCarrier, RecordedRequest, WebhookAnswer, fake_parser, send_webhook, serve

DEFAULT_ACCOUNT_ID = "a7c1e0f2-5b3d-4e8a-9f10-2c4d6e8fa0b1"
DEFAULT_API_TOKEN = "vn_T0ken3f9a1c2b7d4e6f8091a2b3c4d5e6"
DEFAULT_SEND_PATH = "/sms/send"
DEFAULT_NUMBERS = ("+15145550100", "+447700900456")
# A number that exists on VoIP Number but belongs to someone else.
OTHER_ACCOUNTS_NUMBER = "+447700900999"
WEBHOOK_HOST = "api.voipnumber.net"

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")

# The documented error codes and their descriptions (API Reference > SMS/MMS).
ERRORS: dict[str, str] = {
    "USER_ACCOUNT_MISSING": "AccountId not set or empty",
    "API_TOKEN_MISSING": "API token not set or empty",
    "USER_NOT_FOUND": "User not found",
    "API_TOKEN_INVALID": "API token doesn't match AccountId",
    "NUMBER_NOT_FOUND": "Number doesn't exist on VoIP Number",
    "NUMBER_OWNERSHIP": "Number doesn't belong to this account",
    "MESSAGE_INVALID": "Coding syntax error",
}


def _created(when: datetime) -> str:
    """The human-readable time VoIP Number prints beside its timestamps."""
    return when.strftime("%d %b %Y %H:%M:%S")


def _error(code: str, http_status: int = 200) -> JSONResponse:
    """VoIP Number's error answer for one of its codes."""
    return JSONResponse({"status": "Error",
                         "result": {"error_code": code, "error": ERRORS.get(code, code)}},
                        status_code=http_status)


@dataclass
class SentMessage:
    """A message the fake accepted (a Messaging Data Record)."""

    id: str
    from_: str
    to: str
    body: str
    status: str
    timestamp_s: int


class FakeVoipNumber(FakeCarrier[RecordedRequest, SentMessage, "str | None"]):
    """An in-memory VoIP Number account speaking its documented answers and webhook."""

    def __init__(self, account_id: str = DEFAULT_ACCOUNT_ID,
                 api_token: str = DEFAULT_API_TOKEN, *, numbers: Iterable[str] = DEFAULT_NUMBERS,
                 send_path: str = DEFAULT_SEND_PATH) -> None:
        super().__init__()
        self.account_id = account_id
        self.api_token = api_token
        self.numbers: set[str] = set(numbers)
        self.send_path = send_path
        self.app = Starlette(routes=[Route(send_path, self._send, methods=["POST"])])

    # --- knobs -------------------------------------------------------------------------

    def fail_next(self, http_status: int, error_code: str | None = None, times: int = 1,
                  retry_after: float | None = None, *, raw_body: str | None = None) -> None:
        """Answer the next ``times`` sends with this error code (None: a bare HTTP error)."""
        if raw_body is None and error_code is None:
            raw_body = f"HTTP {http_status}"  # a proxy's or a rate limiter's bare answer
        self._queue_failure(error_code, http_status, times, retry_after, raw_body)

    # --- the send API --------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        try:
            parsed: Any = json.loads(await request.body())
        except ValueError:
            parsed = None
        body = parsed if isinstance(parsed, dict) else {}
        auth_ok = (body.get("accountId") == self.account_id
                   and body.get("apiToken") == self.api_token)
        self._keep_request(RecordedRequest(request.method, request.url.path, body, auth_ok))
        failed = self._failure_answer(
            lambda failure: _error(failure.error or "MESSAGE_INVALID", failure.http_status))
        if failed is not None:
            return failed
        if not isinstance(parsed, dict):
            return _error("MESSAGE_INVALID")
        return self._accept(body)

    def _accept(self, body: dict[str, Any]) -> Response:
        """Check a send the way the documented error codes describe, and queue it."""
        account, token = body.get("accountId"), body.get("apiToken")
        if not isinstance(account, str) or not account:
            return _error("USER_ACCOUNT_MISSING")
        if not isinstance(token, str) or not token:
            return _error("API_TOKEN_MISSING")
        if account != self.account_id:
            return _error("USER_NOT_FOUND")
        if token != self.api_token:
            return _error("API_TOKEN_INVALID")
        from_, to, text = body.get("from"), body.get("to"), body.get("body")
        if not isinstance(from_, str) or not isinstance(to, str) or not isinstance(text, str):
            return _error("MESSAGE_INVALID")
        if from_ not in self.numbers:
            known = from_ == OTHER_ACCOUNTS_NUMBER
            return _error("NUMBER_OWNERSHIP" if known else "NUMBER_NOT_FOUND")
        if not _E164.fullmatch(to) or not text:
            return _error("MESSAGE_INVALID")
        now = datetime.now(UTC)
        sent = SentMessage(str(uuid.uuid4()), from_, to, text, "queued", int(now.timestamp()))
        self._keep_message(sent)
        record = {"status": sent.status, "body": sent.body, "timestamp_s": sent.timestamp_s,
                  "created": _created(now), "id": sent.id}
        # The doubled wrapper is what the API reference prints for a successful send.
        return JSONResponse({"status": "OK", "result": {"status": "OK", "result": record}})

    # --- the SMS webhook fired at the gateway ----------------------------------------------

    def inbound_payload(self, *, from_: str, to: str, body: str = "", kind: str = "sms",
                        mdr_id: str | None = None) -> dict[str, Any]:
        """An inbound SMS/MMS webhook body, as the npm README documents it."""
        now = time.time()
        return {"status": "received", "from": from_, "to": to, "type": kind, "body": body,
                "mdr_timestamp_s": int(now),
                "mdr_created": _created(datetime.fromtimestamp(now, UTC)),
                "mdr_id": mdr_id or str(uuid.uuid4())}

    async def fire_inbound(self, url: str, *, from_: str, to: str, body: str = "",
                           kind: str = "sms", mdr_id: str | None = None) -> WebhookAnswer:
        """POST an inbound-message webhook to ``url``; the gateway's status, headers, body."""
        payload = self.inbound_payload(from_=from_, to=to, body=body, kind=kind, mdr_id=mdr_id)
        return await self.post_webhook(url, json.dumps(payload))

    async def post_webhook(self, url: str, raw: str) -> WebhookAnswer:
        """POST ``raw`` to ``url`` with the headers VoIP Number's webhook carries."""
        return await send_webhook("POST", url, data=raw, headers={
            "Content-Type": "application/json", "Host": WEBHOOK_HOST,
            "X-Forwarded-Port": "443", "X-Forwarded-Proto": "https"})


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake VoIP Number account with uvicorn."""
    parser = fake_parser("VoIP Number SMS API", 9012)
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID, help="accountId")
    parser.add_argument("--api-token", default=DEFAULT_API_TOKEN, help="apiToken")
    parser.add_argument("--send-path", default=DEFAULT_SEND_PATH, help="path of the send API")
    args = parser.parse_args(argv)
    fake = FakeVoipNumber(args.account_id, args.api_token, send_path=args.send_path)
    serve(fake.app, args.host, args.port,
          f"fake VoIP Number on http://{args.host}:{args.port}{fake.send_path}"
          f" (accountId {fake.account_id}, numbers {', '.join(sorted(fake.numbers))})")


if __name__ == "__main__":
    main()
