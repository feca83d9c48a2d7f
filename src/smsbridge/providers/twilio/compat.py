"""The Twilio API shape, shared by Twilio and the carriers that copy it (SignalWire).

One place for the form of a send, the Message resource of its answer, the form webhooks
(inbound and status callbacks), the status map and the HMAC-SHA1 signature check, and for
voice alerts the Calls request with its inline TwiML and the call-status callbacks. A
carrier subclasses ``TwilioCompatibleProvider`` and says only what differs: where its
account's API lives, which credentials it takes, which key signs and in which header.
"""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from collections.abc import Sequence
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree

import aiohttp

from ...core.errors import MalformedWebhook, ProviderError, WebhookRejected
from ...core.messages import (
    InboundMessage,
    Media,
    MessageStatus,
    OutboundCall,
    OutboundMessage,
    StatusUpdate,
)
from ..base import (
    AccountInfo,
    ConfigT,
    Provider,
    Reply,
    SendResult,
    WebhookRequest,
    first,
    header,
)
from ..http import basic_auth, carrier_request, redact
from ..numbers import inbound_number
from .account import check_account, sms_numbers
from .errors import delivery_error_reason, is_retryable, recipient_opted_out, send_error
from .signature import body_matches, signature_matches

API_VERSION = "2010-04-01"

# An empty TwiML (cXML) document: "store the message, send no auto-reply" (twilio.md §3).
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'

# MessageStatus values from Twilio's OpenAPI enum (twilio.md §2), mapped onto ours.
STATUS_MAP: dict[str, MessageStatus] = {
    "queued": MessageStatus.SENDING,
    "accepted": MessageStatus.SENDING,
    "scheduled": MessageStatus.SENDING,
    "sending": MessageStatus.SENDING,
    "sent": MessageStatus.SENT,
    # Some recipients got it and some did not (group MMS); not final, so later receipts win.
    "partially_delivered": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}

# Call progress reported to a call's StatusCallback when asked for (twilio.md §6; the
# CallEnumEvent of Twilio's OpenAPI and of SignalWire's compatibility SDK).
CALL_PROGRESS_EVENTS = ("initiated", "ringing", "answered", "completed")

# CallStatus of a call-status callback (CallEnumStatus of the same specs, and the "initiated"
# of the progress events), mapped onto ours: a call that ends "completed" was answered;
# each failure keeps its word as the error code (core.messages.CALL_FAILURE_ANSWERS).
CALL_STATUS_MAP: dict[str, MessageStatus] = {
    "queued": MessageStatus.SENT,
    "initiated": MessageStatus.SENT,
    "ringing": MessageStatus.SENT,
    "in-progress": MessageStatus.SENT,
    "completed": MessageStatus.DELIVERED,
    "busy": MessageStatus.FAILED,
    "no-answer": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}
CALL_FAILURE_REASONS: dict[str, str] = {
    "busy": "the line was busy",
    "no-answer": "nobody answered",
    "failed": "the call could not be connected (a wrong or unreachable number, or a carrier"
              " error)",
    "canceled": "the call was canceled before it was answered",
}

_COUNT = re.compile(r"[0-9]+")


