"""Bandwidth Messaging API v2: JSON send with Basic auth, JSON event arrays as webhooks.

Carrier facts and how sure they are: shared/providers/bandwidth.md, and Bandwidth's own
pages ("Webhooks", "Message Delivered/Failed Event", "HTTP Errors", "Applications").

Send::

    POST {base}/api/v2/users/{account_id}/messages   (Basic auth: API username, password)
    {"applicationId": "...", "to": ["+15145550123"], "from": "+15145550100", "text": "Hi",
     "media": ["https://..."], "tag": "<our message id>"}
    -> 202 {"id": "1476...", "owner": "+15145550100", "segmentCount": 1, ...}
    -> 4xx {"type": "request-validation", "description": "..."}

Webhooks: every event is POSTed as a JSON array to the messaging Application's callback
URL. With "Use multiple callback URLs" ticked, ``message-received`` goes to its Inbound
Callback URL and ``message-sending`` / ``message-delivered`` / ``message-failed`` to its
Status (outbound) Callback URL; without it, all of them go to the one URL::

    POST <url>   Authorization: Basic <callback user:password>
    [{"type": "message-received", "to": "+15145550100", "description": "...",
      "message": {"id": "...", "from": "+15145550123", "text": "Hi", "media": [...], ...}}]
    [{"type": "message-failed", "errorCode": 4432, "description": "forbidden to country",
      "to": "+52...", "message": {"id": "...", ...}}]

Bandwidth signs nothing; the callback credentials set on the Application are what it
proves itself with, checked here in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import mimetypes
from collections.abc import Iterator
from typing import Any, ClassVar
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
from ..http import CarrierResponse, basic_auth, carrier_request
from ..numbers import inbound_number

INBOUND_EVENT = "message-received"
# Outbound events, mapped onto ours. "message-sending" comes for MMS and group messages.
STATUS_EVENTS: dict[str, MessageStatus] = {
    "message-sending": MessageStatus.SENDING,
    "message-delivered": MessageStatus.DELIVERED,
    "message-failed": MessageStatus.FAILED,
}
# The MMS presentation part Bandwidth lists beside the media: layout, not content.
SMIL_SUFFIX = ".smil"
# destination-rejected-due-to-user-opt-out (Bandwidth's error codes; it arrives only in a
# message-failed callback).
OPTED_OUT_CODES = frozenset({"4775"})


class BandwidthConfig(ProviderConfig):
    """Credentials and the messaging Application of a Bandwidth account."""

    account_id: str = Field(min_length=1, description="Bandwidth account id (top of the App)")
    application_id: str = Field(
        min_length=1, description="id of the messaging Application your numbers' location uses")
    username: str = Field(min_length=1, description="API credentials: username (or token)")
    password: SecretStr = Field(description="API credentials: password (or secret)")
    callback_username: str = Field(
        min_length=1, description="the Application's callback (webhook) Basic auth username")
    callback_password: SecretStr = Field(
        description="the Application's callback (webhook) Basic auth password")


class BandwidthProvider(Provider[BandwidthConfig]):
    """Bandwidth (SMS and MMS by URL)."""

    key: ClassVar[str] = "bandwidth"
    name: ClassVar[str] = "Bandwidth"
    Config = BandwidthConfig
    capabilities = Capabilities(
        sms=True, mms=True,
        max_text_length=2048,  # MessageRequest.text limit (unconfirmed beyond the SDK docs)
        max_media=10,  # unconfirmed: Bandwidth documents a total size, not a count
        max_media_bytes=3_500_000,  # unconfirmed: "3.5 MB per message" from support pages
        inline_media=False,  # Bandwidth fetches the URLs in "media"
        number_format=NumberFormat.E164,
        signature="bandwidth-basic-auth",
        delivery_receipts=True,
    )
    default_base_url: ClassVar[str] = "https://messaging.bandwidth.com"

    @property
    def _password(self) -> str:
        return self.config.password.get_secret_value()

    # --- sending -------------------------------------------------------------------------

    def send_url(self) -> str:
        """The messages resource of the configured account."""
        return f"{self.base_url}/api/v2/users/{self.config.account_id}/messages"

    def send_body(self, message: OutboundMessage) -> dict[str, Any]:
        """The JSON body of a message creation request for ``message``."""
        media_urls = self.media_urls(message)
        body: dict[str, Any] = {"applicationId": self.config.application_id,
                                "to": [message.to_number], "from": message.from_number}
        if message.text or not message.media:
            body["text"] = message.text
        if media_urls:
            body["media"] = media_urls
        # Comes back in every receipt: ties Bandwidth's events to our message in its logs.
        body["tag"] = message.id
        return body

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """Create a message; Bandwidth answers 202 with its id."""
        response = await carrier_request(
            http, "POST", self.send_url(), label="Bandwidth",
            timeout=self.config.timeout_seconds, secrets=[self._password],
            json=self.send_body(message),
            headers={"Authorization": basic_auth(self.config.username, self._password),
                     "Accept": "application/json"},
        )
        if not 200 <= response.status < 300:
            raise _send_error(response)
        answer = response.json()
        message_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(message_id, str) or not message_id:
            # Bandwidth may have queued it: a retry could text the recipient twice.
            raise ProviderError("Bandwidth accepted the message but its answer carried no id",
                                retryable=False, code="no_id")
        count = answer.get("segmentCount")
        segments = count if isinstance(count, int) and not isinstance(count, bool) and (
            count > 0) else None
        return SendResult(message_id, MessageStatus.SENT, segments)

    # --- setup -------------------------------------------------------------------------

    async def check_credentials(self, http: aiohttp.ClientSession) -> AccountInfo:
        """List one message of the account: the Messaging API's cheapest authenticated read.

        ``GET {base}/api/v2/users/{accountId}/messages?limit=1`` answers 200 with
        ``{"totalCount", "pageInfo", "messages"}`` (Bandwidth's MessagesApi.list_messages);
        401 and 403 refuse the API user or its access to this account.
        """
        await read_account(
            http, f"{self.base_url}/api/v2/users/{self.config.account_id}/messages",
            carrier=self.name, timeout=self.config.timeout_seconds, secrets=[self._password],
            refusals={401: "invalid_auth", 403: "invalid_auth"}, params={"limit": "1"},
            headers={"Authorization": basic_auth(self.config.username, self._password),
                     "Accept": "application/json"},
        )
        return AccountInfo(self.config.account_id)

    # list_numbers keeps the default (None): the account's numbers are in the Dashboard
    # API, on another host (dashboard.bandwidth.com), in XML, often for another API user.

    # --- webhooks ------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Check the Basic credentials Bandwidth sends with every callback."""
        scheme, _, encoded = (header(request, "authorization") or "").strip().partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise WebhookRejected("no Basic Authorization header: are the callback credentials"
                                  " set on the Bandwidth Application?")
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, ValueError):
            raise WebhookRejected("the Basic Authorization header is not base64") from None
        expected_password = self.config.callback_password.get_secret_value()
        # Both compared, always: the answer's timing tells nothing about which one differed.
        user_ok = hmac.compare_digest(user.encode(), self.config.callback_username.encode())
        password_ok = hmac.compare_digest(password.encode(), expected_password.encode())
        if not (user_ok and password_ok):
            raise WebhookRejected("the callback credentials do not match callback_username and"
                                  " callback_password")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read the ``message-received`` events of a callback; outbound events are skipped."""
        messages: list[InboundMessage] = []
        for index, event_type, event in _events(request):
            if event_type in STATUS_EVENTS:
                # An Application with a single callback URL sends receipts here too; they
                # are acknowledged so Bandwidth does not retry them for a day.
                continue
            if event_type != INBOUND_EVENT:
                raise MalformedWebhook(f"Bandwidth event [{index}] type {event_type!r} is not"
                                       " one we know")
            messages.append(_inbound(index, event))
        return messages

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Read the delivery events of a callback; inbound messages sent here are skipped."""
        updates: list[StatusUpdate] = []
        for index, event_type, event in _events(request):
            if event_type == INBOUND_EVENT:
                continue  # the Application's inbound URL points here: acknowledged, not stored
            status = STATUS_EVENTS.get(event_type)
            if status is None:
                raise MalformedWebhook(f"Bandwidth event [{index}] type {event_type!r} is not"
                                       " one we know")
            message = _message(index, event)
            code = reason = None
            if status is MessageStatus.FAILED:
                raw_code = event.get("errorCode")
                code = None if raw_code in (None, "") or isinstance(raw_code, bool) else str(
                    raw_code)
                description = event.get("description")
                reason = description if isinstance(description, str) and description else (
                    f"Bandwidth error {code}" if code else "Bandwidth: message-failed")
            updates.append(StatusUpdate(_string(message, "id", index), status, code, reason,
                                        recipient_opted_out=code in OPTED_OUT_CODES))
        return updates

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """What goes where on the Bandwidth messaging Application."""
        return (
            "In the Bandwidth App, open the messaging Application (its id goes in"
            " application_id), tick \"Use multiple callback URLs\", set the Inbound Callback"
            f" URL to {inbound_url} and the Status Callback URL to {status_url}, and set"
            " callback credentials (the same user and password for both) equal to"
            " callback_username and callback_password."
        )


