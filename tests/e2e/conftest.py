"""Fixtures shared by the carriers' end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

# Before the import below, so the shared helpers' asserts explain their failures.
pytest.register_assert_rewrite("tests.e2e.carriers")

from smsbridge.testing.server import RunningServer  # noqa: E402
from tests.e2e.carriers import serve_fake  # noqa: E402


@pytest.fixture
def fake_server(fake: Any) -> Iterator[RunningServer]:
    """The test module's ``fake`` carrier served on 127.0.0.1."""
    yield from serve_fake(fake.app)
