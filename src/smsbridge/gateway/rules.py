"""Inbound rules, as a pure evaluation: which [[rules]] a message matches, and their texts.

Rules are tried in config order. A rule applies to a message sent to one of its ``to``
numbers (or on its ``connection``); it matches when the trimmed text matches its
``pattern`` (case-insensitive unless ``case_sensitive``) or equals its ``keyword``. A match
from a sender outside the rule's ``from`` is kept as such (the rule does nothing for it)
and the next rule is tried; the first match from an allowed sender ends the evaluation
unless its rule says ``continue``. An opt-out keyword (STOP, START, HELP ...) on a number
where opt-out is on never reaches the rules: the opt-out handler answers it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import InvalidInput
from ..core.messages import Direction, Message, MessageStatus
from ..core.phone import to_e164
from .config import GatewayConfig, OptoutConfig, RuleConfig, Settings
from .optouts import keyword_of

Captures = dict[str, str | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """A [[rules]] entry ready to match: its numbers in E.164 and its pattern compiled."""

    name: str
    receivers: frozenset[str] | None  # None: any of our numbers
    connection: str | None
    senders: frozenset[str] | None  # None: anyone
    senders_named: str  # how the config names the allowed senders, for logs and the API
    pattern: re.Pattern[str] | None
    keyword: str | None
    case_sensitive: bool
    webhooks: tuple[str, ...]
    reply: str | None
    forward_to: tuple[str, ...]
    mqtt: bool
    keep_going: bool

    def receives(self, message: Message) -> bool:
        """Whether ``message`` came in on a number or connection this rule listens to."""
        if self.connection is not None and message.connection != self.connection:
            return False
        return self.receivers is None or message.to_number in self.receivers

    def captures(self, text: str) -> Captures | None:
        """The named groups when ``text`` matches (empty for a keyword), else None."""
        text = text.strip()
        if self.keyword is not None:
            same = (text == self.keyword if self.case_sensitive
                    else text.casefold() == self.keyword.casefold())
            return {} if same else None
        if self.pattern is None:
            return {}
        found = self.pattern.search(text)
        return None if found is None else found.groupdict()

    def allows(self, sender: str) -> bool:
        """Whether ``sender`` may set this rule off."""
        return self.senders is None or sender in self.senders


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule whose text matched a message, its captures, and whether the sender may use it."""

    rule: Rule
    captures: Captures
    allowed: bool


class RuleBook:
    """The configured rules in order."""

    def __init__(self, rules: Sequence[Rule], optout: OptoutConfig | None = None) -> None:
        self.rules = tuple(rules)
        self._optout = optout

    @classmethod
    def from_config(cls, config: GatewayConfig) -> RuleBook:
        """Compile the [[rules]] of a validated config (numbers normalised, patterns built)."""
        region = config.server.default_region
        return cls([_compile(rule, config.sender_groups, region) for rule in config.rules],
                   config.optout)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def left_to_optout(self, message: Message) -> bool:
        """Whether ``message`` is an opt-out keyword the opt-out handler answers instead."""
        if self._optout is None or keyword_of(message.text) is None:
            return False
        return self._optout.policy(message.connection, message.to_number).enabled

    def evaluate(self, message: Message) -> list[RuleHit]:
        """The rules ``message`` matches, in order, up to the first allowed one that stops."""
        if not self.rules or self.left_to_optout(message):
            return []
        hits: list[RuleHit] = []
        for rule in self.rules:
            if not rule.receives(message):
                continue
            captures = rule.captures(message.text)
            if captures is None:
                continue
            allowed = rule.allows(message.from_number)
            hits.append(RuleHit(rule, captures, allowed))
            if allowed and not rule.keep_going:
                break
        return hits


def render(template: str, captures: Captures, message: Message) -> str:
    """A reply template filled in with the captures and the message's from, to and text."""
    values = {name: value or "" for name, value in captures.items()}
    values.update({"from": message.from_number, "to": message.to_number,
                   "text": message.text.strip()})
    return template.format_map(values)