class TwilioCompatibleProvider(Provider[ConfigT]):
    """A carrier that speaks Twilio's Messages API and signs webhooks the Twilio way."""

    # The header that carries the base64 HMAC-SHA1 signature of a webhook.
    signature_header: ClassVar[str]

    @abstractmethod
    def account_url(self) -> str:
        """The account's resource URL, ``.../2010-04-01/Accounts/{sid}``."""

    def messages_url(self) -> str:
        """The Messages resource list URL a send is POSTed to."""
        return f"{self.account_url()}/Messages.json"

    def calls_url(self) -> str:
        """The Calls resource list URL a voice call is POSTed to."""
        return f"{self.account_url()}/Calls.json"

    @abstractmethod
    def api_credentials(self) -> tuple[str, str]:
        """HTTP Basic user and password of the Messages API."""

    @abstractmethod
    def signing_key(self) -> str:
        """The secret the carrier signs its webhooks with."""

    def secrets(self) -> list[str]:
        """Every secret an error message must never show."""
        return [self.api_credentials()[1], self.signing_key()]

    def sender_field(self, message: OutboundMessage) -> tuple[str, str]:
        """Who sends: ``From`` by default; a carrier may pick a sender pool instead."""
        return ("From", message.from_number)

    def signature_mismatch_hint(self, request: WebhookRequest) -> str:
        """A hint appended to the error of a signature that does not match; none by default."""
        return ""

    def _basic_auth(self) -> str:
        return basic_auth(*self.api_credentials())

    # --- setup: the account's reads (account.py) ------------------------------------------

    def account_identity(self) -> str:
        """The API user: Twilio's Account SID, SignalWire's Project ID."""
        return self.api_credentials()[0]

    async def check_credentials(self, http: aiohttp.ClientSession) -> AccountInfo:
        """Fetch the Account resource; its friendly name is the label."""
        return await check_account(self, http)

    async def list_numbers(self, http: aiohttp.ClientSession) -> list[str] | None:
        """The IncomingPhoneNumbers whose capabilities include SMS."""
        return await sms_numbers(self, http)

    # --- sending -------------------------------------------------------------------------

    def send_form(self, message: OutboundMessage) -> list[tuple[str, str]]:
        """The form fields of the Messages API request for ``message``."""
        media_urls = self.media_urls(message)
        form: list[tuple[str, str]] = [("To", message.to_number), self.sender_field(message)]
        if message.text or not message.media:
            form.append(("Body", message.text))
        # Several media: repeat the key, not MediaUrl[] (twilio.md §2).
        form.extend(("MediaUrl", url) for url in media_urls)
        if message.status_callback_url:
            form.append(("StatusCallback", message.status_callback_url))
        return form

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """Create a Message resource; the API answers 201 with its sid."""
        body = await self._create(http, self.messages_url(), self.send_form(message))
        return self._send_result(body)

    async def _create(self, http: aiohttp.ClientSession, url: str,
                      form: list[tuple[str, str]]) -> bytes:
        """POST a resource's form; the body of a 200/201 answer, else the mapped error."""
        response = await carrier_request(
            http, "POST", url, label=self.name,
            timeout=self.config.timeout_seconds, secrets=self.secrets(), data=form,
            headers={"Accept": "application/json", "Authorization": self._basic_auth()},
        )
        if response.status not in (200, 201):
            raise send_error(response, self.name)
        return response.body

    # --- voice calls -----------------------------------------------------------------------

    def call_form(self, call: OutboundCall) -> list[tuple[str, str]]:
        """The form fields of the Calls API request for ``call``: its TwiML goes inline."""
        form = [("To", call.to_number), ("From", call.from_number),
                ("Twiml", say_twiml(call))]
        if call.status_callback_url:
            form.append(("StatusCallback", call.status_callback_url))
            # Several events: repeat the key, as for MediaUrl.
            form.extend(("StatusCallbackEvent", event) for event in CALL_PROGRESS_EVENTS)
            form.append(("StatusCallbackMethod", "POST"))
        return form

    async def place_call(self, call: OutboundCall, http: aiohttp.ClientSession) -> SendResult:
        """Create a Call resource that speaks the call's text; the API answers 201 with its sid."""
        body = await self._create(http, self.calls_url(), self.call_form(call))
        resource = _json_object(body)
        sid = resource.get("sid") if resource is not None else None
        if not isinstance(sid, str) or not sid:
            # The carrier may be ringing the phone already; a retry could ring it twice.
            raise ProviderError(
                f"{self.name} accepted the call but its answer carried no call sid",
                retryable=False, code="no_sid",
            )
        return SendResult(sid, MessageStatus.SENT)

    def _send_result(self, body: bytes) -> SendResult:
        """Read the Message resource of a 201 answer."""
        resource = _json_object(body)
        sid = resource.get("sid") if resource is not None else None
        if resource is None or not isinstance(sid, str):
            # The carrier may have queued the message; a retry could text the recipient twice.
            raise ProviderError(
                f"{self.name} accepted the request but its answer carried no message sid",
                retryable=False, code="no_sid",
            )
        error_code = resource.get("error_code")
        if error_code not in (None, "", 0):
            # Success is a 201 *and* a null error_code (twilio.md §2).
            reason = resource.get("error_message") or f"{self.name} error {error_code}"
            raise ProviderError(
                redact(str(reason), self.secrets()),
                retryable=is_retryable(_positive_int(error_code), 400),
                code=str(error_code),
                recipient_opted_out=recipient_opted_out(_positive_int(error_code)),
            )
        segments = _positive_int(resource.get("num_segments"))
        return SendResult(sid, MessageStatus.SENT, segments)

    # --- webhooks ------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Check the signature header over the public URL and form params (twilio.md §5)."""
        name = self.signature_header
        signature = header(request, name)
        if not signature:
            raise WebhookRejected(f"missing {name} header")
        url_query = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
        expected_hash = first(url_query, "bodySHA256")
        params: list[tuple[str, str]] = []
        if expected_hash is not None:
            # JSON-body webhooks: the URL (with bodySHA256) is signed, the body is hashed.
            body_ok = body_matches(request.body, expected_hash)
        else:
            body_ok = True
            if request.method.upper() != "GET":
                if request.content_type in ("application/x-www-form-urlencoded", ""):
                    params = request.form()
                elif request.body.strip():
                    raise WebhookRejected(
                        f"{self.name} signs a non-form body only with a bodySHA256 query"
                        " parameter"
                    )
        if not signature_matches(self.signing_key(), request.url, params, signature):
            raise WebhookRejected(
                f"{name} does not match this URL and body; is the gateway's public URL the one"
                f" configured at {self.name}?{self.signature_mismatch_hint(request)}"
            )
        if not body_ok:
            raise WebhookRejected("body does not match its bodySHA256 query parameter")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read an inbound SMS/MMS webhook (form POST, or GET query)."""
        fields = _webhook_fields(request)
        sid = _first_present(fields, "MessageSid", "SmsMessageSid", "SmsSid")
        if sid is None:
            raise MalformedWebhook(f"{self.name} inbound is missing MessageSid")
        from_number = self._number(fields, "From")
        to_number = self._number(fields, "To")
        media = tuple(self._media(fields))
        return [InboundMessage(sid, from_number, to_number, first(fields, "Body") or "", media)]

    def inbound_reply(self, messages: Sequence[InboundMessage]) -> Reply:
        """Empty TwiML: a reply that is not TwiML is logged as a warning by the carrier."""
        return Reply(200, EMPTY_TWIML, "application/xml")

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Read a per-message status callback, or a call's (CallSid, and no MessageSid)."""
        fields = _webhook_fields(request)
        sid = _first_present(fields, "MessageSid", "SmsSid")
        if sid is None and _first_present(fields, "CallSid") is not None:
            return [self._call_status(fields)]
        if sid is None:
            raise MalformedWebhook(f"{self.name} status callback is missing MessageSid")
        raw_status = _first_present(fields, "MessageStatus", "SmsStatus")
        if raw_status is None:
            raise MalformedWebhook(f"{self.name} status callback is missing MessageStatus")
        status = STATUS_MAP.get(raw_status.lower())
        if status is None:
            raise MalformedWebhook(
                f"{self.name} MessageStatus {raw_status!r} is not an outbound status"
            )
        error_code = first(fields, "ErrorCode") or None
        if error_code == "0":
            error_code = None
        reason = delivery_error_reason(error_code, first(fields, "ErrorMessage") or None,
                                       self.name)
        return [StatusUpdate(sid, status, error_code, reason, recipient_opted_out=(
            status is MessageStatus.FAILED and recipient_opted_out(_positive_int(error_code))))]

    def _call_status(self, fields: Sequence[tuple[str, str]]) -> StatusUpdate:
        """Read a call-status callback: ringing and answered are ``sent``, the end is final."""
        sid = _first_present(fields, "CallSid")
        raw_status = _first_present(fields, "CallStatus")
        if sid is None or raw_status is None:
            raise MalformedWebhook(f"{self.name} call status callback is missing CallStatus")
        word = raw_status.lower()
        status = CALL_STATUS_MAP.get(word)
        if status is None:
            raise MalformedWebhook(f"{self.name} CallStatus {raw_status!r} is not a call status")
        if status is not MessageStatus.FAILED:
            return StatusUpdate(sid, status)
        return StatusUpdate(sid, status, word, CALL_FAILURE_REASONS[word])

    def status_reply(self, updates: Sequence[StatusUpdate]) -> Reply:
        """The carrier ignores the body of a status callback's answer."""
        return Reply(200, b"", "text/plain; charset=utf-8")

    def _number(self, fields: Sequence[tuple[str, str]], name: str) -> str:
        """A From/To number in E.164; short codes pass through as digits."""
        return inbound_number(first(fields, name), carrier=self.name, field=name)

    def _media(self, fields: Sequence[tuple[str, str]]) -> list[Media]:
        """MediaUrl{N} / MediaContentType{N} for N < NumMedia."""
        raw_count = first(fields, "NumMedia")
        if raw_count is None or raw_count == "":
            raw_count = "0"
        if not _COUNT.fullmatch(raw_count):
            raise MalformedWebhook(
                f"{self.name} NumMedia {raw_count!r} is not a non-negative integer"
            )
        if len(raw_count) > 6:
            raise MalformedWebhook(f"{self.name} NumMedia {raw_count!r} is out of range")
        media: list[Media] = []
        for index in range(int(raw_count)):
            url = first(fields, f"MediaUrl{index}")
            if not url:
                raise MalformedWebhook(
                    f"{self.name} inbound has NumMedia={raw_count} but no MediaUrl{index}"
                )
            content_type = first(fields, f"MediaContentType{index}") or "application/octet-stream"
            media.append(Media(content_type=content_type, url=url))
        return media


