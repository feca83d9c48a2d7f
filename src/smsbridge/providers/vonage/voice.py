"""Vonage Voice API: a call that speaks its text (an inline NCCO ``talk``), and its events.

Carrier facts and how sure they are: docs/carriers/vonage.md ("Voice calls").

Create a call (Vonage answers 201)::

    POST {base}/v1/calls      Authorization: Bearer <RS256 JWT of the Vonage application>
    {"to": [{"type": "phone", "number": "14385550123"}],
     "from": {"type": "phone", "number": "15145550100"},
     "ncco": [{"action": "talk", "text": "...", "language": "en-US", "style": 2, "loop": 2}],
     "event_url": ["<status url>"], "event_method": "POST"}
    -> 201 {"uuid": "...", "status": "started", "direction": "outbound",
            "conversation_uuid": "CON-..."}

Call events (JSON POSTs to event_url, an HS256 JWT in Authorization)::

    {"uuid": "...", "conversation_uuid": "CON-...", "status": "busy", "direction": "outbound",
     "from": "15145550100", "to": "14385550123", "timestamp": "2024-05-20T15:29:49.412Z"}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.errors import MalformedWebhook, ProviderError
from ...core.messages import MessageStatus, OutboundCall, StatusUpdate

# A call's ``status`` in its events (the Voice API's CallStatus: started, ringing, answered,
# machine, completed, busy, cancelled, failed, rejected, timeout, unanswered; "human" answers
# machine detection), mapped onto a call's life and, when it ended unanswered, the answer.
CALL_EVENTS: dict[str, tuple[MessageStatus, str | None]] = {
    "started": (MessageStatus.SENT, None),
    "ringing": (MessageStatus.SENT, None),
    "answered": (MessageStatus.SENT, None),
    "machine": (MessageStatus.SENT, None),
    "human": (MessageStatus.SENT, None),
    "completed": (MessageStatus.DELIVERED, None),
    "busy": (MessageStatus.FAILED, "busy"),
    "timeout": (MessageStatus.FAILED, "no-answer"),
    "unanswered": (MessageStatus.FAILED, "no-answer"),
    "rejected": (MessageStatus.FAILED, "failed"),
    "failed": (MessageStatus.FAILED, "failed"),
    "cancelled": (MessageStatus.FAILED, "canceled"),
}


def _phone(number: str) -> dict[str, str]:
    """A phone endpoint: Vonage writes numbers as digits, without '+'."""
    return {"type": "phone", "number": number[1:] if number.startswith("+") else number}


def talk_action(call: OutboundCall) -> dict[str, Any]:
    """The NCCO ``talk`` action that speaks ``call.say`` ``call.repeat`` times."""
    action: dict[str, Any] = {"action": "talk", "text": call.say, "loop": call.repeat}
    if call.language:
        action["language"] = call.language
    if call.voice:
        if not call.voice.isdigit():
            # Vonage picks a voice by language and a numbered style, not by name.
            raise ProviderError(
                f"Vonage takes a voice style number as voice (e.g. \"0\" or \"2\", see its"
                f" text-to-speech language table), not {call.voice!r}", retryable=False,
                code="invalid_voice")
        action["style"] = int(call.voice)
    return action


def call_body(call: OutboundCall) -> dict[str, Any]:
    """The JSON body of POST /v1/calls for ``call``, its NCCO inline."""
    body: dict[str, Any] = {"to": [_phone(call.to_number)], "from": _phone(call.from_number),
                            "ncco": [talk_action(call)]}
    if call.status_callback_url:
        body["event_url"] = [call.status_callback_url]
        body["event_method"] = "POST"
    return body


def is_call_event(params: Mapping[str, str]) -> bool:
    """Whether a callback is a call event (an SMS receipt carries messageId instead)."""
    return "messageId" not in params and "uuid" in params


def parse_call_event(params: Mapping[str, str]) -> list[StatusUpdate]:
    """The StatusUpdate of a call event; none for an event that carries no call status."""
    call_uuid = params.get("uuid", "").strip()
    if not call_uuid:
        raise MalformedWebhook("Vonage call event is missing uuid")
    raw = params.get("status", "").strip()
    if not raw:
        # Events of other NCCO actions (input, record, transfer) come to the same URL.
        return []
    known = CALL_EVENTS.get(raw.lower())
    if known is None:
        raise MalformedWebhook(f"Vonage call status {raw!r} is not one we know")
    status, answer = known
    if answer is None:
        return [StatusUpdate(call_uuid, status)]
    detail = params.get("detail", "").strip()
    reason = f"{raw.lower()} ({detail})" if detail else raw.lower()
    return [StatusUpdate(call_uuid, status, answer, reason)]
