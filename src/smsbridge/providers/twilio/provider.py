"""Twilio Programmable Messaging: send through the Messages API, receive signed form webhooks.

Carrier facts and how sure they are: shared/providers/twilio.md.

Send::

    POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json   (Basic auth: sid, token)
    To=+15145550100&From=+15005550006&Body=Hi&MediaUrl=...&MediaUrl=...&StatusCallback=...

Inbound webhook (the number's or Messaging Service's "A message comes in" URL)::

    POST <inbound url>   X-Twilio-Signature: <base64 HMAC-SHA1>
    MessageSid=SM...&From=%2B1617...&To=%2B1617...&Body=Hi&NumMedia=1&MediaUrl0=...&MediaContentType0=...

Status callback (the StatusCallback given per message)::

    POST <status url>   MessageSid=SM...&MessageStatus=undelivered&ErrorCode=30003&...
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from pydantic import Field, SecretStr

from ...core.errors import InvalidPhoneNumber, MalformedWebhook, ProviderError, WebhookRejected
from ...core.messages import InboundMessage, Media, MessageStatus, OutboundMessage, StatusUpdate
from ...core.phone import NumberFormat, to_e164
from ..base import (
    Capabilities,
    Provider,
    ProviderConfig,
    Reply,
    SendResult,
    WebhookRequest,
    first,
    header,
)
from ..http import carrier_request, redact
from .errors import delivery_error_reason, is_retryable, send_error
from .signature import body_matches, signature_matches

API_VERSION = "2010-04-01"

# An empty TwiML document: "store the message, send no auto-reply" (twilio.md §3).
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


class TwilioConfig(ProviderConfig):
    """Credentials and options of a Twilio account."""

    account_sid: str = Field(
        pattern=r"^AC[0-9a-fA-F]{32}$", description="Account SID (AC + 32 hex) from the Console"
    )
    auth_token: SecretStr = Field(description="Auth Token of the account; signs webhooks too")
    messaging_service_sid: str | None = Field(
        None, pattern=r"^MG[0-9a-fA-F]{32}$",
        description="send through this Messaging Service (MG...) instead of a From number",
    )


class TwilioProvider(Provider[TwilioConfig]):
    """Twilio Programmable Messaging (SMS and MMS)."""

    key: ClassVar[str] = "twilio"
    name: ClassVar[str] = "Twilio"
    Config = TwilioConfig
    capabilities = Capabilities(
        sms=True, mms=True, max_text_length=1600, max_media=10, max_media_bytes=5_000_000,
        inline_media=False,  # Twilio fetches media from a public URL; it takes no uploads
        number_format=NumberFormat.E164, signature="twilio-hmac-sha1", delivery_receipts=True,
    )
    default_base_url: ClassVar[str] = "https://api.twilio.com"

    @property
    def _token(self) -> str:
        return self.config.auth_token.get_secret_value()

    def _basic_auth(self) -> str:
        """HTTP Basic credentials: Account SID and Auth Token (twilio.md §1)."""
        pair = f"{self.config.account_sid}:{self._token}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    # --- sending -------------------------------------------------------------------------

    def send_form(self, message: OutboundMessage) -> list[tuple[str, str]]:
        """The form fields of the Messages API request for ``message``."""
        if any(m.url is None for m in message.media):
            raise ProviderError(
                "Twilio fetches media by URL only; inline (base64) media cannot be sent",
                retryable=False, code="inline_media",
            )
        form: list[tuple[str, str]] = [("To", message.to_number)]
        if self.config.messaging_service_sid:
            form.append(("MessagingServiceSid", self.config.messaging_service_sid))
        else:
            form.append(("From", message.from_number))
        if message.text or not message.media:
            form.append(("Body", message.text))
        # Several media: repeat the key, not MediaUrl[] (twilio.md §2).
        form.extend(("MediaUrl", m.url) for m in message.media if m.url)
        if message.status_callback_url:
            form.append(("StatusCallback", message.status_callback_url))
        return form

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """Create a Message resource; Twilio answers 201 with its sid."""
        form = self.send_form(message)
        url = f"{self.base_url}/{API_VERSION}/Accounts/{self.config.account_sid}/Messages.json"
        response = await carrier_request(
            http, "POST", url, label="Twilio", timeout=self.config.timeout_seconds,
            secrets=[self._token], data=form,
            headers={"Accept": "application/json", "Authorization": self._basic_auth()},
        )
        if response.status not in (200, 201):
            raise send_error(response)
        return self._send_result(response.body)

    def _send_result(self, body: bytes) -> SendResult:
        """Read the Message resource of a 201 answer."""
        try:
            resource = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            resource = None
        if not isinstance(resource, dict) or not isinstance(resource.get("sid"), str):
            # Twilio may have queued the message; a retry could text the recipient twice.
            raise ProviderError(
                "Twilio accepted the request but its answer carried no message sid",
                retryable=False, code="no_sid",
            )
        error_code = resource.get("error_code")
        if error_code not in (None, "", 0):
            # Success is a 201 *and* a null error_code (twilio.md §2).
            reason = resource.get("error_message") or f"Twilio error {error_code}"
            raise ProviderError(
                redact(str(reason), [self._token]),
                retryable=is_retryable(_positive_int(error_code), 400),
                code=str(error_code),
            )
        segments = _positive_int(resource.get("num_segments"))
        return SendResult(resource["sid"], MessageStatus.SENT, segments)

    # --- webhooks ------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Check ``X-Twilio-Signature`` over the public URL and form params (twilio.md §5)."""
        signature = header(request, "X-Twilio-Signature")
        if not signature:
            raise WebhookRejected("missing X-Twilio-Signature header")
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
                        "Twilio signs a non-form body only with a bodySHA256 query parameter"
                    )
        if not signature_matches(self._token, request.url, params, signature):
            hint = ""
            if header(request, "X-Twilio-Webhooks-Signature-Settings"):
                hint = (" (signed with a Webhooks Rule shared key, which smsbridge does not"
                        " check; remove the rule so Twilio signs with the Auth Token)")
            raise WebhookRejected(
                "X-Twilio-Signature does not match this URL and body; is the gateway's public"
                f" URL the one configured at Twilio?{hint}"
            )
        if not body_ok:
            raise WebhookRejected("body does not match its bodySHA256 query parameter")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read an inbound SMS/MMS webhook (form POST, or GET query)."""
        fields = _webhook_fields(request)
        sid = _first_present(fields, "MessageSid", "SmsMessageSid", "SmsSid")
        if sid is None:
            raise MalformedWebhook("Twilio inbound is missing MessageSid")
        from_number = _number(fields, "From")
        to_number = _number(fields, "To")
        media = tuple(_media(fields))
        return [InboundMessage(sid, from_number, to_number, first(fields, "Body") or "", media)]

    def inbound_reply(self, messages: Sequence[InboundMessage]) -> Reply:
        """Empty TwiML: Twilio logs a warning for a reply that is not TwiML."""
        return Reply(200, EMPTY_TWIML, "application/xml")

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Read a per-message status callback."""
        fields = _webhook_fields(request)
        sid = _first_present(fields, "MessageSid", "SmsSid")
        if sid is None:
            raise MalformedWebhook("Twilio status callback is missing MessageSid")
        raw_status = _first_present(fields, "MessageStatus", "SmsStatus")
        if raw_status is None:
            raise MalformedWebhook("Twilio status callback is missing MessageStatus")
        status = STATUS_MAP.get(raw_status.lower())
        if status is None:
            raise MalformedWebhook(f"Twilio MessageStatus {raw_status!r} is not an outbound status")
        error_code = first(fields, "ErrorCode") or None
        if error_code == "0":
            error_code = None
        reason = delivery_error_reason(error_code, first(fields, "ErrorMessage") or None)
        return [StatusUpdate(sid, status, error_code, reason)]

    def status_reply(self, updates: Sequence[StatusUpdate]) -> Reply:
        """Twilio ignores the body of a status callback's answer."""
        return Reply(200, b"", "text/plain; charset=utf-8")

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes in the Twilio Console."""
        return (
            f'Set the number\'s (or Messaging Service\'s) "A message comes in" webhook to'
            f" {inbound_url} (HTTP POST). Status callbacks need no setup: smsbridge passes"
            f" {status_url} with every message it sends."
        )


def _webhook_fields(request: WebhookRequest) -> list[tuple[str, str]]:
    """Twilio's webhook parameters: the query of a GET, the form body of a POST."""
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


