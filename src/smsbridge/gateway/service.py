"""The application service behind the API, CLI and workers: send, receive, receipts, keys."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import mimetypes
import re
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from ..core.errors import (
    InvalidInput,
    MalformedWebhook,
    SecretKeyError,
    SmsBridgeError,
    WebhookRejected,
)
from ..core.messages import (
    KIND_CALL,
    Direction,
    InboundMessage,
    Media,
    Message,
    MessageStatus,
    StatusUpdate,
    new_id,
    utcnow,
)
from ..core.phone import calling_code_allowed, to_e164
from ..core.segments import count_segments, replace_lone_surrogates
from ..dispatch.webhooks import TWILIO_FORMAT, WebhookTarget
from ..providers.base import Reply, WebhookRequest
from ..store.app_webhooks import StoredWebhook
from ..store.base import (
    MAX_CARRIER_ID_CHARS,
    MAX_ERROR_CODE_CHARS,
    MAX_NUMBER_CHARS,
    ApiKeyRecord,
    DeliveryRecord,
    IdempotencyKey,
    MessageFilter,
    MessagePage,
    Store,
)
from .accounts import API_KEY_PREFIX, AccountAdmin, new_auth_token
from .config import Connection, Settings
from .connection_admin import ConnectionAdmin
from .events import EventRouter, twilio_target
from .mqtt import add_mqtt_route
from .optouts import OptoutHandler, OptoutList
from .registry import ConnectionRegistry
from .rule_actions import RulesHandler
from .secretbox import CHECK_META_KEY, SecretBox, claim_store_key
from .twiml import twiml_messages
from .webhook_admin import WebhookAdmin, checked_app_url

log = logging.getLogger("smsbridge.gateway")

ALLOWED_MEDIA_PREFIXES = ("image/", "audio/", "video/")
ALLOWED_MEDIA_TYPES = ("application/pdf",)


@dataclass(frozen=True, slots=True)
class MediaInput:
    """An attachment as a user gave it: a URL, or inline base64 data with its type."""

    url: str | None = None
    data_base64: str | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class SendRequest:
    """What a user asks to send."""

    from_number: str
    to_number: str
    text: str = ""
    media: Sequence[MediaInput] = field(default_factory=tuple)
    connection: str | None = None
    # Where to post the message's status changes in Twilio's form (the Twilio face).
    status_callback: str | None = None


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A voice call a user asks for: ``say`` is spoken ``repeat`` times to whoever answers."""

    from_number: str
    to_number: str
    say: str
    voice: str | None = None
    language: str | None = None
    repeat: int = 1
    connection: str | None = None


MAX_SAY_CHARS = 1000
MAX_REPEAT = 10
# Carriers' voice and language names: "alice", "Polly.Joanna-Neural", "en-US", "fr-CA".
_VOICE_NAME = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Line breaks and tabs are spoken as pauses; every other control character is refused.
_SPOKEN_WHITESPACE = str.maketrans("", "", "\t\n\r")


def hash_api_key(key: str) -> str:
    """The stored form of an API key (keys are long and random, so one SHA-256 suffices)."""
    return hashlib.sha256(key.encode()).hexdigest()


def media_type_allowed(content_type: str) -> bool:
    """Images, audio, video and PDF may be sent."""
    return content_type.startswith(ALLOWED_MEDIA_PREFIXES) or content_type in ALLOWED_MEDIA_TYPES


class InboundHandler(Protocol):
    """Something done with each stored inbound message (opt-out words, rules).

    It must be idempotent per message id: it runs again when the carrier retries the
    webhook. It returns True when it consumed the message (no later handler sees it).
    """

    async def on_inbound(self, gateway: Gateway, conn: Connection, message: Message,
                         created: bool) -> bool:
        """Act on ``message``; True when no later handler may see it."""
        ...


