"""A fake VoIP.ms: its REST/JSON API at /api/v1/rest.php, and its inbound callbacks.

An independent model of the carrier (it does not use the VoIP.ms provider), built
from shared/providers/voipms.md: GET query or POST form/multipart, HTTP 200
with ``{"status": ...}`` for every API answer, sendSMS limited to 160 UTF-8 bytes.

Run it alone with ``python -m smsbridge.testing.fake_voipms --port 9001``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.parser
import email.policy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

import aiohttp
import yarl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .fake_base import fake_parser, serve

SEND_METHODS = frozenset({"sendSMS", "sendMMS"})
KNOWN_METHODS = frozenset({"sendSMS", "sendMMS", "getSMS", "getMMS", "getDIDsInfo"})
SMS_MAX_BYTES = 160
MMS_MAX_CHARS = 2048
MEDIA_MAX_BYTES = 1_200_000
_TEN_DIGITS = re.compile(r"^\d{10}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One API request as the fake saw it: the API method and every parameter."""

    method: str
    params: dict[str, str]
    http_method: str


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A send the fake accepted."""

    id: int
    kind: str  # "sms" or "mms"
    did: str
    dst: str
    message: str
    media: tuple[str, ...] = ()


@dataclass(slots=True)
class _Row:
    id: int
    date: str
    type: str  # "1" received, "0" sent
    did: str
    contact: str
    message: str
    media: tuple[str, ...] = ()

    def as_sms(self) -> dict[str, Any]:
        return {"id": str(self.id), "date": self.date, "type": self.type, "did": self.did,
                "contact": self.contact, "message": self.message,
                "carrier_status": "Information not available"}

    def as_mms(self) -> dict[str, Any]:
        row = self.as_sms()
        for index in range(3):
            row[f"col_media{index + 1}"] = self.media[index] if index < len(self.media) else ""
        row["media"] = list(self.media)
        return row


@dataclass(slots=True)
class _Fault:
    methods: frozenset[str]
    times: int
    status: str | None = None
    http_code: int | None = None
    retry_after: str | None = None
    after: int = 0


@dataclass
class FakeVoipms:
    """The fake carrier; ``app`` is the ASGI app, the rest is state and knobs for tests."""

    username: str = "me@example.com"
    api_password: str = "secret"
    dids: Iterable[str] | None = None  # when set, sends from any other DID answer invalid_did
    delay_seconds: float = 0.0
    requests: list[RecordedRequest] = field(default_factory=list)
    sent: list[SentMessage] = field(default_factory=list)
    # getDIDsInfo lists ``dids``; these of them have SMS turned off.
    sms_disabled_dids: Iterable[str] = ()
    # The portal's API switch: off, every call answers api_not_enabled (voipms.md §2).
    api_enabled: bool = True
    # Set to the address VoIP.ms would see: every call answers ip_not_enabled naming it.
    refused_ip: str | None = None

    def __post_init__(self) -> None:
        self.dids = None if self.dids is None else frozenset(self.dids)
        self._rows: list[_Row] = []
        self._faults: list[_Fault] = []
        self._next_id = 23434
        self.app = Starlette(routes=[
            Route("/api/v1/rest.php", self._endpoint, methods=["GET", "POST"]),
        ])

    # ------------------------------------------------------------ test knobs

    def fail_next(self, status: str, times: int = 1, *, after: int = 0,
                  methods: Iterable[str] = SEND_METHODS) -> None:
        """Answer the next ``times`` calls of ``methods`` (sends by default) with this status.

        ``after`` lets that many matching calls through first (to fail a later part).
        """
        self._faults.append(_Fault(frozenset(methods), times, status=status, after=after))

    def http_error_next(self, code: int = 503, times: int = 1, *, retry_after: str | None = None,
                        methods: Iterable[str] = SEND_METHODS) -> None:
        """Answer the next ``times`` calls of ``methods`` with a bare HTTP error (5xx, 429)."""
        self._faults.append(_Fault(frozenset(methods), times, http_code=code,
                                   retry_after=retry_after))

    def add_received(self, id: int | str, did: str, contact: str, message: str,
                     date: str | None = None, media: Sequence[str] = ()) -> None:
        """Store an inbound message that getSMS (or getMMS, with media) will return."""
        when = date or datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        self._rows.append(_Row(int(id), when, "1", did, contact, message, tuple(media)))

    # ------------------------------------------------------------ API

    async def _endpoint(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(await _form_fields(request))
        method = params.get("method", "")
        self.requests.append(RecordedRequest(method, params, request.method))
        if not params.get("api_username") or not params.get("api_password"):
            return _status("missing_credentials")
        if (params["api_username"], params["api_password"]) != (self.username, self.api_password):
            return _status("invalid_credentials")
        if not self.api_enabled:
            return _status("api_not_enabled")
        if self.refused_ip is not None:
            # Error answers carry a message beside the status; that it names the caller's
            # address is this fake's assumption (unconfirmed, voipms.md §2).
            return JSONResponse({"status": "ip_not_enabled", "message":
                                 f"This IP ({self.refused_ip}) is not enabled for API use"})
        if not method:
            return _status("missing_method")
        if method not in KNOWN_METHODS:
            return _status("invalid_method")
        if method in SEND_METHODS and self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        fault = self._take_fault(method)
        if fault is not None:
            if fault.http_code is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                return PlainTextResponse("<html>Service Unavailable</html>",
                                         status_code=fault.http_code, headers=headers)
            return _status(str(fault.status))
        handler = {"sendSMS": self._send_sms, "sendMMS": self._send_mms,
                   "getSMS": self._get_sms, "getMMS": self._get_mms,
                   "getDIDsInfo": self._get_dids_info}[method]
        return JSONResponse(handler(params))

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if method in fault.methods:
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _check_numbers(self, params: dict[str, str]) -> str | None:
        did, dst = params.get("did", ""), params.get("dst", "")
        if not did:
            return "missing_did"
        if not _TEN_DIGITS.match(did) or (self.dids is not None and did not in self.dids):
            return "invalid_did"
        if not dst:
            return "missing_dst"
        if not _TEN_DIGITS.match(dst):
            return "invalid_dst"
        return None

    def _record_sent(self, kind: str, params: dict[str, str], media: tuple[str, ...]) -> int:
        message_id = self._next_id
        self._next_id += 1
        self.sent.append(SentMessage(message_id, kind, params["did"], params["dst"],
                                     params.get("message", ""), media))
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        self._rows.append(_Row(message_id, when, "0", params["did"], params["dst"],
                               params.get("message", ""), media))
        return message_id

    def _send_sms(self, params: dict[str, str]) -> dict[str, Any]:
        problem = self._check_numbers(params)
        if problem:
            return {"status": problem}
        text = params.get("message", "")
        if not text:
            return {"status": "message_empty"}
        # The real API counts bytes (PHP strlen), not characters (voipms.md §3.1).
        if len(text.encode("utf-8")) > SMS_MAX_BYTES:
            return {"status": "sms_toolong"}
        return {"status": "success", "sms": self._record_sent("sms", params, ())}

    def _send_mms(self, params: dict[str, str]) -> dict[str, Any]:
        problem = self._check_numbers(params)
        if problem:
            return {"status": problem}
        text = params.get("message", "")
        media = tuple(v for k in ("media1", "media2", "media3") if (v := params.get(k, "")))
        if not text and not media:
            return {"status": "message_empty"}
        if len(text) > MMS_MAX_CHARS:
            return {"status": "sms_toolong"}
        for item in media:
            problem = _check_media(item)
            if problem:
                return {"status": problem}
        return {"status": "success", "mms": self._record_sent("mms", params, media)}

    def _matching_rows(self, params: dict[str, str], id_key: str, mms: bool
                       ) -> list[_Row] | str:
        for key in ("from", "to"):
            if params.get(key) and not _DATE.match(params[key]):
                return "invalid_date"
        rows = [row for row in self._rows if bool(row.media) == mms]
        wanted = params.get(id_key, "")
        if wanted and wanted != "0":
            rows = [row for row in rows if str(row.id) == wanted]
        # Dates default to today, as on the real API (voipms.md §8).
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        start, end = params.get("from") or today, params.get("to") or today
        rows = [row for row in rows if start <= row.date[:10] <= end]
        for key, attr in (("type", "type"), ("did", "did"), ("contact", "contact")):
            if params.get(key):
                rows = [row for row in rows if getattr(row, attr) == params[key]]
        return rows[: int(params.get("limit") or 50)]

    def _get_dids_info(self, params: dict[str, str]) -> dict[str, Any]:
        """The account's DIDs with their SMS switch; ``no_did`` when it has none."""
        dids = sorted(self.dids or ())
        if params.get("did"):
            dids = [did for did in dids if did == params["did"]]
        if not dids:
            return {"status": "no_did"}
        off = frozenset(self.sms_disabled_dids)
        return {"status": "success", "dids": [
            {"did": did, "description": f"DID {did}", "routing": "account:100000_main",
             "sms_available": "1", "sms_enabled": "0" if did in off else "1"}
            for did in dids]}

    def _get_sms(self, params: dict[str, str]) -> dict[str, Any]:
        rows = self._matching_rows(params, "sms", mms=False)
        if isinstance(rows, str):
            return {"status": rows}
        if not rows:
            return {"status": "no_sms"}
        return {"status": "success", "sms": [row.as_sms() for row in rows]}

    def _get_mms(self, params: dict[str, str]) -> dict[str, Any]:
        rows = self._matching_rows(params, "mms", mms=True)
        if isinstance(rows, str):
            return {"status": rows}
        if not rows:
            return {"status": "no_mms"}  # exact word not documented in the notes read
        return {"status": "success", "mms": [row.as_mms() for row in rows]}

    # ------------------------------------------------------------ inbound

    async def fire_url_callback(
        self, template_url: str, *, from_: str, to: str, message: str, id: str,
        timestamp: str, media: str = "",
    ) -> tuple[int, str]:
        """GET a URL-callback template with its placeholders filled in, as VoIP.ms does (§6)."""
        values = {"{FROM}": from_, "{TO}": to, "{MESSAGE}": message, "{ID}": id,
                  "{TIMESTAMP}": timestamp, "{MEDIA}": media}
        url = template_url
        for placeholder, value in values.items():
            url = url.replace(placeholder, quote(value, safe=""))
        async with aiohttp.ClientSession() as http, http.get(yarl.URL(url, encoded=True)) as resp:
            return resp.status, await resp.text()

    async def fire_webhook(
        self, url: str, *, from_: str, to: str, message: str, id: str,
        media: Sequence[tuple[str, str]] = (), timestamp: str | None = None,
    ) -> tuple[int, str]:
        """POST the JSON SMS/MMS webhook (Telnyx-like shape, §7); media as (url, content_type)."""
        when = timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"data": {
            "event_type": "message.received",
            "id": f"evt-{id}",
            "occurred_at": when,
            "payload": {
                "id": id,
                "type": "MMS" if media else "SMS",
                "from": {"phone_number": from_},
                "to": [{"phone_number": to}],
                "text": message,
                "media": [{"url": u, "content_type": c} for u, c in media],
                "received_at": when,
            },
            "record_type": "event",
        }}
        async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
            return resp.status, await resp.text()


