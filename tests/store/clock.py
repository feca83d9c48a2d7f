"""A clock that tests move on by hand, for the store's leases and due times."""

from __future__ import annotations

import time


class FakeClock:
    """Stands still at ``now`` (epoch seconds) until ``advance`` moves it; pass it as ``clock``."""

    def __init__(self, now: float | None = None) -> None:
        # Near the real time, so that stored stamps still read as dates of today.
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` on."""
        self.now += seconds
