"""Fixtures shared by the carriers' end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from smsbridge.testing.server import RunningServer
from tests.e2e.carriers import serve_fake
from tests.receiver import WebhookReceiver


@pytest.fixture
def fake_server(fake: Any) -> Iterator[RunningServer]:
    """The test module's ``fake`` carrier served on 127.0.0.1."""
    yield from serve_fake(fake.app)


@pytest.fixture
def receiver() -> WebhookReceiver:
    """An app that records the signed webhooks the gateway delivers to it."""
    return WebhookReceiver()


@pytest.fixture
def app_server(receiver: WebhookReceiver) -> Iterator[RunningServer]:
    """``receiver`` served on 127.0.0.1; its webhook URL is ``{url}/hook``."""
    yield from serve_fake(receiver.app)
