"""Message records shared by every layer: what providers consume and produce, what is stored."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime


class Direction(enum.StrEnum):
    """Which way a message travels, seen from the gateway."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageStatus(enum.StrEnum):
    """Where a message is in its life.

    Outbound: queued -> sending -> sent -> delivered, or failed at any step.
    Inbound messages are stored as received.
    """

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    RECEIVED = "received"

    @property
    def is_final(self) -> bool:
        """True when no later status can follow."""
        return self in (MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.RECEIVED)


# Later statuses win over earlier ones when receipts arrive out of order.
STATUS_RANK: dict[MessageStatus, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.RECEIVED: 3,
}


def new_id(prefix: str) -> str:
    """A random public id such as ``msg_3f2a...``."""
    return f"{prefix}_{uuid.uuid4().hex}"


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Media:
    """One attachment: a URL the carrier can fetch, or inline base64 data."""

    content_type: str
    url: str | None = None
    data_base64: str | None = None
    size: int | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form; inline data is left out unless asked for by the store."""
        out: dict[str, object] = {"content_type": self.content_type}
        if self.url is not None:
            out["url"] = self.url
        if self.size is not None:
            out["size"] = self.size
        return out


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a carrier delivered to us, as a provider parsed it from its webhook.

    ``text`` is None only when the carrier sent an id without the text and the
    provider must fetch it (``Provider.complete_inbound``).
    """

    carrier_message_id: str
    from_number: str
    to_number: str
    text: str | None
    media: tuple[Media, ...] = ()
    received_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message handed to a provider to send; numbers are E.164."""

    id: str
    from_number: str
    to_number: str
    text: str
    media: tuple[Media, ...] = ()
    status_callback_url: str | None = None


# How a voice call ended, as the ``error_code`` of a call's failed StatusUpdate ("answered"
# is a call that reached ``delivered``). Carriers' own words are mapped onto these.
CALL_ANSWERED = "answered"
CALL_FAILURE_ANSWERS = ("busy", "no-answer", "failed", "canceled")

# What a stored row is: a text message, or a voice call (its ``text`` is what is spoken).
KIND_MESSAGE = "message"
KIND_CALL = "call"

# A call's status as users see it: the outbox's words describe a message, not a phone call.
CALL_STATUS_WORDS: dict[MessageStatus, str] = {
    MessageStatus.QUEUED: "queued",
    MessageStatus.SENDING: "calling",
    MessageStatus.SENT: "placed",
    MessageStatus.DELIVERED: "completed",
    MessageStatus.FAILED: "failed",
}


@dataclass(frozen=True, slots=True)
class OutboundCall:
    """A voice call handed to a provider to place: it speaks ``say`` to whoever answers.

    ``voice`` and ``language`` are the carrier's own names (None: its default);
    ``repeat`` is how many times the text is spoken. ``answer_url`` is where a carrier
    that fetches its call instructions (rather than taking them inline) gets them; the
    provider's ``call_answer`` writes what that URL serves.
    """

    id: str
    from_number: str
    to_number: str
    say: str
    voice: str | None = None
    language: str | None = None
    repeat: int = 1
    status_callback_url: str | None = None
    answer_url: str | None = None


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery receipt or status callback for a message we sent."""

    carrier_message_id: str
    status: MessageStatus
    error_code: str | None = None
    error_reason: str | None = None
    occurred_at: datetime = field(default_factory=utcnow)
    # The carrier says the recipient opted out of this sender (a STOP): the gateway puts the
    # number on the sender's suppression list.
    recipient_opted_out: bool = False


@dataclass(slots=True)
class Message:
    """A message (or, with ``kind`` "call", a voice call) as the gateway stores and shows it.

    A call keeps what it speaks in ``text``, and its ``voice``, ``language`` and ``repeat``.
    """

    id: str
    direction: Direction
    connection: str
    carrier: str
    from_number: str
    to_number: str
    text: str
    status: MessageStatus
    media: tuple[Media, ...] = ()
    segments: int = 1
    encoding: str = "GSM-7"
    carrier_message_id: str | None = None
    error_code: str | None = None
    error_reason: str | None = None
    attempts: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    kind: str = KIND_MESSAGE
    voice: str | None = None
    language: str | None = None
    repeat: int | None = None
    # The account (tenant) it belongs to: its connection's. Not part of the public JSON.
    account_id: str | None = None
    # Where the Twilio-compatible face posts its status changes, when its sender asked.
    status_callback: str | None = None

    @property
    def is_call(self) -> bool:
        """True for a voice call, False for a text message."""
        return self.kind == KIND_CALL

    def _error_dict(self) -> dict[str, str | None] | None:
        if self.error_code or self.error_reason:
            return {"code": self.error_code, "reason": self.error_reason}
        return None

    def to_dict(self) -> dict[str, object]:
        """The public JSON form used by the API and by app webhooks."""
        return {
            "id": self.id,
            "direction": self.direction.value,
            "connection": self.connection,
            "carrier": self.carrier,
            "from": self.from_number,
            "to": self.to_number,
            "text": self.text,
            "media": [m.to_dict() for m in self.media],
            "status": self.status.value,
            "segments": self.segments,
            "encoding": self.encoding,
            "carrier_message_id": self.carrier_message_id,
            "error": self._error_dict(),
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    @property
    def call_answer(self) -> str | None:
        """How the called phone answered: "answered", a CALL_FAILURE_ANSWERS word, or None."""
        if self.status is MessageStatus.DELIVERED:
            return CALL_ANSWERED
        if self.status is MessageStatus.FAILED and self.error_code in CALL_FAILURE_ANSWERS:
            return self.error_code
        return None

    def to_call_dict(self) -> dict[str, object]:
        """The public JSON form of a voice call, used by the API and by app webhooks."""
        return {
            "id": self.id,
            "connection": self.connection,
            "carrier": self.carrier,
            "from": self.from_number,
            "to": self.to_number,
            "say": self.text,
            "voice": self.voice,
            "language": self.language,
            "repeat": self.repeat or 1,
            "status": CALL_STATUS_WORDS.get(self.status, self.status.value),
            "answer": self.call_answer,
            "carrier_call_id": self.carrier_message_id,
            "error": self._error_dict(),
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    def to_outbound_call(self, status_callback_url: str | None = None,
                         answer_url: str | None = None) -> OutboundCall:
        """The call a provider places for this stored call."""
        return OutboundCall(
            id=self.id, from_number=self.from_number, to_number=self.to_number, say=self.text,
            voice=self.voice, language=self.language, repeat=self.repeat or 1,
            status_callback_url=status_callback_url, answer_url=answer_url,
        )
