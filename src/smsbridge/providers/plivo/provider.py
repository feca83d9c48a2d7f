"""Plivo Messaging: send through the Message API, receive V3-signed form webhooks.

Voice-call alerts (the Call API and its callbacks) are in ``calls.py``.

Carrier facts and how sure they are: shared/providers/plivo.md.

Send::

    POST {base}/v1/Account/{auth_id}/Message/        (Basic auth: auth_id, auth_token)
    {"src": "+1514...", "dst": "+1438...", "text": "Hi", "type": "sms",
     "url": "<status url>", "method": "POST", "media_urls": [...]}
    -> 202 {"api_id": "...", "message": "message(s) queued", "message_uuid": ["..."]}
    -> 4xx/5xx {"api_id": "...", "error": "..."}

Inbound webhook (the Application's message_url, form POST by default)::

    From=14385550123&To=15145550100&Type=sms&Text=Hi&MessageUUID=...&Units=1&...
    MMS: Type=mms&Body=...&MediaCount=2&Media1=https://...&Media2=https://...

Status callback (the ``url`` given per message)::

    MessageUUID=...&Status=undelivered&ErrorCode=200&From=...&To=...&Units=1&...
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp
from pydantic import Field, SecretStr

from ...core.errors import MalformedWebhook, ProviderError, WebhookRejected
from ...core.messages import (
    InboundMessage,
    Media,
    MessageStatus,
    OutboundCall,
    OutboundMessage,
    StatusUpdate,
)
from ...core.phone import NumberFormat
from ..base import (
    AccountInfo,
    Capabilities,
    Provider,
    ProviderConfig,
    Reply,
    SendResult,
    WebhookRequest,
    first,
    header,
)
from ..http import CarrierResponse, basic_auth, carrier_request
from ..numbers import inbound_number
from .account import check_account, sms_numbers
from .calls import call_body, is_call_callback, parse_call_status, speak_xml
from .signature import signature_matches

SIGNATURE_HEADERS = ("X-Plivo-Signature-V3", "X-Plivo-Signature-Ma-V3")
NONCE_HEADER = "X-Plivo-Signature-V3-Nonce"

# Plivo expects XML from a message_url; an empty <Response/> stores the message and sends
# no auto-reply (plivo.md §3).
EMPTY_XML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'

# Status values of a message status callback (plivo.md §4), mapped onto ours.
STATUS_MAP: dict[str, MessageStatus] = {
    "queued": MessageStatus.SENDING,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
    "rejected": MessageStatus.FAILED,
}

# Plivo's delivery error codes ("Error Codes" in its messaging troubleshooting docs).
DELIVERY_ERROR_REASONS: dict[str, str] = {
    "10": "invalid message (rejected by the downstream carrier)",
    "20": "network error at the carrier (temporary)",
    "30": "spam detected (carrier filtering)",
    "40": "invalid source number (not SMS-enabled or not on this account)",
    "50": "invalid destination number",
    "60": "loop detected",
    "70": "destination permanently unavailable",
    "80": "destination temporarily unavailable",
    "90": "no route available to the destination",
    "100": "prohibited by the carrier",
    "110": "message too long",
    "200": "recipient has opted out (replied STOP)",
    "300": "Plivo failed to dispatch the message",
    "420": "message expired",
    "900": "insufficient credit on the Plivo account",
    "1000": "unknown error",
}

# "000" is Plivo's error code of a message that went through.
_NO_ERROR = frozenset({"", "0", "000"})
_COUNT = re.compile(r"[0-9]{1,3}")
_AUTH_ID = r"^[MS]A[A-Z0-9]{18}$"


class PlivoConfig(ProviderConfig):
    """Credentials of a Plivo account or subaccount."""

    auth_id: str = Field(
        pattern=_AUTH_ID,
        description="Auth ID from the Plivo console overview (MA... or SA..., 20 characters)",
    )
    auth_token: SecretStr = Field(
        description="Auth Token of the same account; it also signs Plivo's webhooks"
    )


class PlivoProvider(Provider[PlivoConfig]):
    """Plivo Messaging (SMS, and MMS by URL) and text-to-speech calls."""

    key: ClassVar[str] = "plivo"
    name: ClassVar[str] = "Plivo"
    Config = PlivoConfig
    capabilities = Capabilities(
        sms=True, mms=True, max_text_length=1600, max_media=10, max_media_bytes=5_000_000,
        inline_media=False,  # Plivo fetches media_urls itself; it takes no uploads here
        number_format=NumberFormat.E164, signature="plivo-v3-hmac-sha256",
        delivery_receipts=True, voice=True,
    )
    default_base_url: ClassVar[str] = "https://api.plivo.com"

    @property
    def _token(self) -> str:
        return self.config.auth_token.get_secret_value()

    def _basic_auth(self) -> str:
        return basic_auth(self.config.auth_id, self._token)

    # --- sending -------------------------------------------------------------------------

    def send_body(self, message: OutboundMessage) -> dict[str, Any]:
        """The JSON body of the Message API request for ``message``."""
        media_urls = self.media_urls(message)
        body: dict[str, Any] = {"src": message.from_number, "dst": message.to_number}
        if message.text or not message.media:
            body["text"] = message.text
        if message.media:
            body["type"] = "mms"
            body["media_urls"] = media_urls
        else:
            body["type"] = "sms"
        if message.status_callback_url:
            body["url"] = message.status_callback_url
            body["method"] = "POST"
        return body

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """Queue one message; Plivo answers 202 with its message_uuid list."""
        response = await self._post("Message", self.send_body(message), http)
        if response.status not in (200, 201, 202):
            raise _send_error(response)
        answer = response.json()
        uuids = answer.get("message_uuid") if isinstance(answer, dict) else None
        if isinstance(uuids, str):
            uuids = [uuids]
        if not (isinstance(uuids, list) and uuids and all(isinstance(u, str) and u
                                                          for u in uuids)):
            # Plivo may have queued it: a retry could text the recipient twice.
            raise ProviderError("Plivo accepted the message but sent no message_uuid",
                                retryable=False, code="no_uuid")
        return SendResult(uuids[0], MessageStatus.SENT, None, tuple(uuids[1:]))

    async def place_call(self, call: OutboundCall, http: aiohttp.ClientSession) -> SendResult:
        """Make a call whose answer_url serves the Speak XML; Plivo answers its request_uuid."""
        response = await self._post("Call", call_body(call), http)
        if response.status not in (200, 201, 202):
            raise _send_error(response)
        answer = response.json()
        request_uuid = answer.get("request_uuid") if isinstance(answer, dict) else None
        if not (isinstance(request_uuid, str) and request_uuid):
            # Plivo may be dialling already: a retry could ring the callee twice.
            raise ProviderError("Plivo accepted the call but sent no request_uuid",
                                retryable=False, code="no_uuid")
        return SendResult(request_uuid, MessageStatus.SENT)

    def call_answer(self, call: OutboundCall) -> Reply:
        """The Plivo XML that speaks the call's text, served at its answer URL."""
        return Reply(200, speak_xml(call), "application/xml")

    async def _post(self, resource: str, body: dict[str, Any], http: aiohttp.ClientSession
                    ) -> CarrierResponse:
        """POST ``body`` as JSON to the account's ``resource`` (Message, Call)."""
        url = f"{self.base_url}/v1/Account/{self.config.auth_id}/{resource}/"
        return await carrier_request(
            http, "POST", url, label="Plivo", timeout=self.config.timeout_seconds,
            secrets=[self._token], json=body,
            headers={"Accept": "application/json", "Authorization": self._basic_auth()},
        )

    # --- setup: the account's reads (account.py) ------------------------------------------

    async def check_credentials(self, http: aiohttp.ClientSession) -> AccountInfo:
        """Fetch the Account resource: the auth_id names the account, its name labels it."""
        return await check_account(self, http)

    async def list_numbers(self, http: aiohttp.ClientSession) -> list[str] | None:
        """The rented numbers with SMS enabled."""
        return await sms_numbers(self, http)

    # --- webhooks ------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Check ``X-Plivo-Signature-V3`` (or its main-account twin) against the Auth Token."""
        nonce = header(request, NONCE_HEADER)
        signatures = [value for name in SIGNATURE_HEADERS if (value := header(request, name))]
        if not signatures or not nonce:
            hint = ""
            if header(request, "X-Plivo-Signature-V2"):
                hint = (" (the request carries only the older X-Plivo-Signature-V2, which signs"
                        " neither body nor query; smsbridge requires V3)")
            raise WebhookRejected(
                f"missing X-Plivo-Signature-V3 or X-Plivo-Signature-V3-Nonce header{hint}"
            )
        params: list[tuple[str, str]] = []
        if request.method.upper() != "GET":
            if request.content_type in ("application/x-www-form-urlencoded", ""):
                params = request.form()
            elif request.body.strip():
                raise WebhookRejected(
                    f"Plivo signs form bodies; this one is {request.content_type!r}"
                )
        if not any(signature_matches(self._token, request.method, request.url, params, nonce,
                                     value) for value in signatures):
            raise WebhookRejected(
                "X-Plivo-Signature-V3 does not match this URL and body; is the gateway's public"
                " URL the one configured at Plivo, and auth_token this account's?"
            )

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read an inbound SMS/MMS webhook (form POST, or GET query)."""
        fields = _webhook_fields(request)
        uuid = first(fields, "MessageUUID")
        if not uuid:
            raise MalformedWebhook("Plivo inbound is missing MessageUUID")
        kind = (first(fields, "Type") or "sms").lower()
        if kind not in ("sms", "mms"):
            raise MalformedWebhook(f"Plivo inbound Type {kind!r} is not sms or mms")
        # SMS carries its text in Text, MMS in Body (plivo.md §3); read whichever came.
        text = (first(fields, "Text") if kind == "sms" else first(fields, "Body")) or (
            first(fields, "Body") or first(fields, "Text") or "")
        media = tuple(_media(fields)) if kind == "mms" else ()
        return [InboundMessage(uuid, _number(fields, "From"), _number(fields, "To"), text,
                               media)]

    def inbound_reply(self, messages: Sequence[InboundMessage]) -> Reply:
        """An empty Plivo XML document: stored, no auto-reply."""
        return Reply(200, EMPTY_XML, "application/xml")

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Read a message status callback, or the hangup callback of a call."""
        fields = _webhook_fields(request)
        if is_call_callback(fields):
            return [parse_call_status(fields)]
        uuid = first(fields, "MessageUUID")
        if not uuid:
            raise MalformedWebhook("Plivo status callback is missing MessageUUID")
        raw_status = first(fields, "Status")
        if not raw_status:
            raise MalformedWebhook("Plivo status callback is missing Status")
        status = STATUS_MAP.get(raw_status.lower())
        if status is None:
            raise MalformedWebhook(f"Plivo Status {raw_status!r} is not an outbound status")
        code = (first(fields, "ErrorCode") or "").strip()
        if code in _NO_ERROR:
            return [StatusUpdate(uuid, status)]
        reason = DELIVERY_ERROR_REASONS.get(code, f"Plivo error {code}")
        return [StatusUpdate(uuid, status, code, reason)]

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes in the Plivo console."""
        return (
            f"In the Plivo console, create (or edit) an Application under Messaging ->"
            f" Applications: Message URL {inbound_url}, method POST; then assign your numbers"
            f" to that application. Status callbacks need no setup: smsbridge passes"
            f" {status_url} with every message it sends. Voice calls need none either: each"
            f" call names its own answer and hangup URLs."
        )


def _send_error(response: CarrierResponse) -> ProviderError:
    """The ProviderError for a Message API answer that was not a success."""
    answer = response.json()
    error = answer.get("error") if isinstance(answer, dict) else None
    if error is None:
        # Not Plivo's JSON (a proxy's page): the HTTP status decides.
        return response.error(f"Plivo answered HTTP {response.status} without a JSON error")
    reason = error if isinstance(error, str) else json.dumps(error, sort_keys=True)
    return response.error(f"Plivo: {reason}")


def _webhook_fields(request: WebhookRequest) -> list[tuple[str, str]]:
    """Plivo's webhook parameters: the query of a GET, the form body of a POST."""
    if request.method.upper() == "GET":
        return list(request.query)
    return request.form()


def _number(fields: Sequence[tuple[str, str]], name: str) -> str:
    """A From/To number in E.164. Plivo writes them as digits without '+'."""
    # A short code (a bank's 2FA sender) can text a Plivo number.
    return inbound_number(first(fields, name), carrier="Plivo", field=name,
                          international_digits=True)


def _media(fields: Sequence[tuple[str, str]]) -> list[Media]:
    """Media1..MediaN for N = MediaCount (the suffixes start at 1)."""
    raw_count = first(fields, "MediaCount") or "0"
    if not _COUNT.fullmatch(raw_count):
        raise MalformedWebhook(f"Plivo MediaCount {raw_count!r} is not a small non-negative"
                               " integer")
    media: list[Media] = []
    for index in range(1, int(raw_count) + 1):
        url = first(fields, f"Media{index}")
        if not url:
            raise MalformedWebhook(f"Plivo inbound has MediaCount={raw_count} but no"
                                   f" Media{index}")
        # Plivo's webhook names no content type; the URL is fetched for it when needed.
        media.append(Media(content_type="application/octet-stream", url=url))
    return media
