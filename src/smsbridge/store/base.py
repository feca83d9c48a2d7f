"""The store interface the gateway and the workers use."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..core.messages import KIND_MESSAGE, Direction, Message, MessageStatus, StatusUpdate
from ..core.redact import redact_url
from ..core.scope import Scope

if TYPE_CHECKING:
    from .accounts import AccountRecord
    from .app_webhooks import StoredWebhook
    from .connections import StoredConnection
    from .optouts import OptoutPage, OptoutRecord
    from .rule_runs import RuleRun

# How long an Idempotency-Key is honoured after its first use; later it starts a new message.
IDEMPOTENCY_KEY_TTL_SECONDS = 24 * 3600.0
# Widths of the columns that hold what carriers send; PostgreSQL refuses a longer value.
MAX_NUMBER_CHARS = 32  # E.164 is 16 at most; short codes and sender names are shorter
MAX_CARRIER_ID_CHARS = 128
MAX_ERROR_CODE_CHARS = 64
MAX_VOICE_CHARS = 64  # a call's voice and language: carriers' names such as Polly.Joanna-Neural


def rfc3339(epoch: float | None) -> str | None:
    """Epoch seconds as an RFC 3339 UTC timestamp (the form Message.to_dict uses), or None."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """An Idempotency-Key as the store keeps it: unique per scope, with its request's hash."""

    scope: str  # who may replay it: an API key's id, or "cli"
    key: str
    fingerprint: str  # SHA-256 hex of the normalised request

    @classmethod
    def for_message(cls, scope: str, key: str, message: Message) -> IdempotencyKey:
        """The key of a request that prepared ``message``; its fingerprint covers what is sent."""
        request: dict[str, object] = {
            "from": message.from_number,
            "to": message.to_number,
            "text": message.text,
            "media": [[m.content_type, m.url, m.data_base64] for m in message.media],
            "connection": message.connection,
        }
        if message.kind != KIND_MESSAGE:
            # Only other kinds add fields, so a message's fingerprint is what it always was.
            request.update(kind=message.kind, voice=message.voice, language=message.language,
                           repeat=message.repeat)
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return cls(scope, key, hashlib.sha256(canonical.encode()).hexdigest())


@dataclass(frozen=True, slots=True)
class WriteFailure:
    """Why the last write failed, and when (epoch seconds)."""

    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class DeliveryDraft:
    """An app-webhook event to deliver, written in the same transaction as its cause."""

    url: str
    event_type: str
    message_id: str | None
    payload: str  # the JSON body exactly as it will be signed and sent
    # The run-time app webhook (app_webhooks.id) it goes to; None for the config file's.
    webhook_id: str | None = None
    account_id: str | None = None  # the account of the message it is about


# Called inside a write transaction with the message as just written; returns the events it causes.
EventsFor = Callable[[str, Message], Sequence[DeliveryDraft]]


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One app-webhook delivery and how it went."""

    id: str
    url: str
    event_type: str
    message_id: str | None
    payload: str
    status: str  # pending, delivered, failed
    attempts: int
    next_attempt_at: float | None
    last_error: str | None
    created_at: float
    updated_at: float
    webhook_id: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The public JSON form."""
        return {
            "id": self.id,
            "webhook_id": self.webhook_id,
            # An MQTT publication's topic hides nothing; an app URL may hold credentials.
            "url": self.url if self.url.startswith("mqtt:") else redact_url(self.url),
            "event_type": self.event_type,
            "message_id": self.message_id,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": rfc3339(self.next_attempt_at),
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What ``list_messages`` selects; None means any. Messages and calls never mix."""

    number: str | None = None
    direction: Direction | None = None
    status: MessageStatus | None = None
    connection: str | None = None
    kind: str = KIND_MESSAGE
    account_id: str | None = None  # None: every account's (only inside the gateway)


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of messages, newest first, and the cursor of the next page."""

    messages: list[Message]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as stored: never the key itself, only its hash."""

    id: str
    name: str
    prefix: str
    created_at: float
    revoked_at: float | None
    account_id: str = ""
    admin: bool = False

    @property
    def scope(self) -> Scope:
        """What this key may see and do."""
        return Scope(self.account_id, self.admin)

    def to_dict(self) -> dict[str, object]:
        """The public JSON form, with RFC 3339 timestamps."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "account_id": self.account_id,
            "admin": self.admin,
            "created_at": rfc3339(self.created_at),
            "revoked_at": rfc3339(self.revoked_at),
        }


