"""A fake Sinch: the SMS REST API (XMS) on 127.0.0.1, and its callbacks fired at a gateway.

It is an independent model of the carrier, written from shared/providers/others.md and
Sinch's API reference and SDKs, and does not import smsbridge's Sinch provider (so the two
cannot share a mistake). Callbacks are unsigned unless the fake is given a callback
secret, as a service plan with HMAC callback authentication would be.

    fake = FakeSinch()                          # or FakeSinch(webhook_secret="...")
    server = start_server(fake.app)             # base_url for the provider: server.url
    fake.blocked.add("+14385550199")            # sends to it fail with a 400
    fake.fail_next(429, retry_after=5)          # the next send is throttled
    await fake.fire_inbound(gateway_inbound_url, from_="14385550123", to="15145550100",
                            body="hi")
    await fake.deliver_all()                    # Dispatched + Delivered for every batch

Run on its own: ``python -m smsbridge.testing.fake_sinch --port 9011``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .fake_base import FakeCarrier, RecordedRequest, WebhookAnswer, fake_parser, send_webhook, serve

DEFAULT_SERVICE_PLAN_ID = "jd63jf88477ll123ab4567cd89012ef3"
DEFAULT_API_TOKEN = "s1nchT0kenAbCdEf0123456789abcdef"

# The API takes E.164 numbers ("+" optional); a sender may also be a short code.
_NUMBER = re.compile(r"\+?[1-9][0-9]{6,14}")
_SHORT_CODE = re.compile(r"[0-9]{3,6}")
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# The per-recipient reports of a message that reached the handset.
DELIVERED_REPORTS: tuple[tuple[str, int], ...] = (("Dispatched", 401), ("Delivered", 0))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _new_id() -> str:
    """A ULID-shaped id, as Sinch's batch and inbound ids look."""
    return "".join(secrets.choice(_ULID_ALPHABET) for _ in range(26))


def _error(status: int, code: str, text: str) -> JSONResponse:
    """Sinch's error body."""
    return JSONResponse({"code": code, "text": text}, status_code=status)


@dataclass
class SentBatch:
    """A batch the fake accepted (one per message smsbridge sends)."""

    id: str
    to: list[str]
    from_: str
    type: str
    body: str
    media_url: str | None
    delivery_report: str
    callback_url: str | None


