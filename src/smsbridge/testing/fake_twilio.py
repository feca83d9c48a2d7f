"""A fake Twilio: the Messages and Calls APIs on 127.0.0.1, and Twilio's signed webhooks.

It is an independent model of the carrier, written from shared/providers/twilio.md,
and does not import smsbridge's Twilio provider (so the two cannot share a mistake).

    fake = FakeTwilio()
    server = start_server(fake.app)            # base_url for the provider: server.url
    fake.opted_out.add("+15145550199")         # sends to it fail with 21610
    fake.fail_next(20429, 429, retry_after=5)  # the next send is rate-limited
    await fake.fire_inbound(gateway_inbound_url, from_="+15145550111", to="+15145550100", body="hi")
    await fake.deliver_all()                   # "sent" + "delivered" callbacks for every send
    await fake.end_call(fake.calls[0], "busy") # ringing, then busy, to the call's StatusCallback

Run on its own: ``python -m smsbridge.testing.fake_twilio --port 9002``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode
from xml.etree import ElementTree

import phonenumbers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core.segments import count_segments
from .fake_base import FakeCarrier, basic_auth_ok, fake_parser, send_webhook, serve

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "5ca1ab1e" * 4
DEFAULT_AUTH_TOKEN = "fa4e70ce" * 4
MAX_BODY = 1600
MAX_MEDIA = 10

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")

# Messages of the Messages API's errors, as its JSON bodies carry them.
ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric"
           " sender ID.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the"
           " 'To' number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided ({from_}) is not a valid message-capable Twilio"
           " phone number for this destination/account.",
    21608: "The number {to} is unverified. Trial accounts may only send messages to verified"
           " numbers.",
    21609: "Invalid StatusCallback url.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone"
           " number: {from_} via SMS.",
    21614: "'To' number {to} is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21620: "Invalid media URL(s).",
    21623: "Number of media files exceeds allowed limit.",
    # The Calls API's (twilio.md §6; the codes' wording is this fake's, unconfirmed).
    12100: "Document parse failure",
    21201: "No 'To' number is specified",
    21205: "Url is not a valid URL.",
    21213: "No 'From' number is specified",
}

# CallStatus words a call-status callback carries (twilio.md §6, Twilio's CallEnumStatus).
CALL_ENDINGS = ("completed", "busy", "no-answer", "failed", "canceled")


def twilio_signature(token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """X-Twilio-Signature as Twilio computes it: HMAC-SHA1(url + sorted name+value), base64."""
    data = url + "".join(name + value for name, value in sorted(set(params)))
    mac = hmac.new(token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def _new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _now_rfc2822() -> str:
    return format_datetime(datetime.now(UTC).replace(microsecond=0))


def _error(code: int, http_status: int, **values: str) -> JSONResponse:
    """The Messages API's JSON error body."""
    message = ERROR_MESSAGES.get(code, f"Error {code}").format(**({"to": "", "from_": ""} | values))
    return JSONResponse(
        {"code": code, "message": message,
         "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": http_status},
        status_code=http_status,
    )


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake API received."""

    method: str
    path: str
    form: list[tuple[str, str]]
    auth_ok: bool

    def get(self, name: str) -> str | None:
        """The first form value of ``name``."""
        return next((v for k, v in self.form if k == name), None)

    def get_all(self, name: str) -> list[str]:
        """Every form value of ``name``, in order."""
        return [v for k, v in self.form if k == name]


@dataclass
class SentMessage:
    """A message the fake accepted, with the Message resource it answered."""

    sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    media_urls: list[str]
    status_callback: str | None
    resource: dict[str, Any]


@dataclass
class PlacedCall:
    """A call the fake accepted: its TwiML as sent and as read, and the Call resource."""

    sid: str
    to: str
    from_: str
    twiml: str
    say: str
    say_attributes: dict[str, str]
    status_callback: str | None
    status_callback_events: list[str]
    status_callback_method: str | None
    resource: dict[str, Any]


def _read_say(twiml: str) -> tuple[str, dict[str, str]] | None:
    """The text and attributes of ``<Response><Say>``, or None when the TwiML is not that."""
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError:
        return None
    say = root.find("Say")
    if root.tag != "Response" or say is None:
        return None
    return say.text or "", dict(say.attrib)


class FakeTwilio(FakeCarrier[RecordedRequest, SentMessage, int]):
    """An in-memory Twilio account speaking the real Messages API and webhook formats.

    A carrier that copies Twilio's API (SignalWire) subclasses it and changes the class
    attributes below: where the API lives, and which headers carry the signature.
    """

    # Put before /2010-04-01/... in the Messages API's paths.
    api_prefix = ""
    # Each header is set to the same signature on every webhook fired.
    signature_headers: tuple[str, ...] = ("X-Twilio-Signature",)
    user_agent = "TwilioProxy/1.1"

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        opted_out: Iterable[str] = (),
        signing_key: str | None = None,
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        # Twilio signs with the Auth Token; a compatible carrier may have a key of its own.
        self.signing_key = signing_key or auth_token
        self.opted_out: set[str] = set(opted_out)
        self.delay_seconds = 0.0
        self.calls: list[PlacedCall] = []
        self._call_sequence: dict[str, int] = {}
        # The account's numbers for IncomingPhoneNumbers.json (``add_number``), and what
        # its Account resource says of it.
        self.numbers: dict[str, dict[str, bool]] = {}
        self.friendly_name = "My first Twilio account"
        self.account_status = "active"
        self.max_page_size = 1000
        account = f"{self.api_prefix}/{API_VERSION}/Accounts/{{account_sid}}"
        self.app = Starlette(routes=[
            Route(account + ".json", self._fetch_account, methods=["GET"]),
            Route(account + "/IncomingPhoneNumbers.json", self._list_numbers,
                  methods=["GET"]),
            Route(account + "/Messages.json", self._create_message, methods=["POST"]),
            Route(account + "/Messages/{message_sid}.json", self._fetch_message,
                  methods=["GET"]),
            Route(account + "/Calls.json", self._create_call, methods=["POST"]),
        ])

    # --- knobs -------------------------------------------------------------------------

    def fail_next(
        self,
        code: int,
        http_status: int,
        times: int = 1,
        retry_after: float | None = None,
        *,
        raw_body: str | None = None,
    ) -> None:
        """Answer the next ``times`` sends with this error (``raw_body``: a non-JSON body)."""
        self._queue_failure(code, http_status, times, retry_after, raw_body)

    def _forget_knobs(self) -> None:
        self.opted_out.clear()
        self.delay_seconds = 0.0
        self.calls.clear()
        self._call_sequence.clear()

    def new_sid(self, prefix: str) -> str:
        """A new message sid: ``prefix`` (SM, MM) and 32 hex digits, as Twilio makes them."""
        return _new_sid(prefix)

    def message(self, sid: str) -> SentMessage | None:
        """The accepted message with this sid, if any."""
        return next((m for m in self.messages if m.sid == sid), None)

    # --- the Messages API ----------------------------------------------------------------

    async def _record(self, request: Request) -> RecordedRequest:
        form: list[tuple[str, str]] = []
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        auth_ok = basic_auth_ok(request, self.account_sid, self.auth_token)
        return self._keep_request(RecordedRequest(request.method, request.url.path, form, auth_ok))

    async def _create_message(self, request: Request) -> Response:
        return await self._create(request, self._accept)

    async def _create(self, request: Request,
                      accept: Callable[[RecordedRequest], Response]) -> Response:
        """Create a resource the way every list endpoint does: auth, account, queued failures."""
        recorded = await self._record(request)
        if not recorded.auth_ok:
            return _error(20003, 401)
        if request.path_params["account_sid"] != self.account_sid:
            return _error(20404, 404)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        failed = self._failure_answer(
            lambda failure: _error(failure.error, failure.http_status))
        return failed or accept(recorded)

    def _accept(self, recorded: RecordedRequest) -> Response:
        """Validate a send the way the Messages API does, and store it."""
        to = recorded.get("To") or ""
        from_ = recorded.get("From") or ""
        service = recorded.get("MessagingServiceSid") or ""
        body = recorded.get("Body") or ""
        media_urls = recorded.get_all("MediaUrl")
        callback = recorded.get("StatusCallback")
        if not to:
            return _error(21604, 400)
        if not _E164.fullmatch(to):
            return _error(21211, 400, to=to)
        if not from_ and not service:
            return _error(21603, 400)
        if from_ and not _E164.fullmatch(from_):
            return _error(21212, 400, from_=from_)
        if not body and not media_urls:
            return _error(21602, 400)
        if len(body) > MAX_BODY:
            return _error(21617, 400)
        if len(media_urls) > MAX_MEDIA:
            return _error(21623, 400)
        if any(not u.startswith(("http://", "https://")) for u in media_urls):
            return _error(21620, 400)
        if callback is not None and not callback.startswith(("http://", "https://")):
            return _error(21609, 400)
        if to in self.opted_out:
            return _error(21610, 400)
        sid = self.new_sid("MM" if media_urls else "SM")
        resource = self._resource(sid, to, from_ or None, service or None, body, len(media_urls))
        self._keep_message(SentMessage(sid, to, from_ or None, service or None, body,
                                       media_urls, callback, resource))
        return JSONResponse(resource, status_code=201)

    def _resource(self, sid: str, to: str, from_: str | None, service: str | None, body: str,
                  num_media: int) -> dict[str, Any]:
        """A Message resource as the API returns it (field names from twilio.md §2)."""
        now = _now_rfc2822()
        uri = f"{self.api_prefix}/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        # Through a Messaging Service the sender is picked later: no From, 0 segments yet.
        segments = 0 if service else (count_segments(body).segments if body else 1)
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": service,
            "num_media": str(num_media),
            "num_segments": str(segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": to,
            "uri": f"{uri}.json",
        }

    # --- the Calls API ---------------------------------------------------------------------

    async def _create_call(self, request: Request) -> Response:
        return await self._create(request, self._accept_call)

    def _accept_call(self, recorded: RecordedRequest) -> Response:
        """Validate a call the way the Calls API does, and keep it (ringing nobody)."""
        to = recorded.get("To") or ""
        from_ = recorded.get("From") or ""
        twiml = recorded.get("Twiml")
        callback = recorded.get("StatusCallback")
        if not to:
            return _error(21201, 400)
        if not _E164.fullmatch(to):
            return _error(21211, 400, to=to)
        if not from_:
            return _error(21213, 400)
        if not _E164.fullmatch(from_):
            return _error(21212, 400, from_=from_)
        if twiml is None:
            return _error(21205, 400)  # this fake takes inline TwiML only, not Url
        spoken = _read_say(twiml)
        if spoken is None:
            return _error(12100, 400)
        if callback is not None and not callback.startswith(("http://", "https://")):
            return _error(21609, 400)
        sid = self.new_sid("CA")
        now = _now_rfc2822()
        uri = f"{self.api_prefix}/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}"
        # A Call resource as the API returns it (field names from twilio.md §6).
        resource: dict[str, Any] = {
            "account_sid": self.account_sid, "api_version": API_VERSION, "sid": sid,
            "to": to, "from": from_, "status": "queued", "direction": "outbound-api",
            "date_created": now, "date_updated": now, "start_time": None, "end_time": None,
            "duration": None, "price": None, "price_unit": "USD", "uri": f"{uri}.json",
        }
        with self._lock:
            self.calls.append(PlacedCall(
                sid, to, from_, twiml, spoken[0], spoken[1], callback,
                recorded.get_all("StatusCallbackEvent"), recorded.get("StatusCallbackMethod"),
                resource))
        return JSONResponse(resource, status_code=201)

    def _next_sequence(self, sid: str) -> int:
        with self._lock:
            number = self._call_sequence.get(sid, 0)
            self._call_sequence[sid] = number + 1
        return number

    def call(self, sid: str) -> PlacedCall | None:
        """The accepted call with this sid, if any."""
        return next((c for c in self.calls if c.sid == sid), None)

    async def fire_call_status(
        self,
        callback_url: str,
        sid: str,
        status: str,
        *,
        bad_signature: bool = False,
        signature_url: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send a call-status callback (CallStatus ``status``) for call ``sid``, signed."""
        placed = self.call(sid)
        to = placed.to if placed else ""
        from_ = placed.from_ if placed else ""
        # The request parameters of a voice webhook, then the call-progress fields
        # (CallbackSource, SequenceNumber, Timestamp) that StatusCallbackEvent adds.
        params = [
            ("Called", to), ("CalledCountry", _region(to)), ("Caller", from_),
            ("CallerCountry", _region(from_)), ("Direction", "outbound-api"),
            ("Timestamp", _now_rfc2822()), ("CallbackSource", "call-progress-events"),
            ("SequenceNumber", str(self._next_sequence(sid))), ("CallSid", sid), ("To", to),
            ("ToCountry", _region(to)), ("ApiVersion", API_VERSION), ("CallStatus", status),
            ("From", from_), ("FromCountry", _region(from_)), ("AccountSid", self.account_sid),
        ]
        if status == "completed":
            params += [("CallDuration", "7"), ("Duration", "1")]
        if placed is not None:
            with self._lock:
                placed.resource["status"] = status
                placed.resource["date_updated"] = _now_rfc2822()
        return await self._fire(callback_url, params, signature_url, bad_signature, "POST")

    async def end_call(self, placed: PlacedCall, ending: str
                       ) -> list[tuple[int, dict[str, str], bytes]]:
        """Fire what the phone did: ringing, answered (for "completed") and ``ending``."""
        if ending not in CALL_ENDINGS:
            raise ValueError(f"a call ends {', '.join(CALL_ENDINGS)}; not {ending!r}")
        if placed.status_callback is None:
            raise ValueError(f"call {placed.sid} was placed without a StatusCallback")
        steps = ["ringing", "in-progress", ending] if ending == "completed" else [
            "ringing", ending]
        return [await self.fire_call_status(placed.status_callback, placed.sid, step)
                for step in steps]

    async def _fetch_message(self, request: Request) -> Response:
        recorded = await self._record(request)
        if not recorded.auth_ok:
            return _error(20003, 401)
        found = self.message(request.path_params["message_sid"])
        if request.path_params["account_sid"] != self.account_sid or found is None:
            return _error(20404, 404)
        return JSONResponse(found.resource)

    # --- the account's own resources ----------------------------------------------------

    def add_number(self, number: str, *, sms: bool = True, mms: bool = True,
                   voice: bool = True) -> None:
        """Give the account a number with these capabilities."""
        self.numbers[number] = {"voice": voice, "sms": sms, "mms": mms, "fax": False}

    async def _read_refused(self, request: Request) -> Response | None:
        """Record a GET of the account's resources; the error that refuses it, if any."""
        recorded = await self._record(request)
        if not recorded.auth_ok:
            return _error(20003, 401)
        if request.path_params["account_sid"] != self.account_sid:
            return _error(20404, 404)
        return None

    async def _fetch_account(self, request: Request) -> Response:
        refused = await self._read_refused(request)
        if refused is not None:
            return refused
        sid = self.account_sid
        return JSONResponse({
            "sid": sid, "owner_account_sid": sid, "friendly_name": self.friendly_name,
            "status": self.account_status, "type": "Full", "auth_token": self.auth_token,
            "date_created": "Mon, 20 May 2024 11:29:45 +0000",
            "date_updated": "Mon, 20 May 2024 11:29:45 +0000",
            "uri": f"{self.api_prefix}/{API_VERSION}/Accounts/{sid}.json",
        })

    async def _list_numbers(self, request: Request) -> Response:
        """One page of IncomingPhoneNumbers (PageSize, Page), with the next page's URI."""
        refused = await self._read_refused(request)
        if refused is not None:
            return refused
        size = min(int(request.query_params.get("PageSize") or 50), self.max_page_size)
        page = int(request.query_params.get("Page") or 0)
        numbers = list(self.numbers.items())
        rows = numbers[page * size:(page + 1) * size]
        base = request.url.path
        following = (f"{base}?PageSize={size}&Page={page + 1}&PageToken=PA{page + 1:032x}"
                     if (page + 1) * size < len(numbers) else None)
        return JSONResponse({
            "incoming_phone_numbers": [
                {"sid": _new_sid("PN"), "account_sid": self.account_sid,
                 "friendly_name": number, "phone_number": number,
                 "capabilities": capabilities, "status": "in-use"}
                for number, capabilities in rows],
            "page": page, "page_size": size, "start": page * size,
            "end": page * size + max(len(rows) - 1, 0),
            "uri": f"{base}?PageSize={size}&Page={page}",
            "first_page_uri": f"{base}?PageSize={size}&Page=0",
            "next_page_uri": following, "previous_page_uri": None,
        })

    # --- webhooks fired at the gateway ---------------------------------------------------

    def inbound_params(
        self,
        *,
        from_: str,
        to: str,
        body: str,
        media: Sequence[tuple[str, str]] = (),
        message_sid: str | None = None,
        messaging_service_sid: str | None = None,
    ) -> list[tuple[str, str]]:
        """The fields of an inbound-message webhook, in the order Twilio tends to send them."""
        sid = message_sid or self.new_sid("MM" if media else "SM")
        params = [
            ("ToCountry", _region(to)), ("ToState", ""), ("SmsMessageSid", sid),
            ("NumMedia", str(len(media))), ("ToCity", ""), ("FromZip", ""), ("SmsSid", sid),
            ("FromState", ""), ("SmsStatus", "received"), ("FromCity", ""), ("Body", body),
            ("FromCountry", _region(from_)), ("To", to),
        ]
        if messaging_service_sid:
            params.append(("MessagingServiceSid", messaging_service_sid))
        params += [
            ("ToZip", ""), ("NumSegments", str(count_segments(body).segments if body else 1)),
            ("MessageSid", sid), ("AccountSid", self.account_sid), ("From", from_),
        ]
        for index, (url, content_type) in enumerate(media):
            params += [(f"MediaContentType{index}", content_type), (f"MediaUrl{index}", url)]
        params.append(("ApiVersion", API_VERSION))
        return params

    async def fire_inbound(
        self,
        url: str,
        *,
        from_: str,
        to: str,
        body: str = "",
        media: Sequence[tuple[str, str]] = (),
        message_sid: str | None = None,
        extra: dict[str, str] | None = None,
        signature_url: str | None = None,
        bad_signature: bool = False,
        method: str = "POST",
        messaging_service_sid: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send an inbound-message webhook to ``url``, signed over ``signature_url`` or ``url``.

        Returns the gateway's answer: status, headers (lower-case names) and body.
        """
        params = self.inbound_params(from_=from_, to=to, body=body, media=media,
                                     message_sid=message_sid,
                                     messaging_service_sid=messaging_service_sid)
        params += list((extra or {}).items())
        return await self._fire(url, params, signature_url, bad_signature, method)

    async def fire_status(
        self,
        callback_url: str,
        sid: str,
        status: str,
        error_code: str | int | None = None,
        *,
        signature_url: str | None = None,
        bad_signature: bool = False,
        extra: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send a status callback for message ``sid`` and record the status on it."""
        sent = self.message(sid)
        params = [("SmsSid", sid), ("SmsStatus", status), ("MessageStatus", status)]
        if sent is not None:
            params.append(("To", sent.to))
            if sent.messaging_service_sid:
                params.append(("MessagingServiceSid", sent.messaging_service_sid))
        params += [("MessageSid", sid), ("AccountSid", self.account_sid)]
        if sent is not None and sent.from_:
            params.append(("From", sent.from_))
        params.append(("ApiVersion", API_VERSION))
        if error_code is not None:
            params.append(("ErrorCode", str(error_code)))
        if status == "delivered":
            # Carrier DLR timestamp, YYMMDDhhmm (twilio.md §4).
            params.append(("RawDlrDoneDate", datetime.now(UTC).strftime("%y%m%d%H%M")))
        params += list((extra or {}).items())
        if sent is not None:
            with self._lock:
                sent.resource["status"] = status
                sent.resource["date_updated"] = _now_rfc2822()
                if error_code is not None:
                    sent.resource["error_code"] = int(error_code)
        return await self._fire(callback_url, params, signature_url, bad_signature, "POST")

    async def deliver_all(
        self, statuses: Sequence[str] = ("sent", "delivered")
    ) -> list[tuple[int, dict[str, str], bytes]]:
        """Fire ``statuses`` in order for every accepted message that had a StatusCallback."""
        results = []
        for sent in list(self.messages):
            if sent.status_callback:
                for status in statuses:
                    results.append(await self.fire_status(sent.status_callback, sent.sid, status))
        return results

    async def _fire(
        self,
        url: str,
        params: list[tuple[str, str]],
        signature_url: str | None,
        bad_signature: bool,
        method: str,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send a signed webhook the way Twilio does: form POST, or GET with a query."""
        headers = {"User-Agent": self.user_agent}
        if method.upper() == "GET":
            query = urlencode(params)
            url = f"{url}{'&' if '?' in url else '?'}{query}"
            signed_url = (
                f"{signature_url}{'&' if '?' in signature_url else '?'}{query}"
                if signature_url else url
            )
            signature = twilio_signature(self.signing_key, signed_url)
            data = None
        else:
            signature = twilio_signature(self.signing_key, signature_url or url, params)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = urlencode(params)
        if bad_signature:
            signature = ("B" if signature[0] == "A" else "A") + signature[1:]
        headers.update(dict.fromkeys(self.signature_headers, signature))
        return await send_webhook(method, url, data=data, headers=headers)


def _region(number: str) -> str:
    """The ISO country of an E.164 number, or "" (Twilio sends empty geo fields when unknown)."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number)) or ""
    except phonenumbers.NumberParseException:
        return ""


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Twilio account with uvicorn."""
    parser = fake_parser("Twilio Messages API", 9002)
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID,
                        help="Account SID clients must use (AC + 32 hex)")
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN,
                        help="Auth Token clients must use; also signs the fake's webhooks")
    args = parser.parse_args(argv)
    if not _SID.fullmatch(args.account_sid) or not args.account_sid.startswith("AC"):
        parser.error("--account-sid must be AC followed by 32 lower-case hex digits")
    fake = FakeTwilio(args.account_sid, args.auth_token)
    serve(fake.app, args.host, args.port,
          f"fake Twilio on http://{args.host}:{args.port} (account {fake.account_sid})")


if __name__ == "__main__":
    main()
