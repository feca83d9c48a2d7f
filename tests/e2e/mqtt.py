"""Real Mosquitto brokers for the MQTT tests, and an aiomqtt client that records what it hears.

The shared broker is the one scripts/services keeps on 127.0.0.1:1883; a test that stops
and restarts its broker starts one of its own on a free port instead, so that no other
test is disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from smsbridge.testing.server import free_port

SHARED_PORT = 1883


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def mosquitto_tool(name: str = "mosquitto") -> str:
    """A program of the mosquitto package (Debian puts the broker itself in /usr/sbin)."""
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        raise AssertionError(f"{name} is not installed; scripts/services installs mosquitto")
    return found


@dataclass
class PrivateBroker:
    """A Mosquitto of the test's own on 127.0.0.1, that the test may stop and start again.

    It keeps its sessions on disk across a restart, as a broker with persistence does, so a
    subscriber that was away gets what was published to it meanwhile.
    """

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # (username, password): only that login is let in; None lets anyone in.
    login: tuple[str, str] | None = None

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        config = self.folder / "mosquitto.conf"
        access = "allow_anonymous true\n"
        if self.login is not None:
            passwords = self.folder / "passwords"
            subprocess.run([mosquitto_tool("mosquitto_passwd"), "-c", "-b", str(passwords),
                            *self.login], check=True, capture_output=True)
            access = f"allow_anonymous false\npassword_file {passwords}\n"
        config.write_text(
            # Run as root, mosquitto would otherwise switch to its own user, which cannot
            # write its sessions and log into the test's folder.
            "user root\n"
            f"listener {self.port} 127.0.0.1\n"
            + access +
            "persistence true\n"
            f"persistence_location {self.folder}/\n"
            f"log_dest file {self.folder}/mosquitto.log\n")
        self.process = subprocess.Popen([mosquitto_tool(), "-c", str(config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.folder / "mosquitto.log")
                raise AssertionError("mosquitto did not start: " +
                                     (log.read_text() if log.exists() else "no log"))
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it (it saves its sessions) and wait until the port is closed."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@dataclass
class Heard:
    """One message a test client received."""

    topic: str
    payload: bytes
    retain: bool
    qos: int

    def json(self) -> Any:
        """The payload as JSON."""
        return json.loads(self.payload)


class Listener:
    """An MQTT client that subscribes to ``topic_filter`` (QoS 1) and records every message.

    It reconnects by itself; with ``keep_session`` the broker keeps its session while it is
    away (and across a restart of a broker with persistence), so that nothing published to
    it meanwhile is lost. Only a private broker gets such sessions: they outlive the test.
    """

    def __init__(self, port: int, topic_filter: str, *, keep_session: bool = False,
                 login: tuple[str, str] | None = None) -> None:
        self.port = port
        self.topic_filter = topic_filter
        self.keep_session = keep_session
        self.login = login
        self.heard: list[Heard] = []
        self.identifier = f"test-listener-{uuid.uuid4().hex[:10]}"
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def __aenter__(self) -> Listener:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._subscribed.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                username, password = self.login or (None, None)
                async with aiomqtt.Client("127.0.0.1", self.port, identifier=self.identifier,
                                          clean_session=not self.keep_session,
                                          username=username, password=password) as client:
                    await client.subscribe(self.topic_filter, qos=1)
                    self._subscribed.set()
                    async for message in client.messages:
                        payload = message.payload
                        self.heard.append(Heard(
                            message.topic.value,
                            payload if isinstance(payload, bytes) else str(payload).encode(),
                            bool(message.retain), int(message.qos)))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    def on(self, topic: str) -> list[Heard]:
        """What was heard on ``topic``, in order."""
        return [h for h in self.heard if h.topic == topic]

    async def wait_for(self, check: Callable[[list[Heard]], bool], timeout: float = 20.0
                       ) -> list[Heard]:
        """Wait until ``check(self.heard)`` holds; the messages heard so far."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not check(self.heard):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not heard within {timeout}s; heard: "
                                     f"{[(h.topic, h.payload[:200]) for h in self.heard]}")
            await asyncio.sleep(0.05)
        return list(self.heard)


async def publish(port: int, topic: str, payload: object) -> None:
    """Publish ``payload`` (JSON unless bytes) once, QoS 1, as a separate client would."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.publish(topic, body, qos=1)


def unique_prefix() -> str:
    """A topic prefix no other test uses on the shared broker."""
    return f"smsbridge-test-{uuid.uuid4().hex[:10]}"
