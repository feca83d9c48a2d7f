"""MQTT as a face of the gateway: its topics, what events publish, sends by MQTT, HA discovery.

Topics (numbers as digits without ``+``, a wildcard in MQTT)::

    {prefix}/{digits}/inbound       every message received on that number (the message JSON)
    {prefix}/{digits}/status        every status change of a message sent from that number
    {prefix}/{digits}/send          {"to", "text", "media"?, "id"?} sends from that number
    {prefix}/{digits}/send/result   the queued message, or a problem document

Inbound and status publications are deliveries in the store's outbox (``mqtt:<topic>``),
written with the message change, so a broker outage delays them and loses none.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from ..core.errors import (
    IdempotencyKeyReused,
    InvalidInput,
    RecipientOptedOut,
    StoreUnavailable,
)
from ..core.messages import Message
from ..core.segments import replace_lone_surrogates
from ..dispatch.mqtt import (
    Broker,
    MqttLink,
    MqttUnavailable,
    PublicationRefused,
    mqtt_url,
)
from ..store.base import DeliveryDraft
from .config import MqttConfig, Settings
from .events import EventRouter

if TYPE_CHECKING:
    from .service import Gateway, MediaInput

log = logging.getLogger("smsbridge.mqtt")

# Home Assistant's default discovery prefix, and the longest state it stores (core's
# MAX_LENGTH_STATE_STATE): a longer text stays whole in the sensor's attributes.
HA_DISCOVERY_PREFIX = "homeassistant"
HA_MAX_STATE = 255
# Every gateway process subscribes to sends in this group, so that each send goes to one.
SHARE_GROUP = "smsbridge"
# The API's problem type base (api/problems.py), which this layer cannot import.
PROBLEM_BASE = "urn:smsbridge:problem:"
# An E.164 number has at most 15 digits.
_NUMBER_LEVEL = re.compile(r"[0-9]{1,15}")
_SEND_FIELDS = ("to", "text", "media", "id")
_MEDIA_FIELDS = ("url", "data", "content_type")
MAX_MEDIA_ITEMS = 10


def number_level(number: str) -> str:
    """A number as a topic level: its digits alone (``+15145550100`` -> ``15145550100``)."""
    return "".join(re.findall(r"[0-9]", number))


def send_filter(prefix: str) -> str:
    """The topic filter that sends arrive on."""
    return f"{prefix}/+/send"


class MqttRoute:
    """Inbound messages go to ``{prefix}/{to}/inbound``, receipts to ``{prefix}/{from}/status``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, event_type: str, message: Message) -> list[DeliveryDraft]:
        """The MQTT publication ``event_type`` on ``message`` causes, if any."""
        if event_type == "message.received":
            number, leaf = message.to_number, "inbound"
        elif event_type == "message.status":
            number, leaf = message.from_number, "status"
        else:
            return []
        level = number_level(number)
        if not level:  # an alphanumeric sender has no topic of its own
            return []
        return [DeliveryDraft(mqtt_url(f"{self.prefix}/{level}/{leaf}"), event_type,
                              message.id, _json(message.to_dict()))]


def add_mqtt_route(events: EventRouter, config: MqttConfig | None) -> None:
    """Make ``events`` publish to MQTT too, when [mqtt] is configured."""
    if config is not None:
        events.add_route(MqttRoute(config.topic_prefix))


def discovery_configs(settings: Settings, prefix: str) -> list[tuple[str, bytes]]:
    """Home Assistant discovery (topic, payload) pairs: a "last SMS" sensor per number."""
    from .. import __version__

    configs: list[tuple[str, bytes]] = []
    for conn in settings.connections.values():
        for number in conn.numbers:
            level = number_level(number)
            state_topic = f"{prefix}/{level}/inbound"
            config = {
                "name": "Last SMS",
                "unique_id": f"smsbridge_{level}_last_inbound",
                "state_topic": state_topic,
                "value_template": f"{{{{ value_json.text[:{HA_MAX_STATE}] }}}}",
                "json_attributes_topic": state_topic,
                "icon": "mdi:message-text",
                "device": {
                    "identifiers": [f"smsbridge_{level}"],
                    "name": f"SMS {number}",
                    "manufacturer": "smsbridge",
                    "model": f"{conn.carrier} number",
                    "sw_version": __version__,
                },
                "origin": {"name": "smsbridge", "sw_version": __version__},
            }
            topic = f"{HA_DISCOVERY_PREFIX}/sensor/smsbridge_{level}/config"
            configs.append((topic, _json(config).encode()))
    return configs


def problem_document(exc: Exception) -> dict[str, Any]:
    """The problem document the API would answer for ``exc`` (RFC 9457 fields)."""
    if isinstance(exc, RecipientOptedOut):
        return _problem(422, "opted-out", "Recipient opted out", f"{exc.field}: {exc.reason}",
                        errors=[{"field": exc.field, "reason": exc.reason}])
    if isinstance(exc, InvalidInput):
        return _problem(422, "invalid-input", "Invalid input", f"{exc.field}: {exc.reason}",
                        errors=[{"field": exc.field, "reason": exc.reason}])
    if isinstance(exc, StoreUnavailable):
        return _problem(503, "store-unavailable", "Store unavailable", exc.reason)
    return _problem(500, "internal", "Internal error",
                    "the send could not be queued; the gateway's log says why")