class Gateway(AccountAdmin, ConnectionAdmin, WebhookAdmin):
    """Send, receive and track messages for every connection; manage accounts, keys,
    connections and webhooks within the caller's account."""

    def __init__(self, settings: Settings, store: Store, http: aiohttp.ClientSession,
                 box: SecretBox | None = None) -> None:
        self.settings = settings
        self.store = store
        self.http = http
        self.box = box
        self.registry = ConnectionRegistry(settings, box)
        self.events = EventRouter(settings.webhooks)
        add_mqtt_route(self.events, settings.mqtt)
        # What the delivery worker signs with: config webhooks by URL, stored ones by id.
        self.webhook_targets: dict[str, WebhookTarget] = {
            h.url: WebhookTarget(h.url, h.secret.get_secret_value(), h.max_attempts,
                                 h.timeout_seconds) for h in settings.webhooks}
        self._registry_version: str | None = None
        self._key_claimed = False
        # Each account's Twilio-style auth token, decrypted (the faces sign and check with it).
        self._account_tokens: dict[str, str] = {}
        self._said_key_misfit = False
        self.tokens: dict[str, str] = {}
        self._key_cache: dict[str, tuple[float, ApiKeyRecord]] = {}
        self.on_queued: Callable[[], None] = lambda: None
        # Called after each (re)load of the connections (the outbox re-sizes its lease).
        self.on_registry_loaded: list[Callable[[], None]] = []
        # What runs after an inbound message is stored, in order (opt-out words, then rules);
        # a handler that consumed the message stops the ones after it.
        self.inbound_handlers: list[InboundHandler] = []
        self.inbound_handlers.append(OptoutHandler(settings))
        self.inbound_handlers.append(RulesHandler.attach(self))

    # --- setup
    @property
    def default_account(self) -> str:
        """The id of the default account (the config file's connections are its)."""
        return self.registry.default_account

    async def load(self, *, make_tokens: bool = True) -> dict[str, str]:
        """Read the default account, the stored connections and webhooks, and the webhook
        token of every connection (creating the config file's on first use, unless
        ``make_tokens`` is False)."""
        self.registry.set_default_account(await self.store.default_account_id())
        self.events.default_account = self.default_account
        await self._load_registry()
        return await self.load_tokens(make=make_tokens)

    def use_box(self, box: SecretBox) -> None:
        """Encrypt and decrypt stored secrets with ``box`` from now on."""
        self.box = box
        self.registry.box = box

    async def load_tokens(self, *, make: bool = True) -> dict[str, str]:
        """Read (with ``make``, creating on first use) the webhook token of every
        connection."""
        if make:
            await self.store.ensure_tokens(list(self.settings.connections),
                                           lambda: secrets.token_urlsafe(32))
        stored = await self.store.read_tokens()
        self.tokens = {name: stored[name] for name in self.registry.connections
                       if name in stored}
        return self.tokens

    async def reload_connections(self) -> None:
        """Read the stored connections, webhooks and tokens again now, changed or not."""
        await self._load_registry()
        await self.load_tokens(make=False)

    async def _load_registry(self) -> None:
        version = await self.store.registry_version()
        connections = await self.store.list_stored_connections()
        hooks = await self.store.list_app_webhooks()
        if not await self._key_fits():
            return  # said why once; the last good set stays in use
        self.registry.load(connections)
        self.events.use_stored_webhooks(hooks)
        await self._sync_stored_targets(hooks)
        self._registry_version = version
        for listener in self.on_registry_loaded:
            listener()

    async def _key_fits(self) -> bool:
        """Whether this process can read the store's secrets; says why not, once."""
        check = await self.store.get_meta(CHECK_META_KEY)
        # Without a key (a read-only command) stored entries are listed, never decrypted.
        fits = check is None or self.box is None or self.box.opens(check)
        if not fits and not self._said_key_misfit:
            self._said_key_misfit = True
            log.error("connections and webhooks added through the API are stored under a "
                      "secret key this process does not have: they are not used here until "
                      "it is started with that key (SMSBRIDGE_SECRET_KEY or the key file)")
        return fits

    async def _sync_stored_targets(self, hooks: Sequence[StoredWebhook]) -> None:
        """What the delivery worker signs with: each stored webhook's secret, and each
        account's auth token for its Twilio-format webhooks and StatusCallbacks."""
        box = self.box
        targets: dict[str, WebhookTarget] = {}
        if box is not None:
            tokens = {account: box.decrypt(sealed)
                      for account, sealed in (await self.store.account_tokens()).items()}
            self._account_tokens = tokens
            for account, token in tokens.items():
                targets[twilio_target(account)] = WebhookTarget("", token, format=TWILIO_FORMAT)
            for hook in hooks:
                if hook.format == TWILIO_FORMAT:
                    signing = tokens.get(hook.account_id)
                    if signing is not None:
                        targets[hook.id] = WebhookTarget(hook.url, signing,
                                                         format=TWILIO_FORMAT)
                else:
                    targets[hook.id] = WebhookTarget(hook.url, box.decrypt(hook.secret))
        config_urls = {h.url for h in self.settings.webhooks}
        # Changed in place: the delivery worker holds this very mapping.
        for key in [k for k in self.webhook_targets if k not in config_urls]:
            del self.webhook_targets[key]
        self.webhook_targets.update(targets)

    async def sealing_box(self) -> SecretBox:
        """The box to encrypt a secret with before storing it, the store bound to its key."""
        if self.box is None:
            raise SecretKeyError("the secret key is not loaded: secrets cannot be stored")
        if not self._key_claimed:
            await claim_store_key(self.store, self.box)
            self._key_claimed = True
        return self.box

    async def refresh(self) -> None:
        """Pick up what other processes changed: connections and webhooks added, changed or
        removed through the API, and rotated webhook tokens."""
        if await self.store.registry_version() != self._registry_version:
            await self._load_registry()
            log.info("connections and webhooks re-read: %d connection(s)",
                     len(self.registry.connections))
        await self.load_tokens(make=False)

    def inbound_url(self, connection: str) -> str:
        """The URL a carrier posts inbound messages to."""
        return (f"{self.settings.server.base_url}/v1/carriers/{connection}/"
                f"{self.tokens[connection]}/inbound")

    def status_url(self, connection: str) -> str:
        """The URL a carrier posts delivery receipts to."""
        return (f"{self.settings.server.base_url}/v1/carriers/{connection}/"
                f"{self.tokens[connection]}/status")

    def answer_url(self, connection: str, call_id: str) -> str:
        """The URL a carrier that fetches its call instructions gets them from."""
        return (f"{self.settings.server.base_url}/v1/carriers/{connection}/"
                f"{self.tokens[connection]}/calls/{call_id}/answer")

    async def rotate_token(self, connection: str, account: str | None = None) -> str:
        """Give a connection a new webhook token; the old URL stops working."""
        if self.registry.get(connection, account) is None:
            raise InvalidInput("connection", f"no connection named {connection!r}")
        token = secrets.token_urlsafe(32)
        await self.store.rotate_token(connection, token)
        self.tokens[connection] = token
        return token

    # --- API keys (creating and revoking them: gateway/accounts.py)
    def _hash_key(self, key: str) -> str:
        return hash_api_key(key)

    async def authenticate(self, key: str) -> ApiKeyRecord | None:
        """The live key record for a presented key, or None."""
        if not key.startswith(API_KEY_PREFIX):
            return None
        digest = hash_api_key(key)
        cached = self._key_cache.get(digest)
        now = time.monotonic()
        # A short cache keeps the hot send path off the database; revocation lands within 2 s.
        if cached and now - cached[0] < 2.0:
            return cached[1]
        record = await self.store.find_api_key(digest)
        if record is None:
            self._key_cache.pop(digest, None)
            return None
        self._key_cache[digest] = (now, record)
        return record

    # --- sending
    def _resolve_connection(self, from_number: str, name: str | None, account: str
                            ) -> Connection:
        # Another account's connection or number is answered as one that does not exist.
        if name is not None:
            conn = self.registry.get(name, account)
            if conn is None:
                raise InvalidInput("connection", f"no connection named {name!r}")
            if from_number not in conn.numbers:
                raise InvalidInput("from", f"{from_number} is not a number of connection {name!r}")
            return conn
        conn = self.registry.owner_of(from_number, account)
        if conn is None:
            raise InvalidInput("from", f"no connection owns {from_number} (in this account); "
                                       "add it to a connection's numbers")
        return conn

    def _check_media(self, conn: Connection, items: Sequence[MediaInput]) -> tuple[Media, ...]:
        caps = conn.provider.capabilities
        if not items:
            return ()
        if not caps.mms or caps.max_media == 0:
            raise InvalidInput("media", f"carrier {conn.carrier} cannot send media")
        if len(items) > caps.max_media:
            raise InvalidInput("media", f"{conn.carrier} takes at most {caps.max_media} "
                                        f"attachments, got {len(items)}")
        limit = min(self.settings.server.max_media_bytes, caps.max_media_bytes or 10**12)
        out: list[Media] = []
        for index, item in enumerate(items):
            key = f"media[{index}]"
            if (item.url is None) == (item.data_base64 is None):
                raise InvalidInput(key, "give either a url or base64 data")
            content_type = (item.content_type or "").strip().lower()
            if item.url is not None:
                if not item.url.startswith(("https://", "http://")):
                    raise InvalidInput(f"{key}.url", "must be an http(s) URL")
                if _control_character(item.url):
                    raise InvalidInput(f"{key}.url", "must not contain control characters")
                if not self.settings.server.allow_private_media:
                    refusal = private_host_reason(item.url)
                    if refusal:
                        raise InvalidInput(f"{key}.url", refusal)
                content_type = content_type or (mimetypes.guess_type(item.url)[0] or "")
                if not content_type:
                    raise InvalidInput(f"{key}.content_type",
                                       "cannot tell the type from the URL; give content_type")
                if not media_type_allowed(content_type):
                    raise InvalidInput(f"{key}.content_type", f"{content_type} is not an image, "
                                                              "audio, video or PDF type")
                out.append(Media(content_type=content_type, url=item.url))
                continue
            if not caps.inline_media:
                raise InvalidInput(key, f"carrier {conn.carrier} fetches media by URL only; "
                                        "give a url")
            if not content_type:
                raise InvalidInput(f"{key}.content_type", "is required with inline data")
            if not media_type_allowed(content_type):
                raise InvalidInput(f"{key}.content_type",
                                   f"{content_type} is not an image, audio, video or PDF type")
            try:
                raw = base64.b64decode(item.data_base64 or "", validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInput(f"{key}.data", "is not valid base64") from None
            if len(raw) > limit:
                raise InvalidInput(f"{key}.data", f"is {len(raw)} bytes; the limit is {limit}")
            out.append(Media(content_type=content_type, data_base64=item.data_base64,
                             size=len(raw)))
        return tuple(out)

    def _route(self, from_number: str, to_number: str, connection: str | None,
               account: str | None = None) -> tuple[str, str, Connection]:
        """Both numbers in E.164 and the connection that sends from ``from_number``."""
        region = self.settings.server.default_region
        for name, value in (("from", from_number), ("to", to_number),
                            ("connection", connection)):
            if value is not None and _control_character(value):
                raise InvalidInput(name, "must not contain control characters such as "
                                         f"{_control_character(value)}")
        sender = to_e164(from_number, region, field="from")
        recipient = to_e164(to_number, region, field="to")
        conn = self._resolve_connection(sender, connection, account or self.default_account)
        caps = conn.provider.capabilities
        if not calling_code_allowed(recipient, caps.regions):
            raise InvalidInput("to", f"{conn.carrier} sends only to numbers of "
                                     f"{', '.join(caps.regions)}; {recipient} is not one")
        return sender, recipient, conn

    def prepare(self, request: SendRequest, account: str | None = None) -> Message:
        """Validate a send request and build its queued message, or raise InvalidInput."""
        from_number, to_number, conn = self._route(
            request.from_number, request.to_number, request.connection, account)
        caps = conn.provider.capabilities
        text = replace_lone_surrogates(request.text or "")
        media = self._check_media(conn, request.media)
        if not text.strip() and not media:
            raise InvalidInput("text", "must not be empty (or give media)")
        if len(text) > caps.max_text_length:
            raise InvalidInput("text", f"is {len(text)} characters; {conn.carrier} takes at most "
                                       f"{caps.max_text_length}")
        segs = count_segments(text)
        now = utcnow()
        return Message(
            id=new_id("msg"), direction=Direction.OUTBOUND, connection=conn.name,
            carrier=conn.carrier, from_number=from_number, to_number=to_number, text=text,
            status=MessageStatus.QUEUED, media=media, segments=segs.segments,
            encoding=segs.encoding, created_at=now, updated_at=now,
            account_id=conn.account_id,
            status_callback=self._status_callback(request.status_callback),
        )

    def prepare_call(self, request: CallRequest, account: str | None = None) -> Message:
        """Validate a call request and build its queued call, or raise InvalidInput."""
        from_number, to_number, conn = self._route(
            request.from_number, request.to_number, request.connection, account)
        if not conn.provider.capabilities.voice:
            field_name = "connection" if request.connection is not None else "from"
            raise InvalidInput(field_name, f"carrier {conn.carrier} (connection {conn.name!r}) "
                                           "cannot place voice calls")
        say = replace_lone_surrogates(request.say or "")
        if not say.strip():
            raise InvalidInput("say", "must not be empty")
        bad = _control_character(say.translate(_SPOKEN_WHITESPACE))
        if bad:
            raise InvalidInput("say", f"must not contain control characters such as {bad}")
        if len(say) > MAX_SAY_CHARS:
            raise InvalidInput("say", f"is {len(say)} characters; at most {MAX_SAY_CHARS} "
                                      "are spoken")
        if not 1 <= request.repeat <= MAX_REPEAT:
            raise InvalidInput("repeat", f"must be 1 to {MAX_REPEAT}")
        for name, value in (("voice", request.voice), ("language", request.language)):
            if value is not None and not _VOICE_NAME.fullmatch(value):
                raise InvalidInput(name, "must be 1 to 64 letters, digits or . _ : -, such as "
                                         f"{'Polly.Joanna' if name == 'voice' else 'en-US'}")
        now = utcnow()
        return Message(
            id=new_id("call"), kind=KIND_CALL, direction=Direction.OUTBOUND,
            connection=conn.name, carrier=conn.carrier, from_number=from_number,
            to_number=to_number, text=say, status=MessageStatus.QUEUED, voice=request.voice,
            language=request.language, repeat=request.repeat, created_at=now, updated_at=now,
            account_id=conn.account_id,
        )

    async def send(self, request: SendRequest, idempotency_key: str | None = None, *,
                   scope: str = "cli", account: str | None = None) -> tuple[Message, bool]:
        """Queue a message durably; returns it and whether it is new (False: idempotent replay).

        It is sent from a connection of ``account`` (default: the default account's).
        An idempotency key belongs to ``scope`` (the API key's id, or "cli"); reused there for a
        different request it raises IdempotencyKeyReused.
        """
        _check_idempotency_key(idempotency_key)
        message = self.prepare(request, account)
        if message.status_callback and message.account_id:
            # Its callbacks are signed with the account's auth token: make sure there is one.
            await self._ensure_account_token(message.account_id)
        # The store refuses a recipient who opted out, in the insert's own transaction.
        return await self._queue(message, idempotency_key, scope)

    def _status_callback(self, url: str | None) -> str | None:
        if url is None or url == "":
            return None
        return checked_app_url(url, "status_callback", self.settings)

    async def _ensure_account_token(self, account_id: str) -> None:
        if account_id in self._account_tokens:
            return
        box = await self.sealing_box()
        stored = await self.store.claim_account_token(account_id, box.encrypt(new_auth_token()))
        if stored is not None:
            token = box.decrypt(stored)
            self._account_tokens[account_id] = token
            self.webhook_targets[twilio_target(account_id)] = WebhookTarget(
                "", token, format=TWILIO_FORMAT)

    async def handle_twilio_answer(self, delivery: DeliveryRecord, answer: bytes) -> None:
        """Send the ``<Message>``s of an app's TwiML answer to a received message back from
        the number it came to, through the same connection (once, whatever the retries)."""
        if delivery.message_id is None:
            return
        received = await self.get_message(delivery.message_id)
        if received is None:
            return
        replies = twiml_messages(answer)
        for index, reply in enumerate(replies):
            request = SendRequest(from_number=received.to_number,
                                  to_number=reply.to or received.from_number, text=reply.body,
                                  media=[MediaInput(url=url) for url in reply.media],
                                  connection=received.connection)
            try:
                sent, created = await self.send(
                    request, f"{received.id}:{index}", scope="twiml",
                    account=received.account_id)
            except SmsBridgeError as exc:
                log.warning("the TwiML reply to %s cannot be sent: %s", received.id, exc)
                continue
            if created:
                log.info("TwiML reply %s to %s queued", sent.id, received.id)

    async def place_call(self, request: CallRequest, idempotency_key: str | None = None, *,
                         scope: str = "cli", account: str | None = None
                         ) -> tuple[Message, bool]:
        """Queue a voice call durably, with the same idempotency rules as ``send``."""
        _check_idempotency_key(idempotency_key)
        return await self._queue(self.prepare_call(request, account), idempotency_key, scope)

    async def _queue(self, message: Message, idempotency_key: str | None, scope: str
                     ) -> tuple[Message, bool]:
        idempotency = (None if idempotency_key is None else
                       IdempotencyKey.for_message(scope, idempotency_key, message))
        stored, created = await self.store.queue_outbound(message, idempotency, self.events)
        if created:
            log.info("queued %s %s -> %s via %s", stored.id, stored.from_number,
                     stored.to_number, stored.connection)
            self.on_queued()
        return stored, created

    # --- reading
    async def _get(self, message_id: str, account: str | None) -> Message | None:
        found = await self.store.get_message(message_id)
        if found is None or (account is not None and found.account_id != account):
            return None
        return found

    async def get_message(self, message_id: str, account: str | None = None) -> Message | None:
        """A text message by id (of ``account`` when given); None for an unknown id, a
        call's, or another account's."""
        found = await self._get(message_id, account)
        return found if found is not None and not found.is_call else None

    async def get_call(self, call_id: str, account: str | None = None) -> Message | None:
        """A voice call by id (of ``account`` when given); None for an unknown id, a
        message's, or another account's."""
        found = await self._get(call_id, account)
        return found if found is not None and found.is_call else None

    async def list_messages(self, filter: MessageFilter, limit: int, cursor: str | None
                            ) -> MessagePage:
        """Messages (or calls) newest first, of ``filter.account_id``; InvalidInput for a
        cursor this gateway did not give out."""
        try:
            return await self.store.list_messages(filter, limit, cursor)
        except ValueError as exc:
            raise InvalidInput("cursor", str(exc)) from None

    def optouts(self, account: str | None = None) -> OptoutList:
        """The opt-out list of ``account`` (default: the default account's)."""
        account_id = account or self.default_account
        return OptoutList(self.settings, self.store,
                          lambda number: self.registry.owner_of(number, account_id), account_id)

    async def list_deliveries(self, account: str, message_id: str | None = None,
                              status: str | None = None, limit: int = 100
                              ) -> list[DeliveryRecord]:
        """The account's app-webhook deliveries newest first."""
        return await self.store.list_deliveries(message_id, status, limit, account_id=account)

    # --- carrier webhooks
    def _connection_for(self, connection: str, token: str) -> Connection:
        conn = self.registry.get(connection)
        expected = self.tokens.get(connection)
        # Same answer and timing for an unknown connection and a wrong token.
        if conn is None or expected is None or not hmac.compare_digest(
                token.encode(), expected.encode()):
            raise WebhookRejected("unknown connection or wrong webhook token")
        return conn

    def _to_message(self, conn: Connection, item: InboundMessage) -> Message:
        _check_inbound_ids(item)
        region = self.settings.server.default_region
        text = replace_lone_surrogates(item.text or "")
        segs = count_segments(text)
        return Message(
            id=new_id("msg"), direction=Direction.INBOUND, connection=conn.name,
            carrier=conn.carrier,
            from_number=_normalise_or_keep(item.from_number, region),
            to_number=_normalise_or_keep(item.to_number, region),
            text=text, status=MessageStatus.RECEIVED, media=item.media,
            segments=segs.segments, encoding=segs.encoding,
            carrier_message_id=item.carrier_message_id,
            created_at=item.received_at, updated_at=item.received_at,
            account_id=conn.account_id,
        )

    async def receive_inbound(self, connection: str, token: str, request: WebhookRequest
                              ) -> tuple[Reply, list[tuple[Message, bool]]]:
        """Check, parse, store and acknowledge a carrier's inbound webhook."""
        conn = self._connection_for(connection, token)
        provider = conn.provider
        try:
            provider.verify(request)
            parsed = provider.parse_inbound(request)
        except SmsBridgeError:
            raise
        except Exception as exc:  # a payload no retry can fix: answered 400, not retried
            raise _unreadable(conn, exc) from exc
        parsed = await provider.complete_inbound(parsed, self.http)
        stored = await self.store.record_inbound(
            [self._to_message(conn, item) for item in parsed], self.events)
        for message, created in stored:
            if created:
                log.info("received %s %s -> %s on %s", message.id, message.from_number,
                         message.to_number, conn.name)
            else:
                log.info("duplicate inbound %s on %s acknowledged again",
                         message.carrier_message_id, conn.name)
            # Run for duplicates too: a carrier retries a webhook whose handlers failed, and
            # handlers make their effects idempotent (keyed by the inbound message's id).
            await self.handle_inbound(conn, message, created)
        return provider.inbound_reply(parsed), stored

    async def handle_inbound(self, conn: Connection, message: Message, created: bool) -> None:
        """Run the inbound handlers on a stored message until one consumes it."""
        for handler in self.inbound_handlers:
            if await handler.on_inbound(self, conn, message, created):
                return

    async def receive_status(self, connection: str, token: str, request: WebhookRequest
                             ) -> tuple[Reply, list[Message]]:
        """Check, parse and apply a carrier's delivery receipt."""
        conn = self._connection_for(connection, token)
        try:
            conn.provider.verify(request)
            updates = [_storable_update(update) for update in conn.provider.parse_status(request)]
        except SmsBridgeError:
            raise
        except Exception as exc:  # a payload no retry can fix: answered 400, not retried
            raise _unreadable(conn, exc) from exc
        changed = await self.store.apply_status(conn.name, updates, self.events)
        for message in changed:
            log.info("status %s -> %s", message.id, message.status.value)
        await self._note_receipt_opt_outs(updates, changed)
        if len(changed) < len(updates):
            log.info("%d receipt(s) on %s changed nothing now: out of order, or kept until "
                     "their send is recorded", len(updates) - len(changed), conn.name)
        return conn.provider.status_reply(updates), changed

    async def _note_receipt_opt_outs(self, updates: Sequence[StatusUpdate],
                                     changed: Sequence[Message]) -> None:
        """Put on the sender's list each recipient a receipt says opted out."""
        opted_out = {u.carrier_message_id for u in updates if u.recipient_opted_out}
        for message in changed:
            if message.carrier_message_id in opted_out and message.status is MessageStatus.FAILED:
                await self.store.add_optout(message.from_number, message.to_number, "carrier",
                                            message.account_id)
                log.info("%s opted out of %s (carrier receipt for %s)", message.to_number,
                         message.from_number, message.id)

    async def call_instructions(self, connection: str, token: str, call_id: str,
                                request: WebhookRequest) -> Reply | None:
        """What a carrier fetching a call's instructions gets; None for a call it cannot see."""
        conn = self._connection_for(connection, token)
        conn.provider.verify(request)
        call = await self.get_call(call_id)
        if call is None or call.connection != conn.name:
            return None
        outbound = call.to_outbound_call(self.status_url(conn.name),
                                         self.answer_url(conn.name, call.id))
        try:
            return conn.provider.call_answer(outbound)
        except SmsBridgeError:
            raise
        except Exception as exc:  # answered 500 would make the carrier retry a broken call
            raise _unreadable(conn, exc) from exc


def _check_idempotency_key(key: str | None) -> None:
    if key is not None and (not 0 < len(key) <= 255
                            or any(ord(c) < 32 or ord(c) == 127 for c in key)):
        raise InvalidInput("Idempotency-Key", "must be 1 to 255 characters, none of them "
                                              "control characters")


def _normalise_or_keep(number: str, region: str) -> str:
    # Short codes and alphanumeric senders are not E.164; keep them as the carrier wrote them.
    try:
        return to_e164(number, region)
    except InvalidInput:
        return number


# C0 and C1 controls, DEL, and surrogates (which no database driver can encode as UTF-8).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# In free text only NUL and surrogates are a problem; tabs and newlines belong there.
_UNSTORABLE_IN_REASON = re.compile("[\x00\ud800-\udfff]")
# Forms of an IPv4 address that URL fetchers accept beside a.b.c.d: 2130706433, 127.1, 0x7f.1
_LEGACY_IPV4 = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}")


