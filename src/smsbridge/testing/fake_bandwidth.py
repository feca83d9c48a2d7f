"""A fake Bandwidth: the Messaging API v2 on 127.0.0.1, and its callbacks fired at a gateway.

It is an independent model of the carrier, written from shared/providers/bandwidth.md and
Bandwidth's published pages, and does not import smsbridge's Bandwidth provider (so the two
cannot share a mistake). Its callbacks carry the Application's callback credentials as
HTTP Basic auth, the way Bandwidth proves who it is.

    fake = FakeBandwidth()
    server = start_server(fake.app)             # base_url for the provider: server.url
    fake.status_callback_url = gateway_status_url   # the Application's Status Callback URL
    fake.fail_next(429, retry_after=5)          # the next send is throttled
    await fake.fire_inbound(gateway_inbound_url, from_="+15145550111", to="+15145550100",
                            text="hi")
    await fake.deliver_all()                    # message-delivered for every send

Run on its own: ``python -m smsbridge.testing.fake_bandwidth --port 9011``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .fake_base import (
    FakeCarrier,
    RecordedRequest,
    WebhookAnswer,
    basic_auth_ok,
    fake_parser,
    send_webhook,
    serve,
)

DEFAULT_ACCOUNT_ID = "9900001"
DEFAULT_APPLICATION_ID = "93de2206-9669-4e07-948d-329f4b722ee2"
DEFAULT_USERNAME = "api-user-7f3a"
DEFAULT_PASSWORD = "Bw-Api-Pa55word-0123456789"
DEFAULT_CALLBACK_USERNAME = "smsbridge-callbacks"
DEFAULT_CALLBACK_PASSWORD = "Bw-Callback-Secret-abcdef"

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# The "type" of Bandwidth's error body for each HTTP status it documents.
ERROR_TYPES = {400: "request-validation", 401: "unauthorized", 403: "forbidden",
               415: "unsupported-content-type", 429: "max-message-queue-size-exceeded"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _new_id() -> str:
    # Bandwidth's ids: a millisecond time stamp and random lower-case letters and digits.
    alphabet = string.ascii_lowercase + string.digits
    stamp = str(int(datetime.now(UTC).timestamp() * 1000))
    return stamp + "".join(secrets.choice(alphabet) for _ in range(16))


def _error(status: int, kind: str, description: str) -> JSONResponse:
    return JSONResponse({"type": kind, "description": description}, status_code=status)


@dataclass
class SentMessage:
    """A message the fake accepted."""

    id: str
    to: list[str]
    from_: str
    text: str
    media: list[str]
    tag: str | None


@dataclass(frozen=True)
class FailWith:
    """A queued send error: Bandwidth's error ``type`` and ``description``."""

    kind: str
    description: str


