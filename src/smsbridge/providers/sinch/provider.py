"""Sinch: SMS and US MMS through the SMS REST API ("XMS"), inbound and receipts by JSON POST.

Carrier facts and how sure they are: shared/providers/others.md (Sinch), and Sinch's API
reference (developers.sinch.com/docs/sms/api-reference) for the regional hosts, the body
limit, the callback retry rule and the delivery-report statuses.

Send::

    POST https://{region}.sms.api.sinch.com/xms/v1/{service_plan_id}/batches
    Authorization: Bearer <API token>
    {"from": "+15145550100", "to": ["+14385550123"], "body": "Hi",
     "delivery_report": "per_recipient", "callback_url": "..."}
    MMS: {"type": "mt_media", "body": {"url": "https://...", "message": "caption"}, ...}
    -> 201 {"id": "01FC66621XXXXX119Z8PMV1QPQ", "to": [...], "canceled": false, ...}
    -> 4xx {"code": "syntax_invalid_parameter_format", "text": "..."}

Inbound (the service plan's callback URL)::

    POST <inbound url>  {"type": "mo_text", "id": "...", "from": "+1438...", "to": "1514...",
                         "body": "Hi", "received_at": "...", "operator_id": "..."}

Delivery report (the batch's ``callback_url``, one per recipient)::

    POST <status url>   {"type": "recipient_delivery_report_sms", "batch_id": "...",
                         "recipient": "...", "status": "Delivered", "code": 0, "at": "..."}

Sinch signs callbacks only where HMAC authentication was switched on for the service plan
(through Sinch's account managers): then ``webhook_secret`` holds the callback secret and
every callback must carry a valid ``x-sinch-webhook-signature`` (signature.py). Without it
the secret token in the webhook URL is what guards them.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, SecretStr

from ...core.errors import MalformedWebhook, ProviderError, WebhookRejected
from ...core.messages import InboundMessage, Media, MessageStatus, OutboundMessage, StatusUpdate
from ...core.phone import NumberFormat
from ..base import (
    AccountInfo,
    Capabilities,
    Provider,
    ProviderConfig,
    SendResult,
    WebhookRequest,
    header,
    read_account,
)
from ..http import CarrierResponse, carrier_request
from ..numbers import inbound_number
from .signature import (
    ALGORITHM_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_matches,
)

Region = Literal["us", "eu", "au", "br", "ca"]

# Delivery-report statuses (Sinch's "Delivery report statuses" table), mapped onto ours.
STATUS_MAP: dict[str, MessageStatus] = {
    "queued": MessageStatus.SENT,
    "dispatched": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "aborted": MessageStatus.FAILED,
    "cancelled": MessageStatus.FAILED,
    "deleted": MessageStatus.FAILED,
    "expired": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
    "rejected": MessageStatus.FAILED,
    # "Unknown" is final at Sinch but says nothing: the message stays as it was (sent).
    "unknown": MessageStatus.SENT,
}
RECEIPT_TYPES = frozenset({"recipient_delivery_report_sms", "recipient_delivery_report_mms",
                           "delivery_report_sms", "delivery_report_mms"})
INBOUND_TYPES = frozenset({"mo_text", "mo_binary", "mo_media"})


class SinchConfig(ProviderConfig):
    """Credentials of a Sinch SMS service plan."""

    service_plan_id: str = Field(
        min_length=1, description="Service plan ID (Dashboard > SMS > APIs > REST configuration)"
    )
    api_token: SecretStr = Field(description="API token of that service plan (Bearer token)")
    region: Region = Field(
        default="us", description="Region of the service plan: picks the API host"
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Callback HMAC secret, when Sinch enabled HMAC callback authentication"
                    " on the service plan; then unsigned callbacks are refused",
    )


class SinchProvider(Provider[SinchConfig]):
    """Sinch numbers through the SMS REST API (SMS everywhere, MMS by URL in the US)."""

    key: ClassVar[str] = "sinch"
    name: ClassVar[str] = "Sinch"
    Config = SinchConfig
    capabilities = Capabilities(
        sms=True,
        mms=True,
        max_text_length=2000,  # "body: string [0 .. 2000] characters"; Sinch splits it
        # An mt_media body carries one "url".
        max_media=1,
        inline_media=False,
        number_format=NumberFormat.E164,  # "to: Array of strings <E.164>"
        # Checked when webhook_secret is set (HMAC is opt-in per service plan at Sinch).
        signature="sinch-hmac-sha256",
        delivery_receipts=True,
    )
    default_base_url: ClassVar[str] = ""

    @property
    def base_url(self) -> str:
        """The configured override, else the service plan's regional host."""
        return (self.config.base_url or f"https://{self.config.region}.sms.api.sinch.com"
                ).rstrip("/")

    @property
    def _token(self) -> str:
        return self.config.api_token.get_secret_value()

    def batches_url(self) -> str:
        """Where a batch is POSTed."""
        return f"{self.base_url}/xms/v1/{self.config.service_plan_id}/batches"

    # ---------------------------------------------------------------- sending

    def send_body(self, message: OutboundMessage) -> dict[str, Any]:
        """The batch that sends ``message`` to its one recipient."""
        media_urls = self.media_urls(message)
        batch: dict[str, Any] = {"from": message.from_number, "to": [message.to_number]}
        if media_urls:
            if len(media_urls) > self.capabilities.max_media:
                raise ProviderError("Sinch sends one media URL per MMS", retryable=False,
                                    code="too_many_media")
            media_body: dict[str, Any] = {"url": media_urls[0]}
            if message.text:
                media_body["message"] = message.text
            batch["type"] = "mt_media"
            batch["body"] = media_body
        else:
            batch["body"] = message.text
        if message.status_callback_url:
            batch["delivery_report"] = "per_recipient"
            batch["callback_url"] = message.status_callback_url
        return batch

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """POST one batch; Sinch answers 201 with the batch id."""
        body = self.send_body(message)
        response = await carrier_request(
            http, "POST", self.batches_url(), label="Sinch",
            timeout=self.config.timeout_seconds, secrets=[self._token], json=body,
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
        )
        if response.status not in (200, 201):
            raise _send_error(response)
        answer = response.json()
        batch_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(batch_id, str) or not batch_id:
            # Sinch may have queued it: a retry could text the recipient twice.
            raise ProviderError("Sinch accepted the batch but its answer carried no id",
                                retryable=False, code="no_id")
        return SendResult(batch_id, MessageStatus.SENT)

    # ---------------------------------------------------------------- setup

    async def check_credentials(self, http: aiohttp.ClientSession) -> AccountInfo:
        """List one batch of the service plan: the cheapest read the token must open.

        ``GET {batches_url}?page_size=1`` answers 200 with ``{"count", "page", "batches",
        "page_size"}``; 401 refuses the token, 403 a token of another service plan.
        """
        await read_account(
            http, self.batches_url(), carrier=self.name, timeout=self.config.timeout_seconds,
            secrets=[self._token], refusals={401: "invalid_auth", 403: "invalid_auth"},
            params={"page_size": "1"},
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
        )
        return AccountInfo(self.config.service_plan_id)

    # list_numbers keeps the default (None): a service plan's token lists no numbers; they
    # are in Sinch's Numbers API, which takes a project id and another key.

    # ---------------------------------------------------------------- webhooks

    def verify(self, request: WebhookRequest) -> None:
        """With ``webhook_secret`` set, require Sinch's HMAC signature; else let it through."""
        if self.config.webhook_secret is None:
            return  # the plan's callbacks are not signed: the URL token alone guards them
        values = {name: header(request, name) for name in (
            SIGNATURE_HEADER, NONCE_HEADER, TIMESTAMP_HEADER, ALGORITHM_HEADER)}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise WebhookRejected(f"Sinch callback lacks {', '.join(missing)}")
        if not signature_matches(self.config.webhook_secret.get_secret_value(), request.body,
                                 values[NONCE_HEADER] or "", values[TIMESTAMP_HEADER] or "",
                                 values[ALGORITHM_HEADER] or "", values[SIGNATURE_HEADER] or ""):
            raise WebhookRejected("Sinch callback signature does not match the body")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read an inbound message (``mo_text``, ``mo_binary`` or ``mo_media``)."""
        document = request.json()
        if not isinstance(document, dict):
            raise MalformedWebhook("Sinch inbound is not a JSON object")
        kind = document.get("type")
        if kind not in INBOUND_TYPES:
            raise MalformedWebhook(f"Sinch inbound 'type' is {kind!r}, expected one of"
                                   f" {', '.join(sorted(INBOUND_TYPES))}")
        text, media = _inbound_content(kind, document.get("body"), document.get("udh"))
        return [InboundMessage(
            carrier_message_id=_string(document, "id"),
            from_number=_inbound_number(document, "from"),
            to_number=_inbound_number(document, "to"),
            text=text,
            media=tuple(media),
        )]

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Read a delivery report (per recipient, or a batch summary)."""
        document = request.json()
        if not isinstance(document, dict):
            raise MalformedWebhook("Sinch delivery report is not a JSON object")
        kind = document.get("type")
        if kind not in RECEIPT_TYPES:
            raise MalformedWebhook(f"Sinch delivery report 'type' is {kind!r}")
        batch_id = _string(document, "batch_id")
        if kind.startswith("recipient_"):
            return [_update(batch_id, document.get("status"), document.get("code"))]
        statuses = document.get("statuses")
        if not isinstance(statuses, list) or not statuses:
            raise MalformedWebhook("Sinch batch delivery report has no 'statuses'")
        # One recipient per batch: the summary's entries are that recipient's states.
        updates = []
        for entry in statuses:
            if not isinstance(entry, dict):
                raise MalformedWebhook("each Sinch 'statuses' entry must be an object")
            updates.append(_update(batch_id, entry.get("status"), entry.get("code")))
        return updates

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes in the Sinch dashboard."""
        return (
            f"In the Sinch dashboard, SMS > APIs > your service plan > Callback URLs, add"
            f" {inbound_url} (inbound messages go to the service plan's callback URL)."
            f" Delivery reports need no setup: smsbridge passes {status_url} as each"
            " batch's callback_url."
        )


# -------------------------------------------------------------------- helpers


def _send_error(response: CarrierResponse) -> ProviderError:
    """The ProviderError for a refusal: Sinch's ``code`` and ``text``, the status decides."""
    answer = response.json()
    if not isinstance(answer, dict) or not (answer.get("text") or answer.get("code")):
        return response.error()  # not Sinch's JSON (a proxy's page): status decides
    code = answer.get("code")
    text = answer.get("text") or code
    # 400 (syntax, invalid number), 401 (token), 403 (service plan, sender) are final;
    # 429 and 5xx back off (shared rule).
    return response.error(f"Sinch: {text}",
                          code=str(code) if isinstance(code, str) and code else None)