class Store(ABC):
    """Everything the gateway keeps. Every write is committed before its coroutine returns."""

    # --- lifecycle
    @abstractmethod
    async def start(self) -> None:
        """Open connections and start the writer."""

    @abstractmethod
    async def close(self) -> None:
        """Finish queued writes and close connections."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the database cannot be reached."""

    @abstractmethod
    def migrate(self) -> None:
        """Bring the schema to the newest version (blocking)."""

    @property
    @abstractmethod
    def write_failure(self) -> WriteFailure | None:
        """The last write failure, until a message write commits again; None while writes work."""

    @abstractmethod
    async def recheck_writes(self) -> WriteFailure | None:
        """While writes fail, try a probe write that fails whenever storing a message would.

        Returns the failure that remains (None once the probe commits); never raises.
        """

    @abstractmethod
    def listen(self, on_outbox: Callable[[], None], on_webhooks: Callable[[], None]
               ) -> object | None:
        """Call back when another process queues work, where the database can tell."""

    # --- messages
    @abstractmethod
    async def queue_outbound(
        self, message: Message, idempotency: IdempotencyKey | None, events_for: EventsFor,
        *, honour_optouts: bool = True,
    ) -> tuple[Message, bool]:
        """Insert a queued message; with a kept idempotency key return the first one and False.

        Raises IdempotencyKeyReused when the kept key's fingerprint differs, and
        RecipientOptedOut (checked in the same transaction) when the recipient opted out of
        the sending number, unless ``honour_optouts`` is False (the answer to a STOP).
        """

    @abstractmethod
    async def record_inbound(
        self, messages: Sequence[Message], events_for: EventsFor
    ) -> list[tuple[Message, bool]]:
        """Insert inbound messages once each (by connection + carrier id); True where new."""

    @abstractmethod
    async def claim_outbound(self, owner: str, limit: int, lease_seconds: float) -> list[Message]:
        """Lease up to ``limit`` due messages to ``owner`` and mark them sending."""

    @abstractmethod
    async def mark_sent(
        self,
        message_id: str,
        carrier_message_id: str,
        status: MessageStatus,
        segments: int | None,
        events_for: EventsFor,
    ) -> Message | None:
        """Record that the carrier accepted a message."""

    @abstractmethod
    async def mark_retry(
        self, message_id: str, next_attempt_at: float, error_code: str | None, reason: str
    ) -> Message | None:
        """Put a message back in the queue after a retryable failure."""

    @abstractmethod
    async def mark_failed(
        self, message_id: str, error_code: str | None, reason: str, events_for: EventsFor
    ) -> Message | None:
        """Record a final failure."""

    @abstractmethod
    async def apply_status(
        self, connection: str, updates: Sequence[StatusUpdate], events_for: EventsFor
    ) -> list[Message]:
        """Apply delivery receipts; statuses never move backwards. Returns the messages changed."""

    @abstractmethod
    async def get_message(self, message_id: str) -> Message | None:
        """One message by id."""

    @abstractmethod
    async def list_messages(
        self, filter: MessageFilter, limit: int, cursor: str | None
    ) -> MessagePage:
        """Messages newest first."""

    # --- app webhook deliveries
    @abstractmethod
    async def claim_deliveries(
        self, owner: str, limit: int, lease_seconds: float
    ) -> list[DeliveryRecord]:
        """Lease up to ``limit`` due deliveries."""

    @abstractmethod
    async def finish_delivery(
        self, delivery_id: str, *, ok: bool, error: str | None, next_attempt_at: float | None
    ) -> None:
        """Record a delivery attempt: delivered, retry at ``next_attempt_at``, or failed (None)."""

    @abstractmethod
    async def list_deliveries(
        self, message_id: str | None = None, status: str | None = None, limit: int = 100,
        account_id: str | None = None,
    ) -> list[DeliveryRecord]:
        """Deliveries newest first (of one account when ``account_id`` is given)."""

    # --- API keys
    @abstractmethod
    async def create_api_key(self, name: str, prefix: str, key_hash: str, account_id: str,
                             admin: bool = False) -> ApiKeyRecord:
        """Store a new key's hash; InvalidInput("name") when a live key of the account has
        that name."""

    @abstractmethod
    async def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The live (unrevoked) key with this hash."""

    @abstractmethod
    async def count_api_keys(self) -> int:
        """How many keys are live."""

    @abstractmethod
    async def list_api_keys(self, account_id: str | None = None) -> list[ApiKeyRecord]:
        """Every key (of one account when given), revoked ones included."""

    @abstractmethod
    async def find_live_api_keys(self, id_or_name: str) -> list[ApiKeyRecord]:
        """The unrevoked keys whose id or name is ``id_or_name``."""

    @abstractmethod
    async def revoke_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """Revoke the live key with this id; None when there is none."""

    # --- carrier webhook tokens
    @abstractmethod
    async def read_tokens(self) -> dict[str, str]:
        """Every stored connection token, by connection name."""

    @abstractmethod
    async def ensure_tokens(self, connections: Sequence[str], make_token: Callable[[], str]
                            ) -> dict[str, str]:
        """The token of each connection, creating missing ones."""

    @abstractmethod
    async def rotate_token(self, connection: str, token: str) -> None:
        """Replace a connection's token."""

    # --- runtime facts
    @abstractmethod
    async def get_meta(self, key: str) -> str | None:
        """A stored runtime fact, or None."""

    @abstractmethod
    async def claim_meta(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless a value is there; return the stored one."""

    @abstractmethod
    async def set_meta(self, key: str, value: str) -> None:
        """Store (or replace) a runtime fact."""

    # --- the opt-out list (store/optouts.py)
    @abstractmethod
    async def add_optout(self, from_number: str, to_number: str, source: str,
                         account_id: str | None = None) -> tuple[OptoutRecord, bool]:
        """List the pair (source: keyword, carrier, api or cli); True when it was not listed."""

    @abstractmethod
    async def remove_optout(self, from_number: str, to_number: str,
                            account_id: str | None = None) -> OptoutRecord | None:
        """Take the pair off the list (only the account's, when given); the row removed."""

    @abstractmethod
    async def is_opted_out(self, from_number: str, to_number: str) -> bool:
        """Whether nothing may be sent from ``from_number`` to ``to_number``."""

    @abstractmethod
    async def list_optouts(self, from_number: str | None, to_number: str | None, limit: int,
                           cursor: str | None, account_id: str | None = None) -> OptoutPage:
        """Listed pairs newest first (of one account when given); ValueError for a cursor
        not given out."""

    @abstractmethod
    async def inbound_texts_after(self, message_id: str, max_chars: int) -> list[str]:
        """The short texts that the same sender sent the same number after this message."""

    # --- what inbound rules did (store/rule_runs.py)
    @abstractmethod
    async def record_rule_runs(self, runs: Sequence[RuleRun]) -> None:
        """Store rule outcomes; one already stored for the same rule and action is replaced."""

    @abstractmethod
    async def list_rule_runs(self, message_id: str) -> list[RuleRun]:
        """What the rules did with one message, in the order they did it."""

    # --- accounts, run-time connections and app webhooks (store/accounts.py, ...)
    @abstractmethod
    async def default_account_id(self) -> str:
        """The id of the default account."""

    @abstractmethod
    async def create_account(self, name: str, auth_token: str | None = None) -> AccountRecord:
        """Make an account (with its encrypted auth token)."""

    @abstractmethod
    async def set_account_token(self, account_id: str, auth_token: str) -> bool:
        """Replace an account's encrypted auth token; False when there is no such account."""

    @abstractmethod
    async def claim_account_token(self, account_id: str, auth_token: str) -> str | None:
        """The account's encrypted auth token, storing this one if it has none."""

    @abstractmethod
    async def account_tokens(self) -> dict[str, str]:
        """Every account's encrypted auth token, by account id."""

    @abstractmethod
    async def get_account(self, account_id: str) -> AccountRecord | None:
        """One account, or None."""

    @abstractmethod
    async def list_accounts(self) -> list[AccountRecord]:
        """Every account, oldest first."""

    @abstractmethod
    async def add_connection(self, record: StoredConnection, token: str) -> StoredConnection:
        """Store a connection and its webhook token; Conflict for a taken name or number."""

    @abstractmethod
    async def update_connection(self, name: str, account_id: str, *,
                                numbers: Sequence[str] | None = None,
                                settings: str | None = None) -> StoredConnection | None:
        """Change a stored connection of the account; None when it has none of that name."""

    @abstractmethod
    async def remove_connection(self, name: str, account_id: str) -> bool:
        """Delete a stored connection of the account with its numbers and token."""

    @abstractmethod
    async def list_stored_connections(self) -> list[StoredConnection]:
        """Every stored connection."""

    @abstractmethod
    async def registry_version(self) -> str:
        """Changes whenever a stored connection or app webhook does."""

    @abstractmethod
    async def add_app_webhook(self, record: StoredWebhook) -> StoredWebhook:
        """Store an app webhook."""

    @abstractmethod
    async def remove_app_webhook(self, webhook_id: str, account_id: str) -> bool:
        """Delete one of the account's app webhooks."""

    @abstractmethod
    async def list_app_webhooks(self) -> list[StoredWebhook]:
        """Every stored app webhook."""