# -------------------------------------------------------------------- helpers


def _send_error(response: CarrierResponse) -> ProviderError:
    """The ProviderError for a refused send: Bandwidth's ``type`` and ``description``."""
    answer = response.json()
    kind = answer.get("type") if isinstance(answer, dict) else None
    description = answer.get("description") if isinstance(answer, dict) else None
    if not isinstance(kind, str) or not kind:
        return response.error()  # not Bandwidth's JSON (a proxy's page): the status decides
    reason = description if isinstance(description, str) and description else kind
    # 400 (invalid request or number), 401, 403 and 415 are final; 429 and 5xx back off.
    return response.error(f"Bandwidth: {reason}", code=kind)


def _events(request: WebhookRequest) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """Each event of a callback body (a JSON array) with its index and type."""
    document = request.json()
    if not isinstance(document, list):
        raise MalformedWebhook("Bandwidth callback body is not a JSON array of events")
    for index, event in enumerate(document):
        if not isinstance(event, dict):
            raise MalformedWebhook(f"Bandwidth event [{index}] is not an object")
        event_type = event.get("type")
        if not isinstance(event_type, str) or not event_type:
            raise MalformedWebhook(f"Bandwidth event [{index}] is missing 'type'")
        yield index, event_type, event


def _message(index: int, event: dict[str, Any]) -> dict[str, Any]:
    message = event.get("message")
    if not isinstance(message, dict):
        raise MalformedWebhook(f"Bandwidth event [{index}] has no 'message' object")
    return message


