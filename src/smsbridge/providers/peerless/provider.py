"""Peerless Network: SMS/MMS by JSON POST to the account's send URL, inbound by JSON POST.

No Peerless documentation is public. The facts, and how sure each is, are in
shared/providers/peerless.md: they are what jambonz's messaging-peerless plug-in does.
jambonz's own docs (jambonz/jambonz-docs, docs/sms.md) add the shape of the send URL and
of a send answer; jambonz-api-server (lib/routes/api/sms-inbound.js) looks for its own
number among both ``recipients`` and ``ccRecipients``.

Send::

    POST {url}    e.g. https://<host>/partners/messageReceiving/<account no>/submitMessage
    Authorization: Basic ...   (only when a username and a password are configured)
    {"from": "+15145550100", "recipients": ["+14385550123"], "ccRecipients": [],
     "text": "Hi", "mediaURL": ["https://cdn.example.com/a.jpg"]}
    -> 200 {"responseText": "OK. Message Submitted Successfully"}

``text`` is left out when empty and ``mediaURL`` when there is no media (the plug-in's
history suggests Peerless refused them). The answer carries no message id, so our own
message id stands in as the carrier message id.

Inbound (the messaging URL Peerless is given for the account)::

    POST <inbound url>  {"from": "+14385550123", "recipients": ["+15145550100"],
                         "ccRecipients": [], "text": "Hi", "mediaURL": null,
                         "contentId": null}
    <- 200 {"receipt": "<id>", "status": "accepted"}     (Peerless wants a JSON body)

Peerless sends no message id, so each webhook gets a random one: a webhook Peerless
retries is stored twice, but a real repeated "YES" is never dropped as a duplicate. A
group message is stored once for each distinct number in ``recipients`` and
``ccRecipients``, since the provider cannot tell which of them is ours.

Unconfirmed: the host of the send URL, the error answers, text and media limits, whether
Peerless retries a webhook. Peerless sends no delivery receipts and signs nothing: the
secret token in the webhook URL is what guards the inbound URL.
"""

from __future__ import annotations

import json
import mimetypes
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from ...core.errors import MalformedWebhook, ProviderError
from ...core.messages import InboundMessage, Media, MessageStatus, OutboundMessage, utcnow
from ...core.phone import NumberFormat
from ..base import (
    UNSIGNED,
    Capabilities,
    Provider,
    ProviderConfig,
    Reply,
    SendResult,
    WebhookRequest,
)
from ..http import CarrierResponse, basic_auth, carrier_request
from ..numbers import inbound_number

URL_EXAMPLE = "https://<host>/partners/messageReceiving/<account no>/submitMessage"


class PeerlessConfig(ProviderConfig):
    """Where and how to send through a Peerless messaging account."""

    # The password-without-username error would otherwise print the input, password and all.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: str = Field(description=f"the send URL Peerless gives you, e.g. {URL_EXAMPLE}")
    username: str | None = Field(
        None, min_length=1,
        description="user name for HTTP Basic auth on sends; set it with password, or neither")
    password: SecretStr | None = Field(
        None, description="password for HTTP Basic auth on sends; set it with username")
    base_url: str | None = Field(
        None, description="replaces the scheme and host of url, keeping url's path (a test"
                          " server or a proxy); leave it unset to send to url itself")

    @field_validator("url", "base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL such as {URL_EXAMPLE}")
        return value

    @model_validator(mode="after")
    def _auth_needs_both(self) -> Self:
        has_user = bool(self.username)
        has_password = bool(self.password and self.password.get_secret_value())
        if has_user != has_password:
            missing = "password" if has_user else "username"
            raise ValueError(f"{missing} is missing: HTTP Basic auth needs both username and"
                             " password (or neither, for a URL that needs no auth)")
        return self


