"""A fake Telnyx: the Messaging API v2 on 127.0.0.1, and its signed webhooks fired at a gateway.

It is an independent model of the carrier, written from shared/providers/telnyx.md,
and does not import smsbridge's Telnyx provider (so the two cannot share a mistake).
It holds its own Ed25519 key pair: give ``public_key`` to the provider's config.

    fake = FakeTelnyx()
    server = start_server(fake.app)               # base_url for the provider: server.url
    fake.opted_out.add("+15145550199")            # sends to it fail with 40300 (HTTP 409)
    fake.fail_next("10011", 429, retry_after=5)   # the next send is rate-limited
    await fake.fire_inbound(gateway_inbound_url, from_="+15145550111", to="+15145550100",
                            text="hi")
    await fake.deliver_all()                      # message.sent + message.finalized per send

Run on its own: ``python -m smsbridge.testing.fake_telnyx --port 9003``.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core.segments import count_segments
from .fake_base import FakeCarrier, RecordedRequest, fake_parser, send_webhook, serve

DEFAULT_API_KEY = "KEY0FAKE" + "5ca1ab1e" * 6
MAX_TEXT = 1600
MAX_MEDIA = 10

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SHORT_CODE = re.compile(r"[0-9]{5,6}")

# title and detail of the API's errors (Telnyx "API error codes" and messaging pages).
ERRORS: dict[str, tuple[str, str]] = {
    "10004": ("Missing required parameter", "A required parameter was missing."),
    "10007": ("Unexpected error", "An unexpected error occured."),
    "10009": ("Authentication failed", "The required authentication headers were either"
              " invalid or not included in the request."),
    "10011": ("Too many requests", "You have exceeded the maximum number of allowed requests."),
    "40300": ("Blocked due to STOP message", "Messages cannot be sent from '{from_}' to '{to}'"
              " due to an existing block rule."),
    "40305": ("Invalid 'from' address", "The 'from' address should be a valid number, short"
              " code or alphanumeric sender ID."),
    "40310": ("Invalid 'to' address", "The 'to' address should be a single valid number."),
}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _error(code: str, http_status: int, pointer: str | None = None, **values: str) -> JSONResponse:
    """The API's JSON error document."""
    title, detail = ERRORS.get(code, ("Error", f"Error {code}"))
    error: dict[str, Any] = {"code": code, "title": title,
                             "detail": detail.format(**({"to": "", "from_": ""} | values)),
                             "meta": {"url": f"https://developers.telnyx.com/api/errors/{code}"}}
    if pointer:
        error["source"] = {"pointer": pointer}
    return JSONResponse({"errors": [error]}, status_code=http_status)


@dataclass
class SentMessage:
    """A message the fake accepted, with the record it answered."""

    id: str
    to: str
    from_: str
    text: str
    media_urls: list[str]
    webhook_url: str | None
    record: dict[str, Any]


