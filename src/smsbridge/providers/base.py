"""The provider interface every carrier implements.

A provider turns the gateway's standard messages into one carrier's API calls
and that carrier's webhooks back into standard messages. It sees only a plain
``WebhookRequest`` and an aiohttp ``ClientSession`` that is passed in; it never
touches the store, the web framework or the server, so the same provider runs
behind the gateway and behind Home Assistant.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import parse_qsl, urljoin

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import (
    CredentialsRejected,
    InvalidPhoneNumber,
    MalformedWebhook,
    ProviderError,
    WebhookRejected,
)
from ..core.messages import (
    InboundMessage,
    MessageStatus,
    OutboundCall,
    OutboundMessage,
    StatusUpdate,
)
from ..core.phone import NumberFormat, to_e164
from .http import carrier_request

# ``Capabilities.signature`` of a carrier that signs nothing: the secret token in the
# webhook URL is then all that tells the carrier's requests from anyone else's.
UNSIGNED = "none"


@dataclass(frozen=True)
class WebhookRequest:
    """An inbound HTTP request from a carrier, free of any web framework.

    ``url`` is the URL as the carrier called it (the configured public URL plus
    path and query), which is what carriers sign. Header names are lower-case.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]]
    body: bytes = b""

    def form(self) -> list[tuple[str, str]]:
        """The body as url-encoded form pairs, in the order sent."""
        return list(self._form_pairs)

    @cached_property
    def _form_pairs(self) -> tuple[tuple[str, str], ...]:
        # Parsed once: verifying a signature and reading the message both need it.
        try:
            return tuple(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise MalformedWebhook("form body is not UTF-8") from None

    def json(self) -> Any:
        """The body parsed as JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedWebhook(f"body is not valid JSON ({exc})") from None

    @property
    def content_type(self) -> str:
        """The media type of the body, without parameters, lower-case."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Reply:
    """What the gateway answers a carrier's webhook with."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class SendResult:
    """A carrier accepted a message.

    ``status`` is ``sent`` for most carriers; a carrier that confirms delivery
    synchronously (the sandbox) may answer ``delivered``.
    """

    carrier_message_id: str
    status: MessageStatus = MessageStatus.SENT
    segments: int | None = None
    extra_ids: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """Whose account a set of credentials opens, as a credentials check found it.

    ``identity`` is a non-secret value naming the account (a username, an account id):
    what tells two setups of the same account apart. ``label`` is the carrier's own name
    for the account, if it gave one. ``checked`` is False when nothing was asked of the
    carrier, for a carrier with no cheap authenticated read.
    """

    identity: str
    label: str | None = None
    checked: bool = True


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a carrier supports, used to validate messages before they are queued."""

    sms: bool = True
    mms: bool = False
    max_text_length: int = 1600
    max_media: int = 0
    max_media_bytes: int = 0
    inline_media: bool = False  # accepts base64 data, not only URLs
    number_format: NumberFormat = NumberFormat.E164
    # The scheme ``verify`` checks (e.g. "twilio-hmac-sha1"), or UNSIGNED. None means
    # undeclared, which the registry refuses: forgetting ``verify`` must not open a door.
    signature: str | None = None
    delivery_receipts: bool = False
    voice: bool = False  # places text-to-speech calls (``Provider.place_call``)
    regions: tuple[str, ...] = ()  # ISO regions a carrier sends to; empty: any


class ProviderConfig(BaseModel):
    """Base of every provider's config schema; secrets are ``SecretStr`` fields."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(
        None, description="the carrier's API address; override it for a proxy, a regional host"
                          " or a test server")
    timeout_seconds: float = Field(
        15.0, gt=0, le=300, description="how long to wait for each API request, in seconds"
    )


ConfigT = TypeVar("ConfigT", bound=ProviderConfig)


class Provider(ABC, Generic[ConfigT]):
    """One carrier. Subclasses set ``key``, ``name``, ``Config`` and ``capabilities``."""

    key: ClassVar[str]
    name: ClassVar[str]
    Config: ClassVar[type[ProviderConfig]]
    # The carrier's; an instance may narrow it to what its config enables (Vonage's calls
    # need a Voice application), and the gateway reads the instance's.
    capabilities: Capabilities

    def __init__(self, config: ConfigT) -> None:
        self.config = config

    @abstractmethod
    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """Send one message; raise ``ProviderError(retryable=...)`` when the carrier refuses."""

    @abstractmethod
    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Turn the carrier's inbound webhook into messages, or raise ``MalformedWebhook``."""

    def verify(self, request: WebhookRequest) -> None:
        """Check the carrier's signature; raise ``WebhookRejected`` if it does not hold.

        Carriers that sign override this; carriers that sign nothing declare
        ``signature=UNSIGNED`` and keep this default. Anything else fails closed.
        """
        if self.capabilities.signature != UNSIGNED:
            raise WebhookRejected(
                f"the {self.key} provider neither checks a signature nor declares its carrier"
                " unsigned"
            )

    @classmethod
    def contract_problems(cls) -> list[str]:
        """What keeps this class from being a usable provider; empty when it is one."""
        signature = cls.capabilities.signature
        verifies = cls.verify is not Provider.verify
        if signature is None:
            return [f"{cls.__name__} declares no capabilities.signature: set it to the scheme"
                    " its verify() checks, or to UNSIGNED when the carrier signs nothing"]
        if signature == UNSIGNED and verifies:
            return [f"{cls.__name__} declares its carrier unsigned but overrides verify()"]
        if signature != UNSIGNED and not verifies:
            return [f"{cls.__name__} declares signature {signature!r} but does not override"
                    " verify() to check it"]
        return []

    async def place_call(self, call: OutboundCall, http: aiohttp.ClientSession) -> SendResult:
        """Place a call that speaks ``call.say``; the carrier's call id is the result's id.

        Carriers with ``capabilities.voice`` override this. Their call-status callbacks
        come to the connection's status URL and ``parse_status`` turns them into
        StatusUpdates: ``sent`` while it rings, ``delivered`` once answered and finished,
        ``failed`` with ``error_code`` one of ``CALL_FAILURE_ANSWERS``.
        """
        raise ProviderError(f"{self.name} cannot place voice calls", retryable=False,
                            code="calls_unsupported")

    def call_answer(self, call: OutboundCall) -> Reply:
        """What ``call.answer_url`` serves to a carrier that fetches its call instructions."""
        raise MalformedWebhook(f"{self.key} takes its call instructions inline")

    def max_send_seconds(self, message: OutboundMessage | None = None) -> float:
        """The longest ``send`` can take for ``message`` (None: for any message it accepts).

        The outbox lease is sized from it, so that no second worker takes over a
        send still waiting for the carrier. Default: one request's timeout; a
        carrier that makes several requests per message multiplies.
        """
        return self.config.timeout_seconds

    def inbound_reply(self, messages: Sequence[InboundMessage]) -> Reply:
        """What the carrier expects back after an inbound webhook was stored."""
        return Reply(200, b"", "text/plain; charset=utf-8")

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Turn the carrier's delivery-status callback into status updates."""
        raise MalformedWebhook(f"{self.key} sends no status callbacks")

    def status_reply(self, updates: Sequence[StatusUpdate]) -> Reply:
        """What the carrier expects back after a status callback was stored."""
        return Reply(200, b"", "text/plain; charset=utf-8")

    async def complete_inbound(
        self, messages: list[InboundMessage], http: aiohttp.ClientSession
    ) -> list[InboundMessage]:
        """Fetch whatever the webhook left out (a text sent by id only); default: nothing."""
        return messages

    def media_urls(self, message: OutboundMessage) -> list[str]:
        """The URLs of ``message``'s media; ProviderError for a carrier that takes URLs only."""
        if any(m.url is None for m in message.media):
            # The gateway refuses inline media for such a carrier before queueing; this
            # keeps a provider called directly (Home Assistant) from sending half a message.
            raise ProviderError(
                f"{self.name} fetches media by URL only; inline (base64) media cannot be sent",
                retryable=False, code="inline_media",
            )
        return [m.url for m in message.media if m.url is not None]

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """What to paste into the carrier's portal to point it at the gateway, if anything."""
        return None

    def account_identity(self) -> str:
        """The non-secret config value naming the account; default: its first required text."""
        for name, spec in type(self.config).model_fields.items():
            value = getattr(self.config, name, None)
            if name not in ProviderConfig.model_fields and spec.is_required() and (
                    isinstance(value, str) and value):
                return value
        return self.key

    async def check_credentials(self, http: aiohttp.ClientSession) -> AccountInfo:
        """Try the credentials with a cheap authenticated read; say whose account they open.

        Raises ``CredentialsRejected`` when the carrier refuses them, and a retryable
        ``ProviderError`` when it cannot be reached. Default, for a carrier with no such
        read: no request, and ``AccountInfo(account_identity(), checked=False)``.
        """
        return AccountInfo(self.account_identity(), checked=False)

    async def list_numbers(self, http: aiohttp.ClientSession) -> list[str] | None:
        """The account's SMS-capable numbers in E.164; None where the carrier cannot list them."""
        return None

    @property
    def base_url(self) -> str:
        """The carrier's API base URL, or the configured override."""
        return (self.config.base_url or self.default_base_url).rstrip("/")

    default_base_url: ClassVar[str] = ""


def header(request: WebhookRequest, name: str) -> str | None:
    """A request header by case-insensitive name."""
    return request.headers.get(name.lower())


def first(pairs: Sequence[tuple[str, str]], name: str) -> str | None:
    """The first value of ``name`` among form or query pairs."""
    for key, value in pairs:
        if key == name:
            return value
    return None


# The HTTP status of a refused credentials check, read the same way by every carrier.
INVALID_AUTH_STATUSES: Mapping[int, str] = {401: "invalid_auth"}


async def read_account(
    http: aiohttp.ClientSession, url: str, *, carrier: str, timeout: float,
    secrets: Iterable[str] = (), refusals: Mapping[int, str] = INVALID_AUTH_STATUSES,
    **request: Any,
) -> Any:
    """GET one account resource and return its JSON, for a credentials check or a number list.

    A status in ``refusals`` raises ``CredentialsRejected`` of that kind; any other failure
    is the shared ProviderError (retryable for timeouts, 408, 429, 5xx and non-JSON bodies).
    """
    response = await carrier_request(http, "GET", url, label=carrier, timeout=timeout,
                                     secrets=secrets, **request)
    kind = refusals.get(response.status)
    if kind is not None:
        raise CredentialsRejected(
            f"{carrier} refused the credentials (HTTP {response.status})", kind=kind)
    if response.status != 200:
        raise response.error()
    data = response.json()
    if data is None:
        # A proxy's or load balancer's page, not the API's answer: a later try may pass.
        raise ProviderError(f"{carrier}: the answer is not JSON", retryable=True,
                            code="invalid_response")
    return data


async def linked_pages(first_url: str, read: Callable[[str], Awaitable[Any]],
                       next_link: Callable[[Any], object], *, max_pages: int = 500,
                       ) -> AsyncIterator[Any]:
    """Each page of a list whose answers link to the next one, from ``first_url`` on.

    ``read`` fetches a page (``read_account``, usually); ``next_link`` finds the next page's
    link in it (absolute, or relative to the host); no link ends the list. ``max_pages``
    stops a carrier that would link on for ever.
    """
    url: str | None = first_url
    for _ in range(max_pages):
        if url is None:
            return
        page = await read(url)
        yield page
        following = next_link(page)
        url = urljoin(url, following) if isinstance(following, str) and following else None


def e164_numbers(values: Iterable[object], *, region: str = "US",
                 international_digits: bool = False) -> list[str]:
    """Carrier-written phone numbers in E.164, in order and once each.

    ``international_digits`` reads digits as country code and number without the plus.
    Anything that is not a phone number (a short code, an empty value) is left out:
    the list offers numbers to send from, and those cannot be picked.
    """
    numbers: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            continue
        raw = value.strip()
        candidate = "+" + raw if international_digits and raw.isdigit() else raw
        try:
            number = to_e164(candidate, region)
        except InvalidPhoneNumber:
            continue
        if number not in numbers:
            numbers.append(number)
    return numbers