class PeerlessProvider(Provider[PeerlessConfig]):
    """Peerless Network numbers (SMS, and MMS by URL)."""

    key: ClassVar[str] = "peerless"
    name: ClassVar[str] = "Peerless Network"
    Config = PeerlessConfig
    capabilities = Capabilities(
        sms=True,
        mms=True,
        # Unconfirmed: 1600 is the common concatenation ceiling, not a Peerless figure.
        max_text_length=1600,
        # Inbound MMS carries one ``mediaURL`` string and the plug-in sent one URL: more
        # than one per message is not known to work.
        max_media=1,
        inline_media=False,  # URLs only: Peerless fetches them
        number_format=NumberFormat.E164,  # "peerless wants [the plus]" (plug-in history)
        signature=UNSIGNED,  # no signature is known; the URL token guards the webhook
        delivery_receipts=False,
    )

    @property
    def send_url(self) -> str:
        """Where sends go: ``url``, or its path and query under ``base_url`` when set."""
        if not self.config.base_url:
            return self.config.url
        parts = urlsplit(self.config.url)
        return self.config.base_url.rstrip("/") + urlunsplit(
            ("", "", parts.path, parts.query, ""))

    def _password(self) -> str:
        return self.config.password.get_secret_value() if self.config.password else ""

    def _headers(self) -> dict[str, str]:
        if not (self.config.username and self._password()):
            return {}
        return {"Authorization": basic_auth(self.config.username, self._password())}

    # ---------------------------------------------------------------- sending

    def send_body(self, message: OutboundMessage) -> dict[str, Any]:
        """The JSON body that sends ``message``."""
        media_urls = self.media_urls(message)
        body: dict[str, Any] = {"from": message.from_number, "recipients": [message.to_number],
                                "ccRecipients": []}
        if message.text:
            body["text"] = message.text
        if media_urls:
            # A flat list: the plug-in wrapped its media list in another one, a bug.
            body["mediaURL"] = media_urls
        return body

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """POST one message; Peerless answers 200 with JSON that holds no id."""
        response = await carrier_request(
            http, "POST", self.send_url, label="Peerless",
            timeout=self.config.timeout_seconds, secrets=[self._password()],
            json=self.send_body(message), headers=self._headers(),
        )
        if not 200 <= response.status < 300:  # Peerless answers 200; any 2xx took it
            raise _send_error(response)
        if response.json() is None:
            # Not Peerless's answer (a web page at a mistyped url, say). Peerless may still
            # have taken the message, so a retry could text the recipient twice.
            raise ProviderError(
                f"Peerless answered {response.status} but not with JSON: check that url is the"
                " send URL Peerless gave you", retryable=False, code="not_json")
        return SendResult(message.id, MessageStatus.SENT)

    # ---------------------------------------------------------------- webhooks

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read an inbound SMS or MMS: one message per distinct recipient number."""
        payload = request.json()
        if not isinstance(payload, dict):
            raise MalformedWebhook("Peerless inbound body must be a JSON object")
        sender = _number(payload.get("from"), "from")
        recipients = _numbers(payload, "recipients")
        if not recipients:
            raise MalformedWebhook("Peerless inbound 'recipients' is empty")
        destinations = list(dict.fromkeys(recipients + _numbers(payload, "ccRecipients")))
        text = payload.get("text")
        if text is not None and not isinstance(text, str):
            raise MalformedWebhook("Peerless inbound 'text' must be a string or null")
        media = _media(payload.get("mediaURL"))
        # Peerless gives no id: a fresh one per webhook keeps every message (see module doc).
        receipt = str(uuid.uuid4())
        ids = [receipt] if len(destinations) == 1 else [
            f"{receipt}:{number}" for number in destinations]
        received_at = utcnow()
        return [InboundMessage(carrier_message_id=message_id, from_number=sender,
                               to_number=number, text=text or "", media=media,
                               received_at=received_at)
                for message_id, number in zip(ids, destinations, strict=True)]

    def inbound_reply(self, messages: Sequence[InboundMessage]) -> Reply:
        """200 with the JSON receipt Peerless requires: the webhook's id, ``accepted``."""
        receipts = {m.carrier_message_id.partition(":")[0] for m in messages}
        receipt = receipts.pop() if len(receipts) == 1 else str(uuid.uuid4())
        body = json.dumps({"receipt": receipt, "status": "accepted"}).encode()
        return Reply(200, body, "application/json")

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes: Peerless sets the messaging webhook for you."""
        return (
            f"Ask Peerless (your account manager or support) to POST inbound SMS and MMS for"
            f" your numbers to {inbound_url}. Peerless sends no delivery receipts, so there"
            " is no status URL to give them."
        )


# -------------------------------------------------------------------- helpers


def _send_error(response: CarrierResponse) -> ProviderError:
    """The ProviderError for a refusal; the HTTP status decides whether a retry can help."""
    answer = response.json()
    text = answer.get("responseText") if isinstance(answer, dict) else None
    if isinstance(text, str) and text.strip():
        reason = f"Peerless: {text.strip()}"
    elif response.status in (401, 403):
        reason = f"Peerless: HTTP {response.status}; check username and password"
    else:
        reason = None
    # No Peerless error codes are known: 429 and 5xx back off, every other status is final.
    return response.error(reason)


def _number(value: Any, field: str) -> str:
    """A number from the webhook in E.164; a short code is kept as given."""
    return inbound_number(value, carrier="Peerless", field=field)


def _numbers(payload: dict[str, Any], key: str) -> list[str]:
    """The numbers of a list field; a missing or null list is empty."""
    values = payload.get(key)
    if values is None:
        return []
    if not isinstance(values, list):
        raise MalformedWebhook(f"Peerless inbound '{key}' must be a list of numbers")
    return [_number(value, f"{key}[{index}]") for index, value in enumerate(values)]


def _media(value: Any) -> tuple[Media, ...]:
    """``mediaURL``: null, one URL (what Peerless sends), or a list of URLs."""
    if value is None or value == "":
        return ()
    urls = value if isinstance(value, list) else [value]
    media = []
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise MalformedWebhook("Peerless inbound 'mediaURL' must be null or an http(s) URL")
        ctype = mimetypes.guess_type(urlsplit(url).path)[0] or "application/octet-stream"
        media.append(Media(content_type=ctype, url=url))
    return tuple(media)