class FakeBandwidth(FakeCarrier[RecordedRequest, SentMessage, FailWith]):
    """An in-memory Bandwidth account speaking the Messaging API v2 and its callbacks."""

    def __init__(self, account_id: str = DEFAULT_ACCOUNT_ID,
                 application_id: str = DEFAULT_APPLICATION_ID,
                 username: str = DEFAULT_USERNAME, password: str = DEFAULT_PASSWORD, *,
                 callback_username: str = DEFAULT_CALLBACK_USERNAME,
                 callback_password: str = DEFAULT_CALLBACK_PASSWORD) -> None:
        super().__init__()
        self.account_id = account_id
        self.application_id = application_id
        self.username = username
        self.password = password
        self.callback_username = callback_username
        self.callback_password = callback_password
        # The Application's Status Callback URL (Bandwidth has no per-message callback).
        self.status_callback_url: str | None = None
        self.app = Starlette(routes=[
            Route("/api/v2/users/{account_id}/messages", self._send, methods=["POST"]),
            Route("/api/v2/users/{account_id}/messages", self._list, methods=["GET"]),
        ])

    # --- knobs -------------------------------------------------------------------------

    def fail_next(self, http_status: int, description: str = "", times: int = 1,
                  retry_after: float | None = None, *, kind: str | None = None,
                  raw_body: str | None = None) -> None:
        """Answer the next ``times`` sends with this error (``raw_body``: a non-JSON body)."""
        error = FailWith(kind or ERROR_TYPES.get(http_status, "internal-server-error"),
                         description or f"HTTP {http_status}")
        self._queue_failure(error, http_status, times, retry_after, raw_body)

    # --- the Messaging API ---------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        recorded = self._keep_request(RecordedRequest(
            request.method, request.url.path, body if isinstance(body, dict) else {},
            basic_auth_ok(request, self.username, self.password)))
        if not recorded.auth_ok or request.path_params["account_id"] != self.account_id:
            return _error(401, "unauthorized", "Authentication Failed")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _error(415, "unsupported-content-type",
                          f"Content type '{request.headers.get('content-type')}' not"
                          " supported. Please use 'application/json'")
        failed = self._failure_answer(lambda failure: _error(
            failure.http_status, failure.error.kind, failure.error.description))
        return failed or self._accept(recorded.body)

    async def _list(self, request: Request) -> Response:
        """List Messages: the sent messages, newest first, at most ``limit`` of them."""
        recorded = self._keep_request(RecordedRequest(
            request.method, request.url.path, dict(request.query_params),
            basic_auth_ok(request, self.username, self.password)))
        if not recorded.auth_ok or request.path_params["account_id"] != self.account_id:
            return _error(401, "unauthorized", "Authentication Failed")
        limit = int(request.query_params.get("limit") or 100)
        listed = list(reversed(self.messages))[:limit]
        return JSONResponse({"totalCount": len(self.messages), "pageInfo": {}, "messages": [
            {"messageId": sent.id, "accountId": self.account_id, "sourceTn": sent.from_,
             "destinationTn": sent.to[0], "messageStatus": "DELIVERED",
             "messageDirection": "OUTBOUND", "messageType": "mms" if sent.media else "sms",
             "segmentCount": 1, "errorCode": 0, "receiveTime": _now()}
            for sent in listed]})

    def _accept(self, body: dict[str, Any]) -> Response:
        """Validate a message the way the API does, and store it."""
        to = body.get("to")
        recipients = [to] if isinstance(to, str) else to
        from_, text = body.get("from"), body.get("text", "")
        media, tag = body.get("media") or [], body.get("tag")
        if body.get("applicationId") != self.application_id:
            return _error(400, "request-validation", "applicationId is not an application of"
                          " this account")
        if (not isinstance(recipients, list) or not 1 <= len(recipients) <= 10
                or any(not isinstance(n, str) or not _E164.fullmatch(n) for n in recipients)):
            return _error(400, "request-validation", "'to' must be 1 to 10 E.164 numbers")
        if not isinstance(from_, str) or not _E164.fullmatch(from_):
            return _error(400, "request-validation", "'from' must be an E.164 number")
        if not isinstance(text, str) or not isinstance(media, list) or (
                not text and not media):
            return _error(400, "request-validation", "'text' or 'media' is required")
        if any(not isinstance(u, str) or not u.startswith(("http://", "https://"))
               for u in media):
            return _error(400, "request-validation", "'media' must be URLs")
        if tag is not None and (not isinstance(tag, str) or len(tag) > 1024):
            return _error(400, "request-validation", "'tag' is at most 1024 characters")
        sent = SentMessage(_new_id(), list(recipients), from_, text, list(media), tag)
        self._keep_message(sent)
        answer: dict[str, Any] = {
            "id": sent.id, "owner": from_, "applicationId": self.application_id,
            "time": _now(), "segmentCount": 1, "direction": "out", "to": sent.to,
            "from": from_, "text": text, "media": sent.media}
        if tag is not None:
            answer["tag"] = tag
        return JSONResponse(answer, status_code=202)

    # --- callbacks fired at the gateway --------------------------------------------------

    def inbound_events(self, *, from_: str, to: str, text: str = "",
                       media: Sequence[str] = (), message_id: str | None = None
                       ) -> list[dict[str, Any]]:
        """A message-received callback body: one event, media followed by its .smil part."""
        message_id = message_id or _new_id()
        parts = list(media)
        if parts:
            parts.append(f"https://messaging.bandwidth.com/api/v2/users/{self.account_id}"
                         f"/media/{message_id}/0/{message_id}.smil")
        return [{"type": "message-received", "time": _now(),
                 "description": "Incoming message received", "to": to,
                 "message": {"id": message_id, "time": _now(), "to": [to], "from": from_,
                             "text": text, "applicationId": self.application_id,
                             "media": parts, "owner": to, "direction": "in",
                             "segmentCount": 1}}]

    def status_events(self, message_id: str, event_type: str, *,
                      error_code: int | None = None, description: str = "ok"
                      ) -> list[dict[str, Any]]:
        """An outbound event callback body for a message the fake accepted."""
        sent = self.message(message_id)
        to = sent.to[0] if sent else "+15145550123"
        message: dict[str, Any] = {
            "id": message_id, "time": _now(), "to": sent.to if sent else [to],
            "from": sent.from_ if sent else "+15145550100", "text": "",
            "applicationId": self.application_id,
            "owner": sent.from_ if sent else "+15145550100", "direction": "out",
            "segmentCount": 1}
        if sent and sent.media:
            message["media"] = sent.media
        if sent and sent.tag is not None:
            message["tag"] = sent.tag
        event: dict[str, Any] = {"type": event_type, "time": _now(),
                                 "description": description, "to": to, "message": message}
        if error_code is not None:
            event["errorCode"] = error_code
        return [event]

    async def fire_inbound(self, url: str, *, from_: str, to: str, text: str = "",
                           media: Sequence[str] = (), message_id: str | None = None,
                           credentials: tuple[str, str] | None = None) -> WebhookAnswer:
        """POST a message-received callback to ``url``; the gateway's status, headers, body."""
        events = self.inbound_events(from_=from_, to=to, text=text, media=media,
                                     message_id=message_id)
        return await self.post_events(url, events, credentials)

    async def fire_receipt(self, url: str, message_id: str, event_type: str = "message-delivered",
                           *, error_code: int | None = None, description: str = "ok",
                           credentials: tuple[str, str] | None = None) -> WebhookAnswer:
        """POST an outbound event (delivered, failed, sending) for ``message_id`` to ``url``."""
        events = self.status_events(message_id, event_type, error_code=error_code,
                                    description=description)
        return await self.post_events(url, events, credentials)

    async def deliver_all(self) -> list[WebhookAnswer]:
        """Fire message-delivered for every accepted message at the status callback URL."""
        if self.status_callback_url is None:
            raise RuntimeError("set status_callback_url, as on the Bandwidth Application")
        return [await self.fire_receipt(self.status_callback_url, sent.id)
                for sent in list(self.messages)]

    async def post_events(self, url: str, events: list[dict[str, Any]],
                          credentials: tuple[str, str] | None = None) -> WebhookAnswer:
        """POST ``events`` as Bandwidth does, with the callback credentials (or ``credentials``;
        an empty user and password send no Authorization header)."""
        user, password = credentials or (self.callback_username, self.callback_password)
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "BandwidthAPI/v2"}
        if user or password:
            headers["Authorization"] = "Basic " + base64.b64encode(
                f"{user}:{password}".encode()).decode("ascii")
        return await send_webhook("POST", url, data=json.dumps(events), headers=headers)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Bandwidth account with uvicorn."""
    parser = fake_parser("Bandwidth Messaging API", 9011)
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID, help="account id")
    parser.add_argument("--username", default=DEFAULT_USERNAME, help="API username")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="API password")
    args = parser.parse_args(argv)
    fake = FakeBandwidth(args.account_id, username=args.username, password=args.password)
    serve(fake.app, args.host, args.port,
          f"fake Bandwidth on http://{args.host}:{args.port} (account {fake.account_id})")


if __name__ == "__main__":
    main()