def _control_character(value: str) -> str | None:
    """The first control character in ``value``, as U+XXXX, or None."""
    found = _CONTROL.search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


def _check_inbound_ids(item: InboundMessage) -> None:
    """Raise MalformedWebhook when an inbound message's id, numbers or media hold a control.

    No id or number holds one (and PostgreSQL cannot store NUL); odd text, though, is still
    a message and is stored as it came.
    """
    _check_length("from", item.from_number, MAX_NUMBER_CHARS)
    _check_length("to", item.to_number, MAX_NUMBER_CHARS)
    _check_length("message id", item.carrier_message_id, MAX_CARRIER_ID_CHARS)
    fields = [("from", item.from_number), ("to", item.to_number),
              ("message id", item.carrier_message_id)]
    fields += [(f"media[{i}] url", m.url or "") for i, m in enumerate(item.media)]
    fields += [(f"media[{i}] type", m.content_type) for i, m in enumerate(item.media)]
    for name, value in fields:
        bad = _control_character(value)
        if bad:
            raise MalformedWebhook(f"the {name} holds the control character {bad}")


def _check_length(name: str, value: str, limit: int) -> None:
    """Raise MalformedWebhook for an id or number longer than any carrier uses."""
    if len(value) > limit:
        raise MalformedWebhook(f"the {name} has {len(value)} characters; at most {limit} "
                               "are accepted")


