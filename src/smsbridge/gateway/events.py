"""App-webhook events: which webhooks get which event, and the exact JSON body they receive.

A received message goes to the webhooks of the [[rules]] it matches (with the rule's name
and captures in the event), else to every webhook subscribed to message.received that no
rule names: a webhook a rule names (one that arms an alarm, say) never hears of a text
that did not pass its rule, such as the same command from a stranger.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from ..core.messages import Message, MessageStatus, utcnow
from ..dispatch.mqtt import mqtt_url
from ..dispatch.webhooks import TWILIO_FORMAT
from ..store.app_webhooks import StoredWebhook
from ..store.base import DeliveryDraft
from .config import WebhookConfig
from .jambonz_forms import inbound_body
from .rules import RuleBook, RuleHit, rule_topic
from .twilio_forms import inbound_params, status_params

# Extra deliveries an event causes beside the app webhooks, made inside the same transaction
# (called with the event type and the message as just written; must not do I/O).
EventRoute = Callable[[str, Message], list[DeliveryDraft]]

# What the store's events on a call row mean to an app. A placed (ringing) call is no event:
# the app hears of it once, when it ends.
CALL_QUEUED = "call.queued"
CALL_COMPLETED = "call.completed"
CALL_FAILED = "call.failed"
_CALL_ENDINGS = {MessageStatus.DELIVERED: CALL_COMPLETED, MessageStatus.FAILED: CALL_FAILED}


def twilio_target(account_id: str) -> str:
    """The delivery target that signs with ``account_id``'s auth token (StatusCallbacks)."""
    return f"twilio:{account_id}"


def event_body(event_type: str, message: Message, **extra: Any) -> str:
    """The JSON body of an event: ``{"type", "timestamp", "data": the message or call}``.

    ``extra`` adds top-level keys (a rule's event adds ``rule`` and ``captures``).
    """
    data = message.to_call_dict() if message.is_call else message.to_dict()
    return json.dumps(
        {"type": event_type, "timestamp": utcnow().isoformat(), "data": data, **extra},
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
    """Turns a message or call change into one delivery per subscribed webhook.

    The config file's webhooks, rules and routes (MQTT) hear of the default account's
    messages only; the webhooks an account added through the API, of that account's only.
    """

    def __init__(self, webhooks: Sequence[WebhookConfig]) -> None:
        self._by_event: dict[str, list[WebhookConfig]] = {}
        for hook in webhooks:
            for event in hook.events:
                self._by_event.setdefault(event, []).append(hook)
        self._by_name = {hook.name: hook.url for hook in webhooks if hook.name is not None}
        self._routes: list[EventRoute] = []
        self._rules = RuleBook(())
        self._mqtt_prefix: str | None = None
        self._rule_only: frozenset[str] = frozenset()
        self.default_account: str | None = None
        # account id -> event type -> its stored webhooks
        self._stored: dict[str, dict[str, list[StoredWebhook]]] = {}

    def use_stored_webhooks(self, hooks: Sequence[StoredWebhook]) -> None:
        """Route each account's events to the webhooks it added (replacing the last set)."""
        stored: dict[str, dict[str, list[StoredWebhook]]] = {}
        for hook in hooks:
            by_event = stored.setdefault(hook.account_id, {})
            for event in hook.events:
                by_event.setdefault(event, []).append(hook)
        self._stored = stored

    def use_rules(self, rules: RuleBook, mqtt_prefix: str | None) -> None:
        """Route received messages by ``rules``; ``mqtt_prefix`` when [mqtt] is configured."""
        self._rules = rules
        self._mqtt_prefix = mqtt_prefix
        self._rule_only = frozenset(name for rule in rules.rules for name in rule.webhooks)

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
        drafts = self._stored_drafts(event_type, message)
        if message.account_id is None or message.account_id == self.default_account:
            if event_type == "message.received":
                drafts.extend(self._received_drafts(message))
            else:
                drafts.extend(self._webhook_drafts(event_type, message))
            for route in self._routes:
                drafts.extend(route(event_type, message))
        if message.account_id is None:
            return drafts
        return [replace(draft, account_id=message.account_id) for draft in drafts]

    def _stored_drafts(self, event_type: str, message: Message) -> list[DeliveryDraft]:
        """One delivery per webhook the message's account added for ``event_type``, in
        the webhook's format, and the message's Twilio StatusCallback when it has one."""
        if message.account_id is None:
            return []
        drafts: list[DeliveryDraft] = []
        if (message.status_callback and event_type == "message.status"
                and not message.is_call):
            body = urlencode(status_params(message, message.account_id))
            drafts.append(DeliveryDraft(message.status_callback, event_type, message.id, body,
                                        webhook_id=twilio_target(message.account_id)))
        hooks = self._stored.get(message.account_id, {}).get(event_type, ())
        standard = ""
        for hook in hooks:
            if hook.format == "standard":
                standard = standard or event_body(event_type, message)
                body = standard
            elif event_type != "message.received" or message.is_call:
                continue  # a Twilio or jambonz app hears of received messages only
            elif hook.format == TWILIO_FORMAT:
                body = urlencode(inbound_params(message, message.account_id))
            else:
                body = json.dumps(inbound_body(message), separators=(",", ":"),
                                  ensure_ascii=False)
            drafts.append(DeliveryDraft(hook.url, event_type, message.id, body,
                                        webhook_id=hook.id))
        return drafts

    def _webhook_drafts(self, event_type: str, message: Message,
                        skip: frozenset[str] = frozenset()) -> list[DeliveryDraft]:
        """One delivery per app webhook subscribed to ``event_type`` but not named in ``skip``."""
        hooks = [hook for hook in self._by_event.get(event_type, ()) if hook.name not in skip]
        if not hooks:
            return []
        body = event_body(event_type, message)
        return [DeliveryDraft(hook.url, event_type, message.id, body) for hook in hooks]

    def _received_drafts(self, message: Message) -> list[DeliveryDraft]:
        """The matched rules' deliveries, or the default route's when no rule matched."""
        hits = [hit for hit in self._rules.evaluate(message) if hit.allowed]
        if hits:
            return [draft for hit in hits for draft in self._rule_drafts(hit, message)]
        return self._webhook_drafts("message.received", message, skip=self._rule_only)

    def _rule_drafts(self, hit: RuleHit, message: Message) -> list[DeliveryDraft]:
        """The event of one matched rule, to its webhooks and, with ``mqtt``, its topic."""
        rule = hit.rule
        body = event_body("message.received", message, rule=rule.name, captures=hit.captures)
        urls = [self._by_name[name] for name in rule.webhooks if name in self._by_name]
        if rule.mqtt and self._mqtt_prefix is not None:
            urls.append(mqtt_url(rule_topic(self._mqtt_prefix, rule.name)))
        return [DeliveryDraft(url, "message.received", message.id, body) for url in urls]
