"""Flowroute: SMS/MMS through the Messaging API (JSON:API), inbound and receipts by JSON POST.

Carrier facts and how sure they are: shared/providers/flowroute.md, and Flowroute's own
OpenAPI file and SDK (flowroute/flowroute-sdk-v3-python) for the send answer, the error
body, the per-message ``dlr_callback`` and the delivery-receipt fields.

Send::

    POST {base}/v2.1/messages   (Basic auth: access key, secret key)
    Content-Type: application/vnd.api+json
    {"data": {"type": "message", "attributes": {"to": "15145550123", "from": "15145550100",
              "body": "Hi", "is_mms": "true", "media_urls": [...], "dlr_callback": "..."}}}
    -> 202 {"data": {"type": "message", "id": "mdr2-...", "links": {...}}}
    -> 4xx {"errors": [{"id": "...", "status": 422, "title": "...", "detail": "..."}]}

Inbound (the account's or number's SMS / MMS callback URL)::

    POST <inbound url>  {"data": {"type": "message", "id": "mdr2-...", "attributes": {
                         "from": "15145550123", "to": "15145550100", "body": "Hi", ...}},
                         "included": [{"type": "media", "attributes": {"url": ..., ...}}]}

Delivery receipt (the message's ``dlr_callback``)::

    POST <status url>   {"data": {"type": "delivery_receipt", "id": "mdr2-...", "attributes": {
                         "status": "delivered", "status_code": "1000", "level": 2, ...}}}

Flowroute signs none of these: the secret token in the webhook URL is what guards them.
"""

from __future__ import annotations

import mimetypes
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, SecretStr

from ...core.errors import MalformedWebhook, ProviderError
from ...core.messages import InboundMessage, Media, MessageStatus, OutboundMessage, StatusUpdate
from ...core.phone import NumberFormat, format_number
from ..base import (
    UNSIGNED,
    AccountInfo,
    Capabilities,
    Provider,
    ProviderConfig,
    SendResult,
    WebhookRequest,
    e164_numbers,
    linked_pages,
    read_account,
)
from ..http import CarrierResponse, basic_auth, carrier_request
from ..numbers import inbound_number

API_PATH = "/v2.1/messages"
JSON_API = "application/vnd.api+json"
# The account's numbers (GET v2/numbers, limit/offset, ``links.next``; Flowroute's SDK docs).
# Unconfirmed: the largest ``limit`` the list takes.
NUMBERS_PAGE_SIZE = 200
NUMBERS_MAX_PAGES = 500  # a loop guard: 100 000 numbers
# "Flowroute's maximum MMS message size is 750kB including text" (Send an MMS).
MMS_MAX_BYTES = 750_000

# Delivery-receipt ``status`` words, mapped onto ours. "smsc submit" (level 1), "message
# buffered" and "delivered" appear in Flowroute's SDK examples; the failure words are the
# usual SMPP outcomes and are not confirmed by Flowroute's pages.
STATUS_MAP: dict[str, MessageStatus] = {
    "smsc submit": MessageStatus.SENT,
    "smsc intermediate notifications": MessageStatus.SENT,
    "message buffered": MessageStatus.SENT,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.FAILED,
    "undeliverable": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
    "expired": MessageStatus.FAILED,
    "rejected": MessageStatus.FAILED,
    "smsc reject": MessageStatus.FAILED,
    "deleted": MessageStatus.FAILED,
}


class FlowrouteConfig(ProviderConfig):
    """Credentials of a Flowroute account."""

    access_key: str = Field(
        min_length=1, description="API Access Key (Manager > Preferences > API Control)"
    )
    secret_key: SecretStr = Field(description="API Secret Key shown beside the Access Key")