def say_twiml(call: OutboundCall) -> str:
    """``<Response><Say ...>text</Say></Response>``: the call's TwiML, escaped by ElementTree.

    ``voice`` and ``language`` are left out for the carrier's default; ``loop`` repeats.
    """
    attributes: dict[str, str] = {}
    if call.voice:
        attributes["voice"] = call.voice
    if call.language:
        attributes["language"] = call.language
    if call.repeat != 1:
        attributes["loop"] = str(call.repeat)
    response = ElementTree.Element("Response")
    ElementTree.SubElement(response, "Say", attributes).text = call.say
    return ElementTree.tostring(response, encoding="unicode")


def _json_object(body: bytes) -> dict[str, object] | None:
    """A resource from an API answer: the JSON object of ``body``, or None."""
    try:
        resource = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return resource if isinstance(resource, dict) else None


def _webhook_fields(request: WebhookRequest) -> list[tuple[str, str]]:
    """The webhook's parameters: the query of a GET, the form body of a POST."""
    if request.method.upper() == "GET":
        return list(request.query)
    return request.form()


def _first_present(fields: Sequence[tuple[str, str]], *names: str) -> str | None:
    """The first non-empty value among ``names``, in that order of preference."""
    for name in names:
        value = first(fields, name)
        if value:
            return value
    return None


def _positive_int(value: object) -> int | None:
    """A count from the Message resource (sent as a string), when it is above zero."""
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None
