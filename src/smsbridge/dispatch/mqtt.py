"""One MQTT connection per process: it publishes, hands on what it subscribed to, and reconnects.

Deliveries whose url is ``mqtt:<topic>`` are published through it by the delivery worker
(QoS 1, not retained); it never queues anything itself. A publication the broker cannot take
now raises ``MqttUnavailable`` and stays in the store's outbox until the broker is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .backoff import backoff_delay

if TYPE_CHECKING:
    import aiomqtt

log = logging.getLogger("smsbridge.mqtt")

# A delivery whose url starts with this is an MQTT publication to the rest of the url.
MQTT_URL_PREFIX = "mqtt:"
# SUBACK's "failure" return code (MQTT 3.1.1, 3.9.3): the broker refused the filter.
_SUBACK_FAILURE = 0x80

OnMessage = Callable[[str, bytes], Awaitable[None]]
OnConnect = Callable[[], Awaitable[None]]


def _refused(code: object) -> bool:
    """True for a SUBACK return code that refuses the subscription."""
    if isinstance(code, int):
        return code >= _SUBACK_FAILURE
    return bool(getattr(code, "is_failure", True))


def mqtt_url(topic: str) -> str:
    """The delivery url that publishes to ``topic``."""
    return MQTT_URL_PREFIX + topic


class MqttUnavailable(Exception):
    """The broker cannot take a publication now: not connected, or no PUBACK in time."""


class PublicationRefused(Exception):
    """A publication no broker would take (a wildcard in the topic, an oversized payload)."""


@dataclass(frozen=True, slots=True)
class Broker:
    """Where the broker is and how to log in."""

    host: str
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


class MqttLink:
    """A connection to the broker kept up in the background, with subscriptions restored.

    ``subscriptions`` are topic filters; with ``share_group`` each is taken as a shared
    subscription (``$share/<group>/<filter>``) so that when several gateway processes are
    connected each message goes to one of them. A broker that refuses shared
    subscriptions gets the plain filter, with a warning.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        subscriptions: Sequence[str] = (),
        share_group: str | None = None,
        on_message: OnMessage | None = None,
        publish_timeout: float = 10.0,
        reconnect_base: float = 1.0,
        reconnect_max: float = 30.0,
        handler_concurrency: int = 16,
    ) -> None:
        self.broker = broker
        self.subscriptions = tuple(subscriptions)
        self.share_group = share_group
        self.on_message = on_message
        self.publish_timeout = publish_timeout
        self.reconnect_base = reconnect_base
        self.reconnect_max = reconnect_max
        self._on_connect: list[OnConnect] = []
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._handler_slots = asyncio.Semaphore(handler_concurrency)
        self._up = asyncio.Event()

    def add_on_connect(self, callback: OnConnect) -> None:
        """Run ``callback`` after every (re)connection, once the subscriptions are in place."""
        self._on_connect.append(callback)

    @property
    def connected(self) -> bool:
        """True while a connection to the broker is up."""
        return self._client is not None

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a connection; True when there is one."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), timeout)
        return self.connected

    def start(self) -> None:
        """Connect in the background, and keep reconnecting until stopped."""
        self._task = asyncio.create_task(self._run(), name="mqtt-link")

    async def stop(self, grace: float = 5.0) -> None:
        """Let handlers in flight finish (up to ``grace`` seconds), then disconnect."""
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=grace)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK."""
        import aiomqtt  # the server extra: only a gateway with [mqtt] needs it
        client = self._client
        if client is None:
            raise MqttUnavailable(f"not connected to the MQTT broker {self.broker}")
        try:
            await client.publish(topic, payload, qos=1, retain=retain,
                                 timeout=self.publish_timeout)
        except ValueError as exc:  # paho's checks of the topic and the payload's size
            raise PublicationRefused(str(exc)) from None
        except aiomqtt.MqttError as exc:
            raise MqttUnavailable(f"MQTT broker {self.broker}: {exc}") from None

    def _client_for_attempt(self) -> aiomqtt.Client:
        import aiomqtt  # the server extra: only a gateway with [mqtt] needs it
        # A fresh client each time: paho keeps QoS 1 messages it could not send and would
        # send them again on reconnecting, while the outbox already retries them.
        return aiomqtt.Client(
            self.broker.host, self.broker.port,
            username=self.broker.username or None, password=self.broker.password or None,
            identifier=f"smsbridge-{uuid.uuid4().hex[:12]}",
            tls_context=ssl.create_default_context() if self.broker.tls else None,
            timeout=self.publish_timeout,
        )

    async def _run(self) -> None:
        import aiomqtt  # the server extra: only a gateway with [mqtt] needs it
        failures = 0
        while True:
            try:
                async with self._client_for_attempt() as client:
                    await self._subscribe(client)
                    self._client = client
                    self._up.set()
                    failures = 0
                    log.info("connected to the MQTT broker %s", self.broker)
                    for callback in self._on_connect:
                        await self._run_callback(callback)
                    await self._receive(client)
            except Exception as exc:
                failures += 1
                was_up = self._client is not None
                self._client = None
                self._up.clear()
                delay = backoff_delay(failures, self.reconnect_base, self.reconnect_max)
                # One warning per outage; each further failed attempt only at debug level.
                level = logging.WARNING if was_up or failures == 1 else logging.DEBUG
                log.log(level, "%s the MQTT broker %s (%s); reconnecting in %.1fs",
                        "lost" if was_up else "cannot reach", self.broker, exc, delay,
                        exc_info=not isinstance(exc, aiomqtt.MqttError))
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                if self._client is not None:
                    log.info("disconnected from the MQTT broker %s", self.broker)
                self._client = None
                self._up.clear()
                raise

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        for topic_filter in self.subscriptions:
            if self.share_group is not None:
                shared = f"$share/{self.share_group}/{topic_filter}"
                granted = await client.subscribe(shared, qos=1)
                if not any(_refused(code) for code in granted):
                    continue
                log.warning("the MQTT broker %s refused the shared subscription %s; "
                            "subscribing to %s: run only one gateway process with [mqtt]",
                            self.broker, shared, topic_filter)
            await client.subscribe(topic_filter, qos=1)

    async def _run_callback(self, callback: OnConnect) -> None:
        import aiomqtt  # the server extra: only a gateway with [mqtt] needs it
        try:
            await callback()
        except aiomqtt.MqttError:
            raise
        except MqttUnavailable as exc:
            raise aiomqtt.MqttError(str(exc)) from exc
        except Exception:
            log.exception("an MQTT on-connect step failed")

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if self.on_message is None:
                continue
            payload = message.payload
            if isinstance(payload, str):
                payload = payload.encode()
            elif not isinstance(payload, bytes | bytearray):
                payload = b""
            await self._handler_slots.acquire()
            task = asyncio.create_task(self._handle(message.topic.value, bytes(payload)))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _handle(self, topic: str, payload: bytes) -> None:
        assert self.on_message is not None
        try:
            await self.on_message(topic, payload)
        except Exception:
            log.exception("handling an MQTT message on %s failed", topic)
        finally:
            self._handler_slots.release()
