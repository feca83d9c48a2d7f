"""The store interface the gateway and the workers use."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core.messages import Direction, Message, MessageStatus, StatusUpdate


@dataclass(frozen=True, slots=True)
class DeliveryDraft:
    """An app-webhook event to deliver, written in the same transaction as its cause."""

    url: str
    event_type: str
    message_id: str | None
    payload: str  # the JSON body exactly as it will be signed and sent


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

    def to_dict(self) -> dict[str, object]:
        """The public JSON form."""
        return {
            "id": self.id,
            "url": self.url,
            "event_type": self.event_type,
            "message_id": self.message_id,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What ``list_messages`` selects; None means any."""

    number: str | None = None
    direction: Direction | None = None
    status: MessageStatus | None = None
    connection: str | None = None


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

    @abstractmethod
    def listen(self, on_outbox: Callable[[], None], on_webhooks: Callable[[], None]
               ) -> object | None:
        """Call back when another process queues work, where the database can tell."""

    # --- messages
    @abstractmethod
    async def queue_outbound(
        self, message: Message, idempotency_key: str | None, events_for: EventsFor
    ) -> tuple[Message, bool]:
        """Insert a queued message; with a known idempotency key return the first one and False."""

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
        self, message_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        """Deliveries newest first."""

    # --- API keys
    @abstractmethod
    async def create_api_key(self, name: str, prefix: str, key_hash: str) -> ApiKeyRecord:
        """Store a new key's hash."""

    @abstractmethod
    async def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The live (unrevoked) key with this hash."""

    @abstractmethod
    async def count_api_keys(self) -> int:
        """How many keys are live."""

    @abstractmethod
    async def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones included."""

    @abstractmethod
    async def revoke_api_key(self, key_id_or_name: str) -> int:
        """Revoke keys by id or name; return how many."""

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