def _unreadable(conn: Connection, exc: Exception) -> MalformedWebhook:
    """A webhook the provider failed on: malformed, so the carrier stops retrying it."""
    return MalformedWebhook(f"the {conn.carrier} provider could not read it "
                            f"({type(exc).__name__})")


def _storable_update(update: StatusUpdate) -> StatusUpdate:
    """``update`` with its ids checked and its free-text reason made storable."""
    _check_length("message id", update.carrier_message_id, MAX_CARRIER_ID_CHARS)
    _check_length("error code", update.error_code or "", MAX_ERROR_CODE_CHARS)
    for name, value in (("message id", update.carrier_message_id),
                        ("error code", update.error_code or "")):
        bad = _control_character(value)
        if bad:
            raise MalformedWebhook(f"the {name} holds the control character {bad}")
    reason = update.error_reason
    if reason is not None and _UNSTORABLE_IN_REASON.search(reason):
        reason = replace_lone_surrogates(reason).replace("\x00", "\ufffd")
        return replace(update, error_reason=reason)
    return update


def private_host_reason(url: str, setting: str = "allow_private_media") -> str | None:
    """Why a URL may not be used (it points inside the gateway's network), or None.

    ``setting`` names the [server] option that allows such URLs.
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return "is not a valid URL"
    if not host:
        return "has no host"
    host = host.rstrip(".")
    advice = f"; set server.{setting} = true to allow it in a private deployment"
    if host == "localhost" or host.endswith(".localhost"):
        return f"points at {host}, the gateway's own machine{advice}"
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _LEGACY_IPV4.fullmatch(host):
            return None  # a DNS name
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address.sixtofour or address
    if (not address.is_global or address.is_multicast or address.is_reserved
            or address.is_loopback or address.is_link_local or address.is_unspecified):
        return (f"points at {address}, a loopback, private, link-local, multicast or "
                f"reserved address{advice}")
    return None