class FlowrouteProvider(Provider[FlowrouteConfig]):
    """Flowroute long-code and toll-free numbers (SMS and MMS by URL)."""

    key: ClassVar[str] = "flowroute"
    name: ClassVar[str] = "Flowroute"
    Config = FlowrouteConfig
    capabilities = Capabilities(
        sms=True,
        mms=True,
        # Unconfirmed: Flowroute splits long texts itself ("Message Length & Concatenation");
        # 1600 is the common concatenation ceiling, not a figure from Flowroute.
        max_text_length=1600,
        # No count is documented, only the 750 kB total; ten keeps requests sane.
        max_media=10,
        max_media_bytes=MMS_MAX_BYTES,
        inline_media=False,  # media_urls only: Flowroute fetches them
        number_format=NumberFormat.DIGITS,  # "E.164 format e.g. 12065551234"
        signature=UNSIGNED,  # Flowroute signs neither inbound messages nor receipts
        delivery_receipts=True,
    )
    default_base_url: ClassVar[str] = "https://api.flowroute.com"

    @property
    def _secret(self) -> str:
        return self.config.secret_key.get_secret_value()

    # ---------------------------------------------------------------- sending

    def send_body(self, message: OutboundMessage) -> dict[str, Any]:
        """The JSON:API document that sends ``message``."""
        media_urls = self.media_urls(message)
        attributes: dict[str, Any] = {
            "to": _wire_number(message.to_number),
            "from": _wire_number(message.from_number),
        }
        if message.text or not message.media:
            attributes["body"] = message.text
        if message.media:
            # A string, as Flowroute's SDK and working integrations send it.
            attributes["is_mms"] = "true"
            attributes["media_urls"] = media_urls
        if message.status_callback_url:
            attributes["dlr_callback"] = message.status_callback_url
        return {"data": {"type": "message", "attributes": attributes}}

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """POST one message; Flowroute answers 202 with its ``mdr2-`` id."""
        response = await carrier_request(
            http, "POST", self.base_url + API_PATH, label="Flowroute",
            timeout=self.config.timeout_seconds, secrets=[self._secret],
            json=self.send_body(message),
            headers={"Authorization": basic_auth(self.config.access_key, self._secret),
                     "Accept": JSON_API, "Content-Type": JSON_API},
        )
        if response.status not in (200, 201, 202):
            raise _send_error(response)
        answer = response.json()
        data = answer.get("data") if isinstance(answer, dict) else None
        message_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(message_id, str) or not message_id:
            # Flowroute may have taken it: a retry could text the recipient twice.
            raise ProviderError("Flowroute accepted the message but its answer carried no id",
                                retryable=False, code="no_id")
        return SendResult(message_id, MessageStatus.SENT)

    # ---------------------------------------------------------------- setup

    async def check_credentials(self, http: aiohttp.ClientSession) -> AccountInfo:
        """Read one number of the account (v2/numbers): the keys must open the account."""
        await self._numbers_page(http, f"{self.base_url}/v2/numbers?limit=1&offset=0")
        return AccountInfo(self.config.access_key)

    async def list_numbers(self, http: aiohttp.ClientSession) -> list[str] | None:
        """Every number on the account, following ``links.next``.

        The list says nothing of SMS (its attributes are rate center, state, number type,
        CNAM lookups), so every number is offered.
        """
        found: list[object] = []
        async for page in linked_pages(
                f"{self.base_url}/v2/numbers?limit={NUMBERS_PAGE_SIZE}&offset=0",
                lambda url: self._numbers_page(http, url), _next_numbers_link,
                max_pages=NUMBERS_MAX_PAGES):
            rows = page.get("data") if isinstance(page, dict) else None
            for row in rows if isinstance(rows, list) else []:
                attributes = row.get("attributes") if isinstance(row, dict) else None
                found.append(attributes.get("value") if isinstance(attributes, dict) else None)
        return e164_numbers(found, international_digits=True)

    async def _numbers_page(self, http: aiohttp.ClientSession, url: str) -> Any:
        return await read_account(
            http, url, carrier=self.name, timeout=self.config.timeout_seconds,
            secrets=[self._secret],
            headers={"Authorization": basic_auth(self.config.access_key, self._secret),
                     "Accept": JSON_API},
        )

    # ---------------------------------------------------------------- webhooks

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read an inbound SMS or MMS (JSON:API ``message`` with ``included`` media)."""
        document = request.json()
        data = _data(document, "message")
        attributes = _attributes(data)
        direction = attributes.get("direction")
        if direction not in (None, "inbound"):
            raise MalformedWebhook(f"Flowroute inbound has direction {direction!r}")
        body = attributes.get("body")
        if body is not None and not isinstance(body, str):
            raise MalformedWebhook("Flowroute 'data.attributes.body' must be a string")
        return [InboundMessage(
            carrier_message_id=_string(data, "id", "data.id"),
            from_number=_inbound_number(attributes, "from"),
            to_number=_inbound_number(attributes, "to"),
            text=body or "",
            media=tuple(_media(document)),
        )]

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Read a delivery receipt (JSON:API ``delivery_receipt``)."""
        data = _data(request.json(), "delivery_receipt")
        attributes = _attributes(data)
        raw_status = attributes.get("status")
        if not isinstance(raw_status, str) or not raw_status.strip():
            raise MalformedWebhook("Flowroute receipt is missing 'data.attributes.status'")
        status = STATUS_MAP.get(raw_status.strip().lower())
        if status is None:
            raise MalformedWebhook(f"Flowroute receipt status {raw_status!r} is not one we know")
        code = attributes.get("status_code")
        description = attributes.get("status_code_description")
        error_code = error_reason = None
        if status is MessageStatus.FAILED:
            error_code = None if code in (None, "") else str(code)
            error_reason = (description if isinstance(description, str) and description
                            else f"Flowroute receipt: {raw_status}")
        return [StatusUpdate(_string(data, "id", "data.id"), status, error_code, error_reason)]

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes in Flowroute Manager."""
        return (
            f"In Flowroute Manager > Preferences > API Control > Messaging, set both the SMS"
            f" Callback and the MMS Callback to {inbound_url} (or set them per number)."
            f" Delivery receipts need no setup: smsbridge passes {status_url} as each"
            " message's dlr_callback."
        )


# -------------------------------------------------------------------- helpers


def _next_numbers_link(page: Any) -> object:
    """``links.next`` of a v2/numbers page; an empty page ends the list whatever it links."""
    if not isinstance(page, dict) or not page.get("data"):
        return None
    links = page.get("links")
    return links.get("next") if isinstance(links, dict) else None


def _wire_number(e164: str) -> str:
    """A number as Flowroute's examples write it: country code and digits, no plus."""
    return format_number(e164, NumberFormat.DIGITS)


