"""A fake Flowroute: the Messaging API on 127.0.0.1, and its webhooks fired at a gateway.

It is an independent model of the carrier, written from shared/providers/flowroute.md and
Flowroute's published OpenAPI file, and does not import smsbridge's Flowroute provider (so
the two cannot share a mistake). Flowroute signs none of its webhooks.

    fake = FakeFlowroute()
    server = start_server(fake.app)             # base_url for the provider: server.url
    fake.opted_out.add("15145550199")           # sends to it fail with a 422
    fake.fail_next(429, retry_after=5)          # the next send is throttled
    await fake.fire_inbound(gateway_inbound_url, from_="15145550111", to="15145550100", body="hi")
    await fake.deliver_all()                    # level 1 + level 2 receipts for every send

Run on its own: ``python -m smsbridge.testing.fake_flowroute --port 9010``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .fake_base import FakeCarrier, basic_auth_ok, fake_parser, send_webhook, serve

DEFAULT_ACCESS_KEY = "61f1a2b3"
DEFAULT_SECRET_KEY = "Fl0wr0uteS3cretKey0123456789abcd"
JSON_API = "application/vnd.api+json"

# Flowroute's examples write numbers as country code + digits; a leading plus is taken too.
_NUMBER = re.compile(r"\+?[1-9][0-9]{9,14}")

# The receipts of a message that reached the handset: what Flowroute's examples show.
DELIVERED_RECEIPTS: tuple[tuple[int, str, str | None, str], ...] = (
    (1, "smsc submit", None, "Message has been sent"),
    (2, "delivered", "1000", "Message delivered to handset"),
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-5] + "Z"


def _new_id() -> str:
    return "mdr2-" + secrets.token_hex(16)


def _errors(status: int, title: str, detail: str) -> JSONResponse:
    """Flowroute's JSON:API error document."""
    return JSONResponse({"errors": [{"id": secrets.token_hex(8), "status": status,
                                     "title": title, "detail": detail}]},
                        status_code=status, media_type=JSON_API)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake API received."""

    method: str
    path: str
    content_type: str
    body: Any
    auth_ok: bool

    @property
    def attributes(self) -> dict[str, Any]:
        """``data.attributes`` of the JSON:API document, or {}."""
        data = self.body.get("data") if isinstance(self.body, dict) else None
        attributes = data.get("attributes") if isinstance(data, dict) else None
        return attributes if isinstance(attributes, dict) else {}


@dataclass
class SentMessage:
    """A message the fake accepted."""

    id: str
    to: str
    from_: str
    body: str
    media_urls: list[str]
    is_mms: bool
    dlr_callback: str | None


class FakeFlowroute(FakeCarrier[RecordedRequest, SentMessage, str]):
    """An in-memory Flowroute account speaking the real Messaging API and webhook formats."""

    def __init__(self, access_key: str = DEFAULT_ACCESS_KEY,
                 secret_key: str = DEFAULT_SECRET_KEY, *, opted_out: Iterable[str] = ()) -> None:
        super().__init__()
        self.access_key = access_key
        self.secret_key = secret_key
        self.opted_out: set[str] = set(opted_out)
        self.app = Starlette(routes=[
            Route("/v2.1/messages", self._send, methods=["POST"]),
            Route("/v2.2/messages", self._send, methods=["POST"]),
            Route("/v2/numbers", self._list_numbers, methods=["GET"]),
        ])
        # The account's numbers (11 digits, no '+'), for GET /v2/numbers.
        self.numbers: list[str] = []

    # --- knobs -------------------------------------------------------------------------

    def fail_next(self, http_status: int, detail: str = "", times: int = 1,
                  retry_after: float | None = None, *, raw_body: str | None = None) -> None:
        """Answer the next ``times`` sends with this error (``raw_body``: a non-JSON body)."""
        self._queue_failure(detail or f"HTTP {http_status}", http_status, times, retry_after,
                            raw_body)

    def _forget_knobs(self) -> None:
        self.opted_out.clear()

    # --- the Messaging API ---------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        recorded = RecordedRequest(request.method, request.url.path, content_type, body,
                                   basic_auth_ok(request, self.access_key, self.secret_key))
        self._keep_request(recorded)
        if not recorded.auth_ok:
            return _errors(401, "Unauthorized", "There was an issue with your API credentials.")
        failed = self._failure_answer(
            lambda failure: _errors(failure.http_status, "Error", failure.error))
        return failed or self._accept(request, recorded)

    def _accept(self, request: Request, recorded: RecordedRequest) -> Response:
        """Validate a send the way the Messaging API does, and store it."""
        data = recorded.body.get("data") if isinstance(recorded.body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "message":
            return _errors(422, "Unprocessable Entity", "data.type must be 'message'")
        attributes = recorded.attributes
        to, from_ = attributes.get("to"), attributes.get("from")
        body = attributes.get("body") or ""
        media_urls = attributes.get("media_urls") or []
        callback = attributes.get("dlr_callback")
        if not isinstance(to, str) or not _NUMBER.fullmatch(to):
            return _errors(422, "Unprocessable Entity", f"'to' {to!r} is not a valid number")
        if not isinstance(from_, str) or not _NUMBER.fullmatch(from_):
            return _errors(422, "Unprocessable Entity", f"'from' {from_!r} is not a valid number")
        if not isinstance(body, str) or not isinstance(media_urls, list):
            return _errors(422, "Unprocessable Entity", "body must be a string, media_urls a list")
        if not body and not media_urls:
            return _errors(422, "Unprocessable Entity", "body or media_urls is required")
        if any(not isinstance(u, str) or not u.startswith(("http://", "https://"))
               for u in media_urls):
            return _errors(422, "Unprocessable Entity", "media_urls must be public URLs")
        if callback is not None and not (isinstance(callback, str)
                                         and callback.startswith(("http://", "https://"))):
            return _errors(422, "Unprocessable Entity", "dlr_callback must be a URL")
        if to.lstrip("+") in {n.lstrip("+") for n in self.opted_out}:
            return _errors(422, "Unprocessable Entity",
                           f"{to.lstrip('+')} has opted out of messages from {from_.lstrip('+')}")
        message_id = _new_id()
        is_mms = bool(media_urls) or str(attributes.get("is_mms")).lower() == "true"
        self._keep_message(SentMessage(message_id, to, from_, body, list(media_urls), is_mms,
                                       callback))
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"data": {"type": "message", "id": message_id,
                                      "links": {"self": f"{base}{request.url.path}/{message_id}"}}},
                            status_code=202, media_type=JSON_API)

    async def _list_numbers(self, request: Request) -> Response:
        """One page of the account's numbers (limit, offset), with ``links.next``."""
        recorded = RecordedRequest(request.method, request.url.path, "", None,
                                   basic_auth_ok(request, self.access_key, self.secret_key))
        self._keep_request(recorded)
        if not recorded.auth_ok:
            return _errors(401, "Unauthorized", "There was an issue with your API credentials.")
        limit = int(request.query_params.get("limit") or 10)
        offset = int(request.query_params.get("offset") or 0)
        base = str(request.url.replace(query=""))
        links = {"first": f"{base}?limit={limit}&offset=0"}
        if offset + limit < len(self.numbers):
            links["next"] = f"{base}?limit={limit}&offset={offset + limit}"
        return JSONResponse({"data": [
            {"attributes": {"alias": None, "cnam_lookups_enabled": True,
                            "number_type": "standard", "rate_center": "montreal",
                            "state": "qc", "value": number},
             "id": number, "links": {"self": f"{base}/{number}"}, "type": "number"}
            for number in self.numbers[offset:offset + limit]], "links": links},
            media_type=JSON_API)

    # --- webhooks fired at the gateway ---------------------------------------------------

    def inbound_document(self, *, from_: str, to: str, body: str = "",
                         media: Sequence[tuple[str, str]] = (),
                         message_id: str | None = None) -> dict[str, Any]:
        """An inbound SMS/MMS callback body (JSON:API, media in ``included``)."""
        message_id = message_id or _new_id()
        document: dict[str, Any] = {"data": {
            "type": "message", "id": message_id,
            "attributes": {"from": from_, "to": to, "body": body, "is_mms": bool(media),
                           "direction": "inbound", "status": "delivered",
                           "message_type": "longcode", "message_encoding": 0,
                           "amount_nanodollars": 4000000, "amount_display": "$0.0040",
                           "timestamp": _now()},
            "relationships": {"media": {"data": [
                {"type": "media", "id": f"media-{index}"} for index in range(len(media))]}},
        }}
        if media:
            document["included"] = [
                {"type": "media", "id": f"media-{index}",
                 "attributes": {"url": url, "mime_type": mime,
                                "file_name": url.rsplit("/", 1)[-1], "file_size": 12345}}
                for index, (url, mime) in enumerate(media)]
        return document

    async def fire_inbound(self, url: str, *, from_: str, to: str, body: str = "",
                           media: Sequence[tuple[str, str]] = (),
                           message_id: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """POST an inbound-message callback to ``url``; the gateway's status, headers, body."""
        document = self.inbound_document(from_=from_, to=to, body=body, media=media,
                                         message_id=message_id)
        return await self._post(url, document)

    async def fire_receipt(self, url: str, message_id: str, status: str,
                           status_code: str | None = None, description: str = "",
                           level: int = 2) -> tuple[int, dict[str, str], bytes]:
        """POST a delivery receipt for ``message_id`` to ``url``."""
        sent = self.message(message_id)
        document = {"data": {
            "type": "delivery_receipt", "id": message_id,
            "attributes": {"body": sent.body if sent and not sent.is_mms else "",
                           "level": level, "status": status, "status_code": status_code,
                           "status_code_description": description, "timestamp": _now()},
            "links": {"related": f"https://api.flowroute.com/v2.1/messages/{message_id}"},
        }}
        return await self._post(url, document)

    async def deliver_all(self) -> list[tuple[int, dict[str, str], bytes]]:
        """Fire the level 1 and level 2 receipts of every message that had a dlr_callback."""
        answers = []
        for sent in list(self.messages):
            if sent.dlr_callback:
                for level, status, code, description in DELIVERED_RECEIPTS:
                    answers.append(await self.fire_receipt(sent.dlr_callback, sent.id, status,
                                                           code, description, level))
        return answers

    async def _post(self, url: str, document: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        return await send_webhook("POST", url, data=json.dumps(document),
                                  headers={"Content-Type": "application/json"})


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Flowroute account with uvicorn."""
    parser = fake_parser("Flowroute Messaging API", 9010)
    parser.add_argument("--access-key", default=DEFAULT_ACCESS_KEY, help="API Access Key")
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY, help="API Secret Key")
    args = parser.parse_args(argv)
    fake = FakeFlowroute(args.access_key, args.secret_key)
    serve(fake.app, args.host, args.port,
          f"fake Flowroute on http://{args.host}:{args.port} (access key {fake.access_key})")


if __name__ == "__main__":
    main()