def _string(container: dict[str, Any], key: str, index: int) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedWebhook(f"Bandwidth event [{index}] is missing 'message.{key}'")
    return value.strip()


def _inbound(index: int, event: dict[str, Any]) -> InboundMessage:
    message = _message(index, event)
    # The top-level "to" is the one number of ours this copy was delivered to (a group
    # message lists every participant in message.to); "owner" says the same.
    to = event.get("to") if isinstance(event.get("to"), str) and event.get("to") else (
        message.get("owner"))
    text = message.get("text")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise MalformedWebhook(f"Bandwidth event [{index}] 'message.text' is not a string")
    return InboundMessage(
        carrier_message_id=_string(message, "id", index),
        from_number=_number(message.get("from"), index, "message.from"),
        to_number=_number(to, index, "to"),
        text=text,
        media=tuple(_media(index, message.get("media"))),
    )


def _number(value: object, index: int, field: str) -> str:
    """A number in E.164; short codes pass through as given."""
    return inbound_number(value, carrier=f"Bandwidth event [{index}]", field=field)


def _media(index: int, items: object) -> list[Media]:
    """message.media: URLs (fetched with the API credentials); the .smil part is skipped."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise MalformedWebhook(f"Bandwidth event [{index}] 'message.media' is not a list")
    media: list[Media] = []
    for position, url in enumerate(items):
        if not isinstance(url, str) or not url.strip():
            raise MalformedWebhook(
                f"Bandwidth event [{index}] 'message.media[{position}]' is not a URL")
        path = urlsplit(url).path
        if path.lower().endswith(SMIL_SUFFIX):
            continue
        media.append(Media(content_type=mimetypes.guess_type(path)[0]
                           or "application/octet-stream", url=url))
    return media
