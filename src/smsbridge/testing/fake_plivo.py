"""A fake Plivo: the Message and Call APIs on 127.0.0.1, and Plivo's V3-signed webhooks.

It is an independent model of the carrier, written from shared/providers/plivo.md,
and does not import smsbridge's Plivo provider (so the two cannot share a mistake).

    fake = FakePlivo()
    server = start_server(fake.app)             # base_url for the provider: server.url
    fake.fail_next(400, "invalid 'dst' parameter")            # the next send is refused
    fake.fail_next(429, "too many requests", retry_after=1)   # ... or rate-limited
    await fake.fire_inbound(gateway_inbound_url, from_="+14385550123", to="+15145550100",
                            text="hi")
    await fake.deliver_all()                    # "sent" + "delivered" callbacks for every send
    call = fake.calls[0]                        # a call placed through the Call API
    await fake.answer(call)                     # fetch its answer_url as Plivo does: call.spoken
    await fake.hang_up(call, "busy")            # the signed hangup callback, at its hangup_url

Run on its own: ``python -m smsbridge.testing.fake_plivo --port 9003``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core.segments import count_segments
from .fake_base import (
    FakeCarrier,
    RecordedRequest,
    WebhookAnswer,
    basic_auth_ok,
    fake_parser,
    send_webhook,
    serve,
)

DEFAULT_AUTH_ID = "MAFAKE0PLIVO0ACCOUNT"
DEFAULT_AUTH_TOKEN = "ZmFrZS1wbGl2by1hdXRoLXRva2VuLTAwMDAw"
MAX_TEXT = 1600
MAX_MEDIA = 10

_NUMBER = re.compile(r"\+?[1-9][0-9]{6,14}")

# What a hangup callback says of how each ending came about (HangupCause, its name and code).
HANGUP_CAUSES: dict[str, tuple[str, str, str]] = {
    "completed": ("NORMAL_CLEARING", "Normal Hangup", "4000"),
    "busy": ("USER_BUSY", "Busy Line", "3010"),
    "no-answer": ("NO_ANSWER", "No Answer", "3020"),
    "timeout": ("NO_ANSWER", "No Answer", "3020"),
    "failed": ("UNALLOCATED_NUMBER", "Invalid Destination Address", "2010"),
    "cancel": ("ORIGINATOR_CANCEL", "Cancelled", "1010"),
}


def plivo_v3_signature(
    auth_token: str, method: str, url: str, params: Iterable[tuple[str, str]], nonce: str
) -> str:
    """X-Plivo-Signature-V3 as Plivo's SDKs compute it (validate_v3_signature)."""
    parts = urlsplit(url)
    base_url = parts.scheme + "://" + parts.netloc + parts.path
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    query_string = "&".join(f"{k}={v}" for k in sorted(query) for v in sorted(query[k]))
    post: dict[str, list[str]] = {}
    if method.upper() == "POST":
        for key, value in params:
            post.setdefault(key, []).append(value)
    if query_string or post:
        base_url += "?" + query_string
    if query_string and post:
        base_url += "."
    base_url += "".join(k + v for k in sorted(post) for v in sorted(post[k]))
    mac = hmac.new(auth_token.encode(), f"{base_url}.{nonce}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _error(http_status: int, error: str) -> JSONResponse:
    """The Message API's JSON error body."""
    return JSONResponse({"api_id": str(uuid.uuid4()), "error": error}, status_code=http_status)


@dataclass
class SentMessage:
    """A message the fake accepted."""

    message_uuid: str
    src: str
    dst: str
    text: str
    type: str
    media_urls: list[str]
    url: str | None
    method: str
    status: str = "queued"


@dataclass
class PlacedCall:
    """A call the fake accepted through the Call API."""

    request_uuid: str
    call_uuid: str
    from_: str
    to: str
    answer_url: str
    answer_method: str
    hangup_url: str | None
    hangup_method: str
    status: str = "queued"
    spoken: list[dict[str, str]] = field(default_factory=list)  # <Speak> attributes + "text"


class FakePlivo(FakeCarrier[RecordedRequest, SentMessage, "str | None"]):
    """An in-memory Plivo account speaking the real Message API and webhook formats."""

    def __init__(self, auth_id: str = DEFAULT_AUTH_ID,
                 auth_token: str = DEFAULT_AUTH_TOKEN) -> None:
        super().__init__()
        self.auth_id = auth_id
        self.auth_token = auth_token
        self.calls: list[PlacedCall] = []
        # The account's name and rented numbers (``add_number``), for its GET resources.
        self.name = "Jane Doe"
        self.numbers: dict[str, bool] = {}
        self.max_page_size = 20
        self.app = Starlette(routes=[
            Route("/v1/Account/{auth_id}/", self._account, methods=["GET"]),
            Route("/v1/Account/{auth_id}/Number/", self._list_numbers, methods=["GET"]),
            Route("/v1/Account/{auth_id}/Message/", self._send, methods=["POST"]),
            Route("/v1/Account/{auth_id}/Call/", self._make_call, methods=["POST"]),
        ])

    # --- knobs -------------------------------------------------------------------------

    def fail_next(self, http_status: int, error: str | None = None, times: int = 1,
                  retry_after: float | None = None, *, raw_body: str | None = None) -> None:
        """Answer the next ``times`` sends or calls with this error (``raw_body``: not JSON)."""
        self._queue_failure(error, http_status, times, retry_after, raw_body)

    def message(self, message_uuid: str) -> SentMessage | None:
        """The accepted message with this uuid, if any."""
        return next((m for m in self.messages if m.message_uuid == message_uuid), None)

    def call(self, request_uuid: str) -> PlacedCall | None:
        """The placed call with this request_uuid, if any."""
        return next((c for c in self.calls if c.request_uuid == request_uuid), None)

    def _forget_knobs(self) -> None:
        self.calls.clear()

    # --- the Message API ---------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        body, refused = await self._authorized_json(request)
        return refused or self._accept(body)

    async def _authorized_json(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        """Record an API request; its JSON body, or the answer that refuses it."""
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        recorded = RecordedRequest(request.method, request.url.path,
                                   body if isinstance(body, dict) else {},
                                   basic_auth_ok(request, self.auth_id, self.auth_token))
        self._keep_request(recorded)
        if not recorded.auth_ok or request.path_params["auth_id"] != self.auth_id:
            return {}, _error(401, "Authentication failed")
        if not isinstance(body, dict):
            return {}, _error(400, "invalid json data sent")
        failed = self._failure_answer(
            lambda failure: _error(failure.http_status, failure.error or "error"))
        return body, failed

    def _accept(self, body: dict[str, Any]) -> Response:
        """Validate a send the way the Message API does, and queue it."""
        src, dst = str(body.get("src") or ""), str(body.get("dst") or "")
        text = body.get("text") or ""
        kind = body.get("type") or "sms"
        media = body.get("media_urls") or []
        if not src and not body.get("powerpack_uuid"):
            return _error(400, "src parameter not present")
        if not dst:
            return _error(400, "dst parameter not present")
        if src and not _NUMBER.fullmatch(src):
            return _error(400, "invalid 'src' parameter")
        if not all(_NUMBER.fullmatch(d) for d in dst.split("<")):
            return _error(400, "invalid 'dst' parameter")
        if kind not in ("sms", "mms"):
            return _error(400, "invalid 'type' parameter")
        if kind == "sms" and not text:
            return _error(400, "text parameter not present")
        if kind == "mms" and not (media and isinstance(media, list)):
            return _error(400, "media_urls is required for type mms")
        if len(text) > MAX_TEXT:
            return _error(400, "text exceeds the 1600 character limit")
        if len(media) > MAX_MEDIA:
            return _error(400, "too many media_urls: at most 10")
        callback = body.get("url")
        uuids = []
        for destination in dst.split("<"):
            message = SentMessage(str(uuid.uuid4()), src, destination, text, kind, list(media),
                                  callback, str(body.get("method") or "POST"))
            uuids.append(message.message_uuid)
            self._keep_message(message)
        return JSONResponse({"api_id": str(uuid.uuid4()), "message": "message(s) queued",
                             "message_uuid": uuids}, status_code=202)

    # --- the Call API ------------------------------------------------------------------

    async def _make_call(self, request: Request) -> Response:
        body, refused = await self._authorized_json(request)
        return refused or self._accept_call(body)

    def _accept_call(self, body: dict[str, Any]) -> Response:
        """Validate a Make a Call request the way the Call API does, and start ringing."""
        from_, to = str(body.get("from") or ""), str(body.get("to") or "")
        answer_url = str(body.get("answer_url") or "")
        if not from_:
            return _error(400, "from parameter not present")
        if not to:
            return _error(400, "to parameter not present")
        if not answer_url:
            return _error(400, "answer_url parameter not present")
        if not _NUMBER.fullmatch(from_):
            return _error(400, "invalid 'from' parameter")
        if not _NUMBER.fullmatch(to):
            return _error(400, "invalid 'to' parameter")
        if from_.lstrip("+") == to.lstrip("+"):
            return _error(400, "src and destination cannot overlap")
        if not answer_url.startswith(("http://", "https://")):
            return _error(400, "invalid 'answer_url' parameter")
        hangup_url = body.get("hangup_url")
        placed = PlacedCall(str(uuid.uuid4()), str(uuid.uuid4()), from_.lstrip("+"),
                            to.lstrip("+"), answer_url, str(body.get("answer_method") or "POST"),
                            str(hangup_url) if hangup_url else None,
                            str(body.get("hangup_method") or "POST"))
        with self._lock:
            self.calls.append(placed)
        return JSONResponse({"api_id": str(uuid.uuid4()), "message": "call fired",
                             "request_uuid": placed.request_uuid}, status_code=201)

    def _call_params(self, placed: PlacedCall, status: str) -> list[tuple[str, str]]:
        """The parameters every voice request about ``placed`` carries."""
        return [("ALegRequestUUID", placed.request_uuid), ("ALegUUID", placed.call_uuid),
                ("BillRate", "0.00850"), ("CallStatus", status),
                ("CallUUID", placed.call_uuid), ("CallerName", "+" + placed.from_),
                ("Direction", "outbound"), ("From", placed.from_),
                ("RequestUUID", placed.request_uuid), ("To", placed.to)]

    async def answer(self, placed: PlacedCall, *, signed: bool = True,
                     bad_signature: bool = False) -> WebhookAnswer:
        """The callee picks up: fetch answer_url as Plivo does and keep the <Speak>s it got."""
        placed.status = "in-progress"
        params = [*self._call_params(placed, "in-progress"), ("Event", "StartApp")]
        answer = await self._fire(placed.answer_url, params, None, bad_signature, signed,
                                  method=placed.answer_method)
        status, _, body = answer
        if status == 200:
            placed.spoken = [{**speak.attrib, "text": speak.text or ""}
                             for speak in ET.fromstring(body).iter("Speak")]
        return answer

    async def hang_up(self, placed: PlacedCall, status: str = "completed", *,
                      signed: bool = True, bad_signature: bool = False) -> WebhookAnswer:
        """End the call with CallStatus ``status`` and POST the hangup callback to hangup_url."""
        if placed.hangup_url is None:
            raise ValueError("the call was placed without a hangup_url")
        placed.status = status
        cause, cause_name, cause_code = HANGUP_CAUSES.get(status, ("", "", ""))
        answered = status == "completed"
        params = [*self._call_params(placed, status), ("Event", "Hangup"),
                  ("Duration", "14" if answered else "0"),
                  ("BillDuration", "60" if answered else "0"),
                  ("HangupCause", cause), ("HangupCauseName", cause_name),
                  ("HangupCauseCode", cause_code),
                  ("HangupSource", "Callee" if answered else "Carrier")]
        return await self._fire(placed.hangup_url, params, None, bad_signature, signed,
                                method=placed.hangup_method)

    # --- the account's own resources ----------------------------------------------------

    def add_number(self, number: str, *, sms: bool = True) -> None:
        """Rent the account a number (E.164); Plivo lists it without the '+'."""
        self.numbers[number.lstrip("+")] = sms

    def _refuse_read(self, request: Request) -> Response | None:
        """Record a GET of the account's resources; the 401 that refuses it, if it must."""
        recorded = self._keep_request(RecordedRequest(
            request.method, request.url.path, {},
            basic_auth_ok(request, self.auth_id, self.auth_token)))
        if not recorded.auth_ok or request.path_params["auth_id"] != self.auth_id:
            return _error(401, "Authentication failed")
        return None

    async def _account(self, request: Request) -> Response:
        refused = self._refuse_read(request)
        if refused is not None:
            return refused
        return JSONResponse({
            "account_type": "standard", "address": "", "api_id": str(uuid.uuid4()),
            "auth_id": self.auth_id, "auto_recharge": False, "billing_mode": "prepaid",
            "cash_credits": "23.98000", "city": "", "name": self.name,
            "resource_uri": f"/v1/Account/{self.auth_id}/", "state": "", "timezone": "UTC",
        })

    async def _list_numbers(self, request: Request) -> Response:
        """One page of rented numbers (limit, offset), with the next page's URI in meta."""
        refused = self._refuse_read(request)
        if refused is not None:
            return refused
        limit = min(int(request.query_params.get("limit") or 20), self.max_page_size)
        offset = int(request.query_params.get("offset") or 0)
        numbers = list(self.numbers.items())
        path = request.url.path
        return JSONResponse({
            "api_id": str(uuid.uuid4()),
            "meta": {"limit": limit, "offset": offset, "total_count": len(numbers),
                     "next": f"{path}?limit={limit}&offset={offset + limit}"
                     if offset + limit < len(numbers) else None,
                     "previous": f"{path}?limit={limit}&offset={max(offset - limit, 0)}"
                     if offset else None},
            "objects": [
                {"active": True, "added_on": "2024-05-20", "alias": "", "application": None,
                 "carrier": "Plivo", "monthly_rental_rate": "0.80000", "number": number,
                 "number_type": "local", "region": "Quebec, CANADA",
                 "resource_uri": f"/v1/Account/{self.auth_id}/Number/{number}/",
                 "sms_enabled": sms, "sms_rate": "0.00000", "sub_account": None,
                 "type": "local", "voice_enabled": True, "voice_rate": "0.00850"}
                for number, sms in numbers[offset:offset + limit]],
        })

    # --- webhooks fired at the gateway ---------------------------------------------------

    def inbound_params(self, *, from_: str, to: str, text: str = "",
                       media: Sequence[str] = (),
                       message_uuid: str | None = None) -> list[tuple[str, str]]:
        """The fields of a message_url webhook; numbers as Plivo writes them, without '+'."""
        params = [("From", from_.lstrip("+")), ("To", to.lstrip("+")),
                  ("Type", "mms" if media else "sms")]
        params.append(("Body" if media else "Text", text))
        params += [("MessageUUID", message_uuid or str(uuid.uuid4())),
                   ("Units", str(count_segments(text).segments if text else 1)),
                   ("TotalRate", "0.00000"), ("TotalAmount", "0.00000"),
                   ("MessageIntent", ""), ("PowerpackUUID", "")]
        if media:
            params.append(("MediaCount", str(len(media))))
            params += [(f"Media{i}", url) for i, url in enumerate(media, start=1)]
        return params

    async def fire_inbound(self, url: str, *, from_: str, to: str, text: str = "",
                           media: Sequence[str] = (), message_uuid: str | None = None,
                           signature_url: str | None = None, bad_signature: bool = False,
                           signed: bool = True) -> tuple[int, dict[str, str], bytes]:
        """POST an inbound-message webhook to ``url``, signed over ``signature_url`` or ``url``."""
        params = self.inbound_params(from_=from_, to=to, text=text, media=media,
                                     message_uuid=message_uuid)
        return await self._fire(url, params, signature_url, bad_signature, signed)

    async def fire_status(self, url: str, message_uuid: str, status: str,
                          error_code: str | None = None, *, bad_signature: bool = False,
                          ) -> tuple[int, dict[str, str], bytes]:
        """POST a status callback for ``message_uuid`` and record the status on it."""
        sent = self.message(message_uuid)
        params = [("MessageUUID", message_uuid), ("Status", status)]
        if sent is not None:
            sent.status = status
            params += [("From", sent.src.lstrip("+")), ("To", sent.dst.lstrip("+")),
                       ("Type", sent.type),
                       ("Units", str(count_segments(sent.text).segments if sent.text else 1))]
        params += [("TotalRate", "0.00500"), ("TotalAmount", "0.00500"),
                   ("ParentMessageUUID", message_uuid), ("PartInfo", "1 of 1"),
                   ("Sequence", "1"), ("MCC", "302"), ("MNC", "720")]
        if status in ("failed", "undelivered"):
            params.append(("ErrorCode", error_code or "1000"))
        elif status == "delivered":
            params.append(("ErrorCode", "000"))
        return await self._fire(url, params, None, bad_signature, True)

    async def deliver_all(self, statuses: Sequence[str] = ("sent", "delivered"),
                          ) -> list[tuple[int, dict[str, str], bytes]]:
        """Fire ``statuses`` in order for every accepted message that gave a callback url."""
        results = []
        for sent in list(self.messages):
            if sent.url:
                for status in statuses:
                    results.append(await self.fire_status(sent.url, sent.message_uuid, status))
        return results

    async def _fire(self, url: str, params: list[tuple[str, str]], signature_url: str | None,
                    bad_signature: bool, signed: bool, method: str = "POST",
                    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"User-Agent": "PlivoHttpClient"}
        data: str | None = urlencode(params)
        if method.upper() == "GET":
            # Plivo puts a GET callback's parameters in the query, which the signature covers.
            url = url + ("&" if "?" in url else "?") + urlencode(params)
            params, data = [], None
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if signed:
            nonce = "".join(secrets.choice("0123456789") for _ in range(20))
            signature = plivo_v3_signature(self.auth_token, method, signature_url or url,
                                           params, nonce)
            if bad_signature:
                signature = ("B" if signature[0] == "A" else "A") + signature[1:]
            headers["X-Plivo-Signature-V3"] = signature
            headers["X-Plivo-Signature-V3-Nonce"] = nonce
        return await send_webhook(method, url, data=data, headers=headers)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Plivo account with uvicorn."""
    parser = fake_parser("Plivo Message API", 9004)
    parser.add_argument("--auth-id", default=DEFAULT_AUTH_ID,
                        help="Auth ID clients must use (MA/SA + 18 characters)")
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN,
                        help="Auth Token clients must use; also signs the fake's webhooks")
    args = parser.parse_args(argv)
    fake = FakePlivo(args.auth_id, args.auth_token)
    serve(fake.app, args.host, args.port,
          f"fake Plivo on http://{args.host}:{args.port} (account {fake.auth_id})")


if __name__ == "__main__":
    main()
