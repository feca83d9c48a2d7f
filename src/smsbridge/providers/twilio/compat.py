"""The Twilio Messages API shape, shared by Twilio and the carriers that copy it (SignalWire).

One place for the form of a send, the Message resource of its answer, the form webhooks
(inbound and status callbacks), the status map and the HMAC-SHA1 signature check. A
carrier subclasses ``TwilioCompatibleProvider`` and says only what differs: where the
Messages API lives, which credentials it takes, which key signs and in which header.
"""

from __future__ import annotations

import base64
import json
import re
from abc import abstractmethod
from collections.abc import Sequence
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from ...core.errors import InvalidPhoneNumber, MalformedWebhook, ProviderError, WebhookRejected
from ...core.messages import InboundMessage, Media, MessageStatus, OutboundMessage, StatusUpdate
from ...core.phone import to_e164
from ..base import ConfigT, Provider, Reply, SendResult, WebhookRequest, first, header
from ..http import carrier_request, redact
from .errors import delivery_error_reason, is_retryable, send_error
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

_SHORT_CODE = re.compile(r"[0-9]{3,8}")
_COUNT = re.compile(r"[0-9]+")


class TwilioCompatibleProvider(Provider[ConfigT]):
    """A carrier that speaks Twilio's Messages API and signs webhooks the Twilio way."""

    # The header that carries the base64 HMAC-SHA1 signature of a webhook.
    signature_header: ClassVar[str]

    @abstractmethod
    def messages_url(self) -> str:
        """The Messages resource list URL a send is POSTed to."""

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
        user, password = self.api_credentials()
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")

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
        form = self.send_form(message)
        response = await carrier_request(
            http, "POST", self.messages_url(), label=self.name,
            timeout=self.config.timeout_seconds, secrets=self.secrets(), data=form,
            headers={"Accept": "application/json", "Authorization": self._basic_auth()},
        )
        if response.status not in (200, 201):
            raise send_error(response, self.name)
        return self._send_result(response.body)

    def _send_result(self, body: bytes) -> SendResult:
        """Read the Message resource of a 201 answer."""
        try:
            resource = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            resource = None
        if not isinstance(resource, dict) or not isinstance(resource.get("sid"), str):
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
            )
        segments = _positive_int(resource.get("num_segments"))
        return SendResult(resource["sid"], MessageStatus.SENT, segments)

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
        """Read a per-message status callback."""
        fields = _webhook_fields(request)
        sid = _first_present(fields, "MessageSid", "SmsSid")
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
        return [StatusUpdate(sid, status, error_code, reason)]

    def status_reply(self, updates: Sequence[StatusUpdate]) -> Reply:
        """The carrier ignores the body of a status callback's answer."""
        return Reply(200, b"", "text/plain; charset=utf-8")

    def _number(self, fields: Sequence[tuple[str, str]], name: str) -> str:
        """A From/To number in E.164; short codes pass through as digits."""
        value = first(fields, name)
        if not value:
            raise MalformedWebhook(f"{self.name} inbound is missing {name}")
        try:
            return to_e164(value, field=name)
        except InvalidPhoneNumber:
            # A US short code (e.g. a bank's 2FA sender) can text the number.
            if _SHORT_CODE.fullmatch(value):
                return value
            raise MalformedWebhook(
                f"{self.name} inbound {name} {value!r} is not a phone number"
            ) from None

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
