"""Fixtures shared by the carriers' provider tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smsbridge.testing.server import RunningServer
from tests.providers.replay import Replay, serve_replay


@pytest.fixture(scope="module")
def replay_server(new_replay: Replay) -> Iterator[tuple[Replay, RunningServer]]:
    """The test module's ``new_replay`` served on 127.0.0.1 for the whole module."""
    yield from serve_replay(new_replay)


@pytest.fixture
def replay(replay_server: tuple[Replay, RunningServer]) -> Replay:
    """The module's replay server, back to its default answer and with nothing seen."""
    replay_server[0].reset()
    return replay_server[0]