class MqttSends:
    """Sends asked for on ``{prefix}/{digits}/send``, answered on ``.../send/result``.

    A send is queued through ``Gateway.send``, with the API's validation and opt-out
    refusal. The request's optional ``id`` is its Idempotency-Key (scoped to the sending
    number): QoS 1 may deliver a request twice, and the same ``id`` queues it once.
    """

    def __init__(self, gateway: Gateway, link: MqttLink, prefix: str, max_bytes: int) -> None:
        self.gateway = gateway
        self.link = link
        self.prefix = prefix
        self.max_bytes = max_bytes

    async def on_message(self, topic: str, payload: bytes) -> None:
        """Queue the send ``payload`` asks for and publish what came of it."""
        level = self._number_level_of(topic)
        if level is None:
            return
        request_id: str | None = None
        try:
            body = self._parse(payload)
            request_id = _request_id(body)
            result = await self._send(level, body, request_id)
        except Exception as exc:
            if not isinstance(exc, InvalidInput | StoreUnavailable):
                log.exception("an MQTT send on %s failed", topic)
            result = problem_document(exc)
        if request_id is not None:
            result["request_id"] = request_id
        result_topic = f"{self.prefix}/{level}/send/result"
        try:
            await self.link.publish(result_topic, _json(result).encode())
        except (MqttUnavailable, PublicationRefused) as exc:
            log.warning("could not publish the result of an MQTT send to %s: %s",
                        result_topic, exc)

    def _number_level_of(self, topic: str) -> str | None:
        """The number level of a send topic; None for a topic that is not one."""
        head, sep, rest = topic.partition(self.prefix + "/")
        level, _, leaf = rest.partition("/")
        if head or not sep or leaf != "send" or not level:
            return None
        return level

    def _parse(self, payload: bytes) -> dict[str, Any]:
        if len(payload) > self.max_bytes:
            raise InvalidInput("body", f"is {len(payload)} bytes; the limit is {self.max_bytes}")
        try:
            body = json.loads(payload)
        except RecursionError:
            raise InvalidInput("body", "nests too deeply") from None
        except ValueError:  # JSONDecodeError, and UnicodeDecodeError for bytes that are not UTF-8
            raise InvalidInput("body", "is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidInput("body", 'must be a JSON object such as {"to": "+15145550111", '
                                       '"text": "hello"}')
        return body

    async def _send(self, level: str, body: dict[str, Any], request_id: str | None
                    ) -> dict[str, Any]:
        # service.py imports this module (to register the route), so not at the top.
        from .service import SendRequest

        if not _NUMBER_LEVEL.fullmatch(level):
            raise InvalidInput("from", f"the topic level {level!r} must be the sending number's "
                                       "digits, without '+'")
        for key in body:
            if key not in _SEND_FIELDS:
                hint = ("the sending number is the topic's" if key == "from"
                        else f"the fields are {', '.join(_SEND_FIELDS)}")
                raise InvalidInput(key, f"is not a field of an MQTT send; {hint}")
        to = body.get("to")
        if not isinstance(to, str):
            raise InvalidInput("to", "is required: the recipient's number, as a string")
        text = body.get("text", "")
        if not isinstance(text, str):
            raise InvalidInput("text", "must be a string")
        request = SendRequest(from_number=f"+{level}", to_number=to,
                              text=text,
                              media=_media(body.get("media", [])))
        try:
            message, _ = await self.gateway.send(request, request_id, scope=f"mqtt:{level}")
        except IdempotencyKeyReused as exc:
            raise InvalidInput("id", exc.reason) from None
        return message.to_dict()


def _request_id(body: dict[str, Any]) -> str | None:
    """The request's ``id`` (its Idempotency-Key), checked; None when it gave none."""
    value = body.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 255 or any(
            ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput("id", "must be a string of 1 to 255 characters, none of them "
                                 "control characters")
    return value


def _media(value: object) -> list[MediaInput]:
    """The ``media`` list of a send, in the API's shape: ``{url}`` or ``{data, content_type}``."""
    from .service import MediaInput

    if not isinstance(value, list):
        raise InvalidInput("media", "must be a list of attachments")
    if len(value) > MAX_MEDIA_ITEMS:
        raise InvalidInput("media", f"takes at most {MAX_MEDIA_ITEMS} attachments")
    items: list[MediaInput] = []
    for index, item in enumerate(value):
        key = f"media[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(key, "must be an object with url, or data and content_type")
        for field in item:
            if field not in _MEDIA_FIELDS:
                raise InvalidInput(f"{key}.{field}", "is not a field of an attachment")
        fields = {name: item.get(name) for name in _MEDIA_FIELDS}
        for name, field_value in fields.items():
            if field_value is not None and not isinstance(field_value, str):
                raise InvalidInput(f"{key}.{name}", "must be a string")
        items.append(MediaInput(url=fields["url"], data_base64=fields["data"],
                                content_type=fields["content_type"]))
    return items


def build_link(config: MqttConfig, gateway: Gateway, *, reconnect_max: float = 30.0
               ) -> MqttLink:
    """The process's MQTT connection: publishes, takes sends, and announces to HA."""
    broker = Broker(config.host, config.port, config.tls, config.username or None,
                    config.password.get_secret_value() or None)
    link = MqttLink(broker, subscriptions=[send_filter(config.topic_prefix)],
                    share_group=SHARE_GROUP, reconnect_max=reconnect_max)
    sends = MqttSends(gateway, link, config.topic_prefix,
                      gateway.settings.server.max_body_bytes)
    link.on_message = sends.on_message
    if config.discovery:
        configs = discovery_configs(gateway.settings, config.topic_prefix)

        async def announce() -> None:
            # Retained, so Home Assistant finds them whenever it (re)starts.
            for topic, payload in configs:
                await link.publish(topic, payload, retain=True)

        link.add_on_connect(announce)
    return link


def _problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail,
            **extra}


def _json(value: object) -> str:
    # A problem's detail may quote the input, and input may hold half an emoji.
    return replace_lone_surrogates(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
