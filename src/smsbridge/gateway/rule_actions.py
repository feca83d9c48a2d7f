"""What matched rules do: replies and forwards queued once per message, recorded, reported.

A rule's webhook and MQTT deliveries are not made here: the event router writes them in the
inbound message's own transaction (gateway/events.py). This handler runs after the message
is stored, and again whenever the carrier retries its webhook, so each send is queued under
an Idempotency-Key made of the message id, the rule, the action and the target.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from ..core.errors import InvalidInput, SmsBridgeError, StoreUnavailable
from ..core.messages import Direction, Message, MessageStatus
from ..dispatch.mqtt import MQTT_URL_PREFIX
from ..store.base import DeliveryRecord
from ..store.rule_runs import RuleRun
from .config import Connection
from .rules import RuleBook, RuleHit, forward_text, render

if TYPE_CHECKING:
    from .service import Gateway

log = logging.getLogger("smsbridge.rules")

# The Idempotency-Key scope of the messages rules queue (API keys and the CLI have their own).
SCOPE = "rules"
MATCH = "match"


class RulesHandler:
    """The inbound handler after opt-out: acts on the rules a stored message matches."""

    def __init__(self, book: RuleBook) -> None:
        self.book = book

    @classmethod
    def attach(cls, gateway: Gateway) -> RulesHandler:
        """The handler of the gateway's [[rules]], which its event router now follows too."""
        book = RuleBook.from_config(gateway.settings.config)
        mqtt = gateway.settings.config.mqtt
        gateway.events.use_rules(book, mqtt.topic_prefix if mqtt is not None else None)
        return cls(book)

    async def on_inbound(self, gateway: Gateway, conn: Connection, message: Message,
                         created: bool) -> bool:
        """Queue the matched rules' replies and forwards and record every outcome."""
        hits = self.book.evaluate(message)
        if not hits:
            return False
        done: set[tuple[str, str, str]] = set()
        if not created:  # a retried webhook: what was queued stays as it was
            done = {(r.rule, r.action, r.target)
                    for r in await gateway.store.list_rule_runs(message.id) if r.status == "ok"}
        runs: list[RuleRun] = []
        for hit in hits:
            runs.append(_match_run(hit, message))
            if not hit.allowed:
                continue
            for action, target, text in _sends(hit, message):
                if (hit.rule.name, action, target) not in done:
                    runs.append(await _send(gateway, conn, message, hit.rule.name, action,
                                            target, text))
        await gateway.store.record_rule_runs(runs)
        return any(hit.allowed for hit in hits)


def _match_run(hit: RuleHit, message: Message) -> RuleRun:
    """The record of a match, or of a sender the rule does not allow (which is logged)."""
    rule = hit.rule
    if hit.allowed:
        log.info("rule %s matched %s from %s", rule.name, message.id, message.from_number)
        return RuleRun(message.id, rule.name, MATCH, "matched", captures=hit.captures)
    why = f"{message.from_number} is not in {rule.senders_named}"
    log.warning("rule %s: %s sent a matching text (%s) but %s; nothing done", rule.name,
                message.from_number, message.id, why)
    return RuleRun(message.id, rule.name, MATCH, "sender_not_allowed", detail=why)


def _sends(hit: RuleHit, message: Message) -> list[tuple[str, str, str]]:
    """The (action, target, text) of each message a matched rule sends."""
    rule = hit.rule
    sends = [("forward", target, forward_text(message)) for target in rule.forward_to]
    if rule.reply is not None:
        sends.insert(0, ("reply", message.from_number, render(rule.reply, hit.captures,
                                                               message)))
    return sends


async def _send(gateway: Gateway, conn: Connection, message: Message, rule: str, action: str,
                target: str, text: str) -> RuleRun:
    """Queue one reply or forward from the receiving number; a refusal is recorded, not raised."""
    from .service import SendRequest  # service.py imports this module

    request = SendRequest(from_number=message.to_number, to_number=target, text=text,
                          connection=conn.name)
    key = f"{message.id}:{rule}:{action}:{target}"
    try:
        sent, _ = await gateway.send(request, key, scope=SCOPE)
    except InvalidInput as exc:  # an opted-out recipient, a sender name, a text too long
        log.warning("rule %s: %s to %s refused: %s", rule, action, target, exc)
        return RuleRun(message.id, rule, action, "refused", target, detail=str(exc))
    except StoreUnavailable:
        raise  # the carrier is answered 503 and retries; the rules run again then
    except SmsBridgeError as exc:
        log.error("rule %s: %s to %s failed: %s", rule, action, target, exc)
        return RuleRun(message.id, rule, action, "failed", target, detail=str(exc))
    return RuleRun(message.id, rule, action, "ok", target, outbound_message_id=sent.id)


async def rule_report(gateway: Gateway, message: Message) -> list[dict[str, Any]]:
    """What the rules did with ``message``: each rule that matched or refused its sender.

    Each matched rule lists its actions with how they went: a webhook or MQTT delivery
    (pending, delivered, failed), and a reply or forward (refused, or its message's status),
    with the error where one failed.
    """
    if message.direction is not Direction.INBOUND:
        return []
    runs = await gateway.store.list_rule_runs(message.id)
    if not runs:
        return []
    deliveries = await gateway.store.list_deliveries(message_id=message.id, limit=500)
    names = {hook.url: hook.name for hook in gateway.settings.webhooks if hook.name}
    report: dict[str, dict[str, Any]] = {}
    for run in runs:
        entry = report.setdefault(run.rule, {"rule": run.rule, "status": "matched",
                                             "detail": None, "captures": {}, "actions": []})
        if run.action == MATCH:
            entry.update(status=run.status, detail=run.detail, captures=run.captures or {})
            if run.status == "matched":
                entry["actions"][:0] = [_delivery_action(d, names)
                                        for d in reversed(deliveries)
                                        if _rule_of(d) == run.rule]
        else:
            entry["actions"].append(await _send_action(gateway, run))
    return list(report.values())


def _rule_of(delivery: DeliveryRecord) -> str | None:
    """The rule a delivery's event was made for, if any."""
    try:
        rule = json.loads(delivery.payload).get("rule")
    except (ValueError, AttributeError):
        return None
    return rule if isinstance(rule, str) else None


def _delivery_action(delivery: DeliveryRecord, names: dict[str, str]
                     ) -> dict[str, Any]:
    if delivery.url.startswith(MQTT_URL_PREFIX):
        action, target = "mqtt", delivery.url.removeprefix(MQTT_URL_PREFIX)
    else:
        action, target = "webhook", names.get(delivery.url) or "(no longer configured)"
    return {"action": action, "target": target, "status": delivery.status,
            "message_id": None, "error": delivery.last_error}


async def _send_action(gateway: Gateway, run: RuleRun) -> dict[str, Any]:
    status, error = run.status, run.detail
    if run.outbound_message_id is not None:
        sent = await gateway.store.get_message(run.outbound_message_id)
        if sent is not None:
            status = sent.status.value
            if sent.status is MessageStatus.FAILED:
                error = " ".join(filter(None, (sent.error_code, sent.error_reason))) or None
    return {"action": run.action, "target": run.target, "status": status,
            "message_id": run.outbound_message_id, "error": error}
