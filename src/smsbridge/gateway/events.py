"""App-webhook events: which webhooks get which event, and the exact JSON body they receive."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..core.messages import Message, utcnow
from ..store.base import DeliveryDraft
from .config import WebhookConfig


def event_body(event_type: str, message: Message) -> str:
    """The JSON body of an event: ``{"type", "timestamp", "data": the message}``."""
    return json.dumps(
        {"type": event_type, "timestamp": utcnow().isoformat(), "data": message.to_dict()},
        separators=(",", ":"),
        ensure_ascii=False,
    )


class EventRouter:
    """Turns a message change into one delivery per subscribed webhook."""

    def __init__(self, webhooks: Sequence[WebhookConfig]) -> None:
        self._by_event: dict[str, list[str]] = {}
        for hook in webhooks:
            for event in hook.events:
                self._by_event.setdefault(event, []).append(hook.url)

    def __call__(self, event_type: str, message: Message) -> list[DeliveryDraft]:
        """The deliveries ``event_type`` on ``message`` causes (none when nobody listens)."""
        urls = self._by_event.get(event_type)
        if not urls:
            return []
        body = event_body(event_type, message)
        return [DeliveryDraft(url, event_type, message.id, body) for url in urls]