class FakeSinch(FakeCarrier[RecordedRequest, SentBatch, tuple[str, str]]):
    """An in-memory Sinch service plan speaking the real XMS API and callback formats."""

    def __init__(self, service_plan_id: str = DEFAULT_SERVICE_PLAN_ID,
                 api_token: str = DEFAULT_API_TOKEN, *, webhook_secret: str | None = None,
                 blocked: Iterable[str] = ()) -> None:
        super().__init__()
        self.service_plan_id = service_plan_id
        self.api_token = api_token
        self.webhook_secret = webhook_secret
        self.blocked: set[str] = set(blocked)
        self.app = Starlette(routes=[
            Route("/xms/v1/{plan}/batches", self._send, methods=["POST"]),
            Route("/xms/v1/{plan}/batches", self._list, methods=["GET"]),
        ])

    # --- knobs -------------------------------------------------------------------------

    def fail_next(self, http_status: int, text: str = "", code: str = "",
                  times: int = 1, retry_after: float | None = None, *,
                  raw_body: str | None = None) -> None:
        """Answer the next ``times`` sends with this error (``raw_body``: a non-JSON body)."""
        self._queue_failure((code or f"http_{http_status}", text or f"HTTP {http_status}"),
                            http_status, times, retry_after, raw_body)

    def _forget_knobs(self) -> None:
        self.blocked.clear()

    def batch(self, batch_id: str) -> SentBatch | None:
        """The accepted batch with this id, if any."""
        return next((b for b in self.messages if b.id == batch_id), None)

    # --- the XMS API --------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        raw = await request.body()
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        auth_ok = (scheme == "Bearer" and hmac.compare_digest(token, self.api_token)
                   and request.path_params["plan"] == self.service_plan_id)
        recorded = self._keep_request(RecordedRequest(
            request.method, request.url.path, parsed if isinstance(parsed, dict) else {},
            auth_ok))
        if not auth_ok:
            return _error(401, "unauthorized", "Invalid credentials")
        if parsed is None:
            return _error(400, "syntax_invalid_json", "The request body is not valid JSON")
        failed = self._failure_answer(
            lambda failure: _error(failure.http_status, *failure.error))
        return failed or self._accept(recorded.body)

    def _accept(self, body: dict[str, Any]) -> Response:
        """Validate a batch the way the API does, and store it."""
        kind = body.get("type", "mt_text")
        to, from_ = body.get("to"), body.get("from")
        if not isinstance(to, list) or not 1 <= len(to) <= 1000:
            return _error(400, "syntax_constraint_violation", "'to' must list 1 to 1000 numbers")
        for number in to:
            if not isinstance(number, str) or not _NUMBER.fullmatch(number):
                return _error(400, "syntax_invalid_parameter_format",
                              f"Invalid parameter format for 'to': {number}")
        if not isinstance(from_, str) or not (_NUMBER.fullmatch(from_)
                                              or _SHORT_CODE.fullmatch(from_)):
            return _error(400, "syntax_invalid_parameter_format",
                          f"Invalid parameter format for 'from': {from_}")
        media_url: str | None = None
        if kind == "mt_text":
            text = body.get("body")
            if not isinstance(text, str) or len(text) > 2000:
                return _error(400, "syntax_constraint_violation",
                              "'body' must be a string of at most 2000 characters")
        elif kind == "mt_media":
            media = body.get("body")
            url = media.get("url") if isinstance(media, dict) else None
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                return _error(400, "syntax_constraint_violation", "'body.url' must be a URL")
            caption = media.get("message") if isinstance(media, dict) else None
            if caption is not None and not isinstance(caption, str):
                return _error(400, "syntax_constraint_violation", "'body.message' must be text")
            text, media_url = caption or "", url
        else:
            return _error(400, "syntax_constraint_violation", f"unsupported type {kind!r}")
        report = body.get("delivery_report", "none")
        callback = body.get("callback_url")
        if report not in ("none", "summary", "full", "per_recipient", "per_recipient_final"):
            return _error(400, "syntax_constraint_violation", "unknown delivery_report")
        if callback is not None and not (isinstance(callback, str)
                                         and callback.startswith(("http://", "https://"))):
            return _error(400, "syntax_invalid_parameter_format", "callback_url must be a URL")
        refused = [n for n in to if n.lstrip("+") in {b.lstrip("+") for b in self.blocked}]
        if refused:
            return _error(400, "syntax_constraint_violation",
                          f"Recipient {refused[0]} is blocked (opted out)")
        batch = SentBatch(_new_id(), list(to), from_, kind, text, media_url, report, callback)
        self._keep_message(batch)
        now = _now()
        answer: dict[str, Any] = {
            "id": batch.id, "to": batch.to, "from": batch.from_, "canceled": False,
            "type": kind, "created_at": now, "modified_at": now,
            "delivery_report": report, "flash_message": False,
            "body": body.get("body"),
        }
        if callback:
            answer["callback_url"] = callback
        return JSONResponse(answer, status_code=201)

    async def _list(self, request: Request) -> Response:
        """List batches: one page (``page`` from 0, ``page_size``) of the accepted batches."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        auth_ok = (scheme == "Bearer" and hmac.compare_digest(token, self.api_token)
                   and request.path_params["plan"] == self.service_plan_id)
        self._keep_request(RecordedRequest(request.method, request.url.path,
                                           dict(request.query_params), auth_ok))
        if not auth_ok:
            return _error(401, "unauthorized", "Invalid credentials")
        size = int(request.query_params.get("page_size") or 30)
        page = int(request.query_params.get("page") or 0)
        batches = self.messages[page * size:(page + 1) * size]
        return JSONResponse({"count": len(self.messages), "page": page, "page_size": size,
                             "batches": [{"id": b.id} for b in batches]})

    # --- callbacks fired at the gateway -------------------------------------------------

    def inbound_document(self, *, from_: str, to: str, body: str = "",
                         media: Sequence[tuple[str, str]] = (),
                         message_id: str | None = None) -> dict[str, Any]:
        """An inbound callback body: ``mo_text``, or ``mo_media`` when there is media."""
        document: dict[str, Any] = {"id": message_id or _new_id(), "from": from_, "to": to,
                                    "received_at": _now(), "operator_id": "302720"}
        if media:
            document["type"] = "mo_media"
            document["body"] = {"message": body, "media": [
                {"url": url, "content_type": mime, "status": "Uploaded", "code": 0}
                for url, mime in media]}
        else:
            document["type"] = "mo_text"
            document["body"] = body
        return document

    async def fire_inbound(self, url: str, *, from_: str, to: str, body: str = "",
                           media: Sequence[tuple[str, str]] = (),
                           message_id: str | None = None, signed: bool = True,
                           bad_signature: bool = False) -> WebhookAnswer:
        """POST an inbound callback to ``url``; the gateway's status, headers, body."""
        document = self.inbound_document(from_=from_, to=to, body=body, media=media,
                                         message_id=message_id)
        return await self.post(url, document, signed=signed, bad_signature=bad_signature)

    async def fire_report(self, url: str, batch_id: str, status: str, code: int,
                          *, signed: bool = True, bad_signature: bool = False) -> WebhookAnswer:
        """POST a per-recipient delivery report for ``batch_id`` to ``url``."""
        sent = self.batch(batch_id)
        document = {"type": ("recipient_delivery_report_mms" if sent and sent.type == "mt_media"
                             else "recipient_delivery_report_sms"),
                    "batch_id": batch_id, "recipient": sent.to[0] if sent else "+14385550123",
                    "code": code, "status": status, "at": _now()}
        return await self.post(url, document, signed=signed, bad_signature=bad_signature)

    async def deliver_all(self) -> list[WebhookAnswer]:
        """Fire Dispatched then Delivered for every batch that asked for per-recipient reports."""
        answers = []
        for sent in list(self.messages):
            if sent.callback_url and sent.delivery_report.startswith("per_recipient"):
                for status, code in DELIVERED_REPORTS:
                    answers.append(await self.fire_report(sent.callback_url, sent.id, status,
                                                          code))
        return answers

    def signature_headers(self, body: bytes, *, secret: str | None = None) -> dict[str, str]:
        """The x-sinch-webhook-signature headers for ``body`` (HMAC-SHA256, base64)."""
        key = secret or self.webhook_secret or ""
        nonce, stamp = secrets.token_hex(13), str(int(time.time()))
        data = body + f".{nonce}.{stamp}".encode()
        digest = hmac.new(key.encode(), data, hashlib.sha256).digest()
        return {"x-sinch-webhook-signature": base64.b64encode(digest).decode(),
                "x-sinch-webhook-signature-nonce": nonce,
                "x-sinch-webhook-signature-timestamp": stamp,
                "x-sinch-webhook-signature-algorithm": "HmacSHA256"}

    async def post(self, url: str, document: dict[str, Any], *, signed: bool = True,
                   bad_signature: bool = False) -> WebhookAnswer:
        """POST ``document`` as JSON, signed when the plan has a callback secret."""
        body = json.dumps(document).encode()
        headers = {"Content-Type": "application/json"}
        if signed and (self.webhook_secret or bad_signature):
            secret = "not-the-plan-secret" if bad_signature else None
            headers |= self.signature_headers(body, secret=secret)
        return await send_webhook("POST", url, data=body, headers=headers)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Sinch service plan with uvicorn."""
    parser = fake_parser("Sinch SMS REST API", 9013)
    parser.add_argument("--service-plan-id", default=DEFAULT_SERVICE_PLAN_ID,
                        help="service plan ID")
    parser.add_argument("--api-token", default=DEFAULT_API_TOKEN, help="API token")
    parser.add_argument("--webhook-secret", default=None, help="sign callbacks with this")
    args = parser.parse_args(argv)
    fake = FakeSinch(args.service_plan_id, args.api_token, webhook_secret=args.webhook_secret)
    serve(fake.app, args.host, args.port,
          f"fake Sinch on http://{args.host}:{args.port} (service plan {fake.service_plan_id})")


if __name__ == "__main__":
    main()