def _update(batch_id: str, raw_status: Any, code: Any) -> StatusUpdate:
    if not isinstance(raw_status, str) or not raw_status.strip():
        raise MalformedWebhook("Sinch delivery report is missing 'status'")
    status = STATUS_MAP.get(raw_status.strip().lower())
    if status is None:
        raise MalformedWebhook(f"Sinch delivery report status {raw_status!r} is not one we know")
    error_code = error_reason = None
    if status is MessageStatus.FAILED:
        error_code = None if code in (None, "") else str(code)
        error_reason = f"Sinch delivery report: {raw_status.strip()}"
    return StatusUpdate(batch_id, status, error_code, error_reason)


def _string(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedWebhook(f"Sinch webhook is missing '{key}'")
    return value.strip()


def _inbound_number(document: dict[str, Any], key: str) -> str:
    """``from`` / ``to`` in E.164; Sinch may write them without the plus."""
    return inbound_number(document.get(key), carrier="Sinch", field=key)


def _inbound_content(kind: str, body: Any, udh: Any) -> tuple[str, list[Media]]:
    """The text and media of an inbound body of this ``type``."""
    if kind == "mo_text":
        if not isinstance(body, str):
            raise MalformedWebhook("Sinch mo_text 'body' must be a string")
        return body, []
    if kind == "mo_binary":
        if not isinstance(body, str):
            raise MalformedWebhook("Sinch mo_binary 'body' must be base64 text")
        if udh:
            # A concatenation or port header: the payload is not a text we can show.
            raise MalformedWebhook("Sinch mo_binary with a 'udh' is not a text message")
        try:
            return base64.b64decode(body, validate=True).decode("utf-8"), []
        except (binascii.Error, UnicodeDecodeError):
            raise MalformedWebhook("Sinch mo_binary 'body' is not base64 UTF-8 text") from None
    if not isinstance(body, dict):
        raise MalformedWebhook("Sinch mo_media 'body' must be an object")
    message = body.get("message")
    if message is not None and not isinstance(message, str):
        raise MalformedWebhook("Sinch mo_media 'body.message' must be a string")
    return message or "", _media(body)


def _media(body: dict[str, Any]) -> list[Media]:
    """``body.media`` items (failed uploads, ``code`` != 0, left out), or ``body.url``."""
    items = body.get("media")
    if items is None:
        url = body.get("url")
        items = [{"url": url}] if url is not None else []
    if not isinstance(items, list):
        raise MalformedWebhook("Sinch mo_media 'body.media' must be an array")
    media: list[Media] = []
    for item in items:
        if not isinstance(item, dict):
            raise MalformedWebhook("each Sinch media item must be an object")
        if item.get("code") not in (None, 0):
            continue  # Sinch could not store this attachment; there is nothing to fetch
        url = item.get("url")
        if not isinstance(url, str) or not url:
            raise MalformedWebhook("each Sinch media item needs a 'url'")
        ctype = item.get("contentType") or item.get("content_type")
        if not isinstance(ctype, str) or not ctype:
            ctype = mimetypes.guess_type(urlsplit(url).path)[0] or "application/octet-stream"
        media.append(Media(content_type=ctype, url=url))
    return media