def _number(fields: Sequence[tuple[str, str]], name: str) -> str:
    """A From/To number in E.164; short codes pass through as digits."""
    value = first(fields, name)
    if not value:
        raise MalformedWebhook(f"Twilio inbound is missing {name}")
    try:
        return to_e164(value, field=name)
    except InvalidPhoneNumber:
        # A US short code (e.g. a bank's 2FA sender) can text a Twilio number.
        if _SHORT_CODE.fullmatch(value):
            return value
        raise MalformedWebhook(f"Twilio inbound {name} {value!r} is not a phone number") from None


def _media(fields: Sequence[tuple[str, str]]) -> list[Media]:
    """MediaUrl{N} / MediaContentType{N} for N < NumMedia."""
    raw_count = first(fields, "NumMedia")
    if raw_count is None or raw_count == "":
        raw_count = "0"
    if not _COUNT.fullmatch(raw_count):
        raise MalformedWebhook(f"Twilio NumMedia {raw_count!r} is not a non-negative integer")
    if len(raw_count) > 6:
        raise MalformedWebhook(f"Twilio NumMedia {raw_count!r} is out of range")
    media: list[Media] = []
    for index in range(int(raw_count)):
        url = first(fields, f"MediaUrl{index}")
        if not url:
            raise MalformedWebhook(
                f"Twilio inbound has NumMedia={raw_count} but no MediaUrl{index}"
            )
        content_type = first(fields, f"MediaContentType{index}") or "application/octet-stream"
        media.append(Media(content_type=content_type, url=url))
    return media


def _positive_int(value: object) -> int | None:
    """A count from Twilio's resource (sent as a string), when it is above zero."""
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None
