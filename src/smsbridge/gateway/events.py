"""App-webhook events: which webhooks get which event, and the exact JSON body they receive."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from ..core.messages import Message, MessageStatus, utcnow
from ..store.base import DeliveryDraft
from .config import WebhookConfig

# Extra deliveries an event causes beside the app webhooks, made inside the same transaction
# (called with the event type and the message as just written; must not do I/O).
EventRoute = Callable[[str, Message], list[DeliveryDraft]]

# What the store's events on a call row mean to an app. A placed (ringing) call is no event:
# the app hears of it once, when it ends.
CALL_QUEUED = "call.queued"
CALL_COMPLETED = "call.completed"
CALL_FAILED = "call.failed"
_CALL_ENDINGS = {MessageStatus.DELIVERED: CALL_COMPLETED, MessageStatus.FAILED: CALL_FAILED}


def event_body(event_type: str, message: Message) -> str:
    """The JSON body of an event: ``{"type", "timestamp", "data": the message or call}``."""
    data = message.to_call_dict() if message.is_call else message.to_dict()
    return json.dumps(
        {"type": event_type, "timestamp": utcnow().isoformat(), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def call_event(store_event: str, call: Message) -> str | None:
    """The app event that the store's ``store_event`` on ``call`` is, if any."""
    if store_event == "message.queued":
        return CALL_QUEUED
    if store_event == "message.status":
        return _CALL_ENDINGS.get(call.status)
    return None


class EventRouter:
    """Turns a message or call change into one delivery per subscribed webhook."""

    def __init__(self, webhooks: Sequence[WebhookConfig]) -> None:
        self._by_event: dict[str, list[str]] = {}
        for hook in webhooks:
            for event in hook.events:
                self._by_event.setdefault(event, []).append(hook.url)
        self._routes: list[EventRoute] = []

    def add_route(self, route: EventRoute) -> None:
        """Also deliver what ``route`` makes of each event (MQTT publishes, for one)."""
        self._routes.append(route)

    def __call__(self, event_type: str, message: Message) -> list[DeliveryDraft]:
        """The deliveries ``event_type`` on ``message`` causes (none when nobody listens).

        The store names every change in a message's words; a call's are renamed here.
        """
        if message.is_call:
            renamed = call_event(event_type, message)
            if renamed is None:
                return []
            event_type = renamed
        drafts = self._webhook_drafts(event_type, message)
        for route in self._routes:
            drafts.extend(route(event_type, message))
        return drafts

    def _webhook_drafts(self, event_type: str, message: Message) -> list[DeliveryDraft]:
        """One delivery per app webhook subscribed to ``event_type``."""
        urls = self._by_event.get(event_type)
        if not urls:
            return []
        body = event_body(event_type, message)
        return [DeliveryDraft(url, event_type, message.id, body) for url in urls]