def _send_error(response: CarrierResponse) -> ProviderError:
    """The ProviderError for a refusal: JSON:API ``errors``, the HTTP status decides."""
    answer = response.json()
    errors = answer.get("errors") if isinstance(answer, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    if not isinstance(first, dict):
        return response.error()  # not Flowroute's JSON (a proxy's page): status decides
    detail = first.get("detail") or first.get("title")
    reason = f"Flowroute: {detail}" if detail else None
    # 401/403/404/422 (bad credentials, a number not on the account, an invalid or
    # unreachable recipient) are final; 429 and 5xx back off (shared rule).
    return response.error(reason)


def _data(document: Any, kind: str) -> dict[str, Any]:
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise MalformedWebhook("Flowroute webhook has no 'data' object")
    if data.get("type") != kind:
        raise MalformedWebhook(
            f"Flowroute webhook 'data.type' is {data.get('type')!r}, expected {kind!r}")
    return data


def _attributes(data: dict[str, Any]) -> dict[str, Any]:
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        raise MalformedWebhook("Flowroute webhook has no 'data.attributes' object")
    return attributes


def _string(container: dict[str, Any], key: str, path: str) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedWebhook(f"Flowroute webhook is missing '{path}'")
    return value.strip()


def _inbound_number(attributes: dict[str, Any], key: str) -> str:
    """``from`` / ``to`` in E.164; Flowroute sends 11 digits, sometimes with a plus."""
    return inbound_number(attributes.get(key), carrier="Flowroute",
                          field=f"data.attributes.{key}")


def _media(document: dict[str, Any]) -> list[Media]:
    """The ``media`` resources of the top-level ``included`` array."""
    included = document.get("included")
    if included is None:
        return []
    if not isinstance(included, list):
        raise MalformedWebhook("Flowroute webhook 'included' must be an array")
    media: list[Media] = []
    for item in included:
        if not isinstance(item, dict) or item.get("type") != "media":
            continue
        attributes = item.get("attributes")
        if not isinstance(attributes, dict):
            raise MalformedWebhook("each Flowroute media item needs 'attributes'")
        url = attributes.get("url")
        if not isinstance(url, str) or not url:
            raise MalformedWebhook("each Flowroute media item needs 'attributes.url'")
        ctype = attributes.get("mime_type")
        if not isinstance(ctype, str) or not ctype:
            ctype = mimetypes.guess_type(urlsplit(url).path)[0] or "application/octet-stream"
        size = attributes.get("file_size")
        media.append(Media(content_type=ctype, url=url,
                           size=size if isinstance(size, int) and size >= 0 else None))
    return media