class FakeTelnyx(FakeCarrier[RecordedRequest, SentMessage, str]):
    """An in-memory Telnyx account speaking the Messaging API v2 and its webhook formats."""

    def __init__(self, api_key: str = DEFAULT_API_KEY, *,
                 private_key: Ed25519PrivateKey | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.private_key = private_key or Ed25519PrivateKey.generate()
        self.opted_out: set[str] = set()
        self.delay_seconds = 0.0
        # The account's numbers (``add_number``) for GET /v2/phone_numbers/messaging.
        self.numbers: dict[str, tuple[bool, bool]] = {}
        self.max_page_size = 250
        self.app = Starlette(routes=[
            Route("/v2/phone_numbers/messaging", self._list_numbers, methods=["GET"]),
            Route("/v2/messages", self._create_message, methods=["POST"]),
            Route("/v2/messages/{message_id}", self._fetch_message, methods=["GET"]),
        ])

    @property
    def public_key(self) -> str:
        """The account's public key, base64, as the portal shows it."""
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    # --- knobs -------------------------------------------------------------------------

    def fail_next(self, code: str, http_status: int, times: int = 1,
                  retry_after: float | None = None, *, raw_body: str | None = None) -> None:
        """Answer the next ``times`` sends with this error (``raw_body``: a non-JSON body)."""
        self._queue_failure(code, http_status, times, retry_after, raw_body)

    def _forget_knobs(self) -> None:
        self.opted_out.clear()
        self.delay_seconds = 0.0

    # --- the Messaging API ---------------------------------------------------------------

    def _auth_ok(self, request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(key.encode(),
                                                                 self.api_key.encode())

    async def _record(self, request: Request) -> RecordedRequest:
        body: dict[str, Any] = {}
        raw = await request.body()
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            body = parsed if isinstance(parsed, dict) else {"_unparsed": raw.decode("latin-1")}
        recorded = RecordedRequest(request.method, request.url.path, body,
                                   self._auth_ok(request))
        return self._keep_request(recorded)

    async def _create_message(self, request: Request) -> Response:
        recorded = await self._record(request)
        if not recorded.auth_ok:
            return _error("10009", 401)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        failed = self._failure_answer(
            lambda failure: _error(failure.error, failure.http_status))
        return failed or self._accept(recorded.body)

    def _accept(self, body: dict[str, Any]) -> Response:
        """Validate a send the way the API does, and store it."""
        to, from_ = body.get("to"), body.get("from")
        text = body.get("text") or ""
        media_urls = body.get("media_urls") or []
        if not to:
            return _error("10004", 400, "/to")
        if not isinstance(to, str) or not (_E164.fullmatch(to) or _SHORT_CODE.fullmatch(to)):
            return _error("40310", 400, "/to")
        if not from_ and not body.get("messaging_profile_id"):
            return _error("10004", 400, "/from")
        if from_ is not None and not isinstance(from_, str):
            return _error("40305", 400, "/from")
        if not text and not media_urls:
            return _error("10004", 400, "/text")
        if len(text) > MAX_TEXT or not isinstance(media_urls, list) or len(
                media_urls) > MAX_MEDIA:
            return _error("10004", 400, "/text")
        if to in self.opted_out:
            return _error("40300", 409, to=to, from_=str(from_ or ""))
        message_id = str(uuid.uuid4())
        webhook_url = body.get("webhook_url")
        record = self._record_of(message_id, to, str(from_ or ""), text, media_urls,
                                 body.get("messaging_profile_id"))
        self._keep_message(SentMessage(message_id, to, str(from_ or ""), text,
                                       list(media_urls), webhook_url, record))
        return JSONResponse({"data": record}, status_code=200)

    def _record_of(self, message_id: str, to: str, from_: str, text: str,
                   media_urls: list[str], profile: object) -> dict[str, Any]:
        """A message record as the API returns it (field names from telnyx.md §2)."""
        segments = count_segments(text) if text else None
        now = _now_iso()
        return {
            "record_type": "message", "id": message_id, "direction": "outbound",
            "type": "MMS" if media_urls else "SMS",
            "messaging_profile_id": profile or "40017f8e-49bd-4f16-9e3d-ef103f916228",
            "from": {"phone_number": from_, "carrier": "Telnyx", "line_type": "Wireless"},
            "to": [{"phone_number": to, "status": "queued", "carrier": "T-MOBILE USA, INC.",
                    "line_type": "Wireless"}],
            "text": text, "media": [{"url": u, "content_type": None, "sha256": None,
                                     "size": None} for u in media_urls],
            "parts": segments.segments if segments else 1,
            "encoding": segments.encoding if segments else "GSM-7",
            "cost": None, "errors": [], "received_at": now, "sent_at": None,
            "completed_at": None, "valid_until": None, "tags": [],
        }

    async def _fetch_message(self, request: Request) -> Response:
        recorded = await self._record(request)
        if not recorded.auth_ok:
            return _error("10009", 401)
        found = self.message(request.path_params["message_id"])
        if found is None:
            return JSONResponse({"errors": [{"code": "10005", "title": "Resource not found",
                                             "detail": "The requested resource or URL could"
                                             " not be found."}]}, status_code=404)
        return JSONResponse({"data": found.record})

    # --- the account's numbers ------------------------------------------------------------

    def add_number(self, number: str, *, sms: bool = True, mms: bool = True) -> None:
        """Give the account a number on a messaging profile, with these features."""
        self.numbers[number] = (sms, mms)

    async def _list_numbers(self, request: Request) -> Response:
        """One page of the numbers with messaging settings (page[number], page[size])."""
        recorded = await self._record(request)
        if not recorded.auth_ok:
            return _error("10009", 401)
        size = min(int(request.query_params.get("page[size]") or 20), self.max_page_size)
        page = int(request.query_params.get("page[number]") or 1)
        numbers = list(self.numbers.items())
        rows = numbers[(page - 1) * size:page * size]
        feature = {"domestic_two_way": True, "international_inbound": True,
                   "international_outbound": True}
        return JSONResponse({
            "data": [{"record_type": "messaging_settings", "id": str(10**18 + index),
                      "phone_number": number, "messaging_profile_id": "400-fake-profile",
                      "country_code": "US", "type": "longcode", "traffic_type": "P2P",
                      "messaging_product": "P2P", "created_at": _now_iso(),
                      "updated_at": _now_iso(),
                      "features": {"sms": feature if sms else None,
                                   "mms": feature if mms else None}}
                     for index, (number, (sms, mms)) in enumerate(rows)],
            "meta": {"total_pages": max(1, -(-len(numbers) // size)),
                     "total_results": len(numbers), "page_number": page, "page_size": size},
        })

    # --- webhooks fired at the gateway ---------------------------------------------------

    def inbound_event(self, *, from_: str, to: str, text: str,
                      media: Sequence[tuple[str, str]] = (),
                      message_id: str | None = None, delivered_to: str = "") -> dict[str, Any]:
        """A ``message.received`` event as Telnyx posts it."""
        now = _now_iso()
        return {
            "data": {
                "event_type": "message.received", "id": str(uuid.uuid4()),
                "occurred_at": now, "record_type": "event",
                "payload": {
                    "id": message_id or str(uuid.uuid4()), "record_type": "message",
                    "direction": "inbound", "type": "MMS" if media else "SMS",
                    "from": {"phone_number": from_, "carrier": "T-Mobile USA",
                             "line_type": "Wireless"},
                    "to": [{"phone_number": to, "status": "webhook_delivered",
                            "carrier": "Telnyx", "line_type": "Wireless"}],
                    "cc": [], "text": text,
                    "media": [{"url": url, "content_type": ctype, "size": 1024,
                               "hash_sha256": "0" * 64} for url, ctype in media],
                    "received_at": now, "encoding": "GSM-7", "parts": 1, "tags": [],
                    "messaging_profile_id": "40017f8e-49bd-4f16-9e3d-ef103f916228",
                },
            },
            "meta": {"attempt": 1, "delivered_to": delivered_to},
        }

    def status_event(self, message_id: str, event_type: str, status: str,
                     errors: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """A ``message.sent`` / ``message.finalized`` event for a message, recording it."""
        sent = self.message(message_id)
        now = _now_iso()
        record: dict[str, Any] = dict(sent.record) if sent is not None else {
            "record_type": "message", "id": message_id, "direction": "outbound", "type": "SMS",
            "from": {"phone_number": "", "carrier": "Telnyx", "line_type": "Wireless"},
            "to": [{"phone_number": "", "status": status}], "text": "", "parts": 1}
        record["to"] = [dict(record["to"][0], status=status)]
        record["errors"] = [{"code": code, "title": title} for code, title in errors]
        record["sent_at"] = now
        if event_type == "message.finalized":
            record["completed_at"] = now
        if sent is not None:
            with self._lock:
                sent.record = record
        return {
            "data": {"event_type": event_type, "id": str(uuid.uuid4()), "occurred_at": now,
                     "record_type": "event", "payload": record},
            "meta": {"attempt": 1, "delivered_to": sent.webhook_url if sent else ""},
        }

    async def fire_inbound(self, url: str, *, from_: str, to: str, text: str = "",
                           media: Sequence[tuple[str, str]] = (), message_id: str | None = None,
                           bad_signature: bool = False, signed: bool = True,
                           timestamp: int | None = None) -> tuple[int, dict[str, str], bytes]:
        """Post a signed ``message.received`` event to ``url``; returns the gateway's answer."""
        event = self.inbound_event(from_=from_, to=to, text=text, media=media,
                                   message_id=message_id, delivered_to=url)
        return await self.fire(url, event, bad_signature=bad_signature, signed=signed,
                               timestamp=timestamp)

    async def fire_status(self, url: str, message_id: str, event_type: str, status: str,
                          errors: Sequence[tuple[str, str]] = (), *,
                          bad_signature: bool = False) -> tuple[int, dict[str, str], bytes]:
        """Post a signed receipt event for ``message_id`` to ``url``."""
        event = self.status_event(message_id, event_type, status, errors)
        return await self.fire(url, event, bad_signature=bad_signature)

    async def deliver_all(self) -> list[tuple[int, dict[str, str], bytes]]:
        """message.sent then message.finalized (delivered) for every send with a webhook_url."""
        results = []
        for sent in list(self.messages):
            if sent.webhook_url:
                results.append(await self.fire_status(sent.webhook_url, sent.id,
                                                      "message.sent", "sent"))
                results.append(await self.fire_status(sent.webhook_url, sent.id,
                                                      "message.finalized", "delivered"))
        return results

    def sign(self, timestamp: str, body: bytes) -> str:
        """The telnyx-signature-ed25519 value for this timestamp and raw body."""
        signature = self.private_key.sign(timestamp.encode() + b"|" + body)
        return base64.b64encode(signature).decode()

    async def fire(self, url: str, event: dict[str, Any], *, bad_signature: bool = False,
                   signed: bool = True, timestamp: int | None = None
                   ) -> tuple[int, dict[str, str], bytes]:
        """POST ``event`` as JSON, signed the way Telnyx signs it."""
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "telnyx-webhooks"}
        if signed:
            stamp = str(int(time.time()) if timestamp is None else timestamp)
            signature = self.sign(stamp, body)
            if bad_signature:
                # Another key's signature of the same bytes: well-formed, not Telnyx's.
                signature = base64.b64encode(Ed25519PrivateKey.generate().sign(
                    stamp.encode() + b"|" + body)).decode()
            headers["telnyx-signature-ed25519"] = signature
            headers["telnyx-timestamp"] = stamp
        return await send_webhook("POST", url, data=body, headers=headers)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Telnyx account with uvicorn."""
    parser = fake_parser("Telnyx Messaging API", 9003)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="API key clients must use")
    args = parser.parse_args(argv)
    fake = FakeTelnyx(args.api_key)
    serve(fake.app, args.host, args.port,
          f"fake Telnyx on http://{args.host}:{args.port} (public_key {fake.public_key})")


if __name__ == "__main__":
    main()