def _status(word: str) -> JSONResponse:
    """An API answer: always HTTP 200, the outcome only in ``status`` (§1, §4)."""
    return JSONResponse({"status": word})


def _check_media(value: str) -> str | None:
    """None for a usable media field (URL, data URI or raw base64), else the API's status."""
    if value.startswith(("http://", "https://")):
        return None
    data = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return "no_base64file"
    return "exceeds_file_size" if len(raw) > MEDIA_MAX_BYTES else None


async def _form_fields(request: Request) -> dict[str, str]:
    """POST fields, urlencoded or multipart (parsed here: no python-multipart needed)."""
    body = await request.body()
    ctype = request.headers.get("content-type", "")
    if ctype.lower().startswith("multipart/form-data"):
        head = f"Content-Type: {ctype}\r\n\r\n".encode()
        parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        fields: dict[str, str] = {}
        for part in parsed.iter_parts() if parsed.is_multipart() else ():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = payload.decode(part.get_content_charset() or "utf-8", "replace")
        return fields
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the fake VoIP.ms API with uvicorn."""
    parser = fake_parser("VoIP.ms REST/JSON API", 9001)
    parser.add_argument("--username", default="me@example.com", help="API user (e-mail)")
    parser.add_argument("--api-password", default="secret", help="API password")
    args = parser.parse_args(argv)
    fake = FakeVoipms(username=args.username, api_password=args.api_password)
    serve(fake.app, args.host, args.port, f"fake VoIP.ms API on http://{args.host}:{args.port}"
          f"/api/v1/rest.php (user {args.username})")


if __name__ == "__main__":
    main()