def rule_topic(prefix: str, rule: str) -> str:
    """The MQTT topic a rule with ``mqtt = true`` publishes its matches to."""
    return f"{prefix}/rules/{rule}"


def forward_text(message: Message) -> str:
    """The copy of ``message`` a rule forwards: its text after who sent it."""
    text = f"From {message.from_number}: {message.text.strip()}"
    if message.media:
        count = len(message.media)
        text += f" [{count} attachment{'s' if count > 1 else ''} not forwarded]"
    return text


def preview(settings: Settings, from_number: str, to_number: str, text: str,
            connection: str | None = None) -> dict[str, Any]:
    """What the rules would do with a message, for `smsbridge rules test`; nothing is done.

    Numbers are normalised as the gateway does; the connection is ``connection``, else the
    one that owns ``to_number`` (InvalidInput names the field when there is neither).
    """
    region = settings.server.default_region
    sender = to_e164(from_number, region, field="from")
    receiver = to_e164(to_number, region, field="to")
    if connection is not None and connection not in settings.connections:
        raise InvalidInput("connection", f"no connection named {connection!r}")
    owner = settings.number_owner.get(receiver)
    name = connection or (owner.name if owner is not None else None)
    if name is None:
        raise InvalidInput("to", f"{receiver} is not a number of any connection; give "
                                 "--connection")
    message = Message(id="msg_rules_test", direction=Direction.INBOUND, connection=name,
                      carrier=settings.connections[name].carrier, from_number=sender,
                      to_number=receiver, text=text, status=MessageStatus.RECEIVED)
    book = RuleBook.from_config(settings.config)
    mqtt = settings.config.mqtt
    hits = book.evaluate(message)
    return {
        "from": sender, "to": receiver, "connection": name,
        "optout_keyword": book.left_to_optout(message),
        "rules": [_preview_hit(hit, message, mqtt.topic_prefix if mqtt else None)
                  for hit in hits],
        "default_route": not any(hit.allowed for hit in hits),
    }


def _preview_hit(hit: RuleHit, message: Message, mqtt_prefix: str | None) -> dict[str, Any]:
    rule = hit.rule
    if not hit.allowed:
        return {"rule": rule.name, "fires": False,
                "reason": f"{message.from_number} is not in {rule.senders_named}"}
    return {
        "rule": rule.name, "fires": True, "captures": hit.captures,
        "webhooks": list(rule.webhooks),
        "mqtt_topic": (rule_topic(mqtt_prefix, rule.name)
                       if rule.mqtt and mqtt_prefix is not None else None),
        "reply": (None if rule.reply is None else
                  {"to": message.from_number, "text": render(rule.reply, hit.captures,
                                                              message)}),
        "forwards": [{"to": target, "text": forward_text(message)}
                     for target in rule.forward_to],
    }


def _compile(rule: RuleConfig, groups: dict[str, list[str]], region: str) -> Rule:
    flags = 0 if rule.case_sensitive else re.IGNORECASE
    if isinstance(rule.from_, str):
        senders: frozenset[str] | None = frozenset(
            to_e164(n, region) for n in groups[rule.from_])
        senders_named = f"sender group {rule.from_!r}"
    elif rule.from_ is not None:
        senders = frozenset(to_e164(n, region) for n in rule.from_)
        senders_named = "the rule's from list"
    else:
        senders, senders_named = None, "anyone"
    return Rule(
        name=rule.name,
        receivers=None if rule.to is None else frozenset(to_e164(n, region) for n in rule.to),
        connection=rule.connection,
        senders=senders,
        senders_named=senders_named,
        pattern=None if rule.pattern is None else re.compile(rule.pattern, flags),
        keyword=None if rule.keyword is None else rule.keyword.strip(),
        case_sensitive=rule.case_sensitive,
        webhooks=tuple(rule.webhooks),
        reply=rule.reply,
        forward_to=tuple(to_e164(n, region) for n in rule.forward_to),
        mqtt=rule.mqtt,
        keep_going=rule.continue_,
    )
