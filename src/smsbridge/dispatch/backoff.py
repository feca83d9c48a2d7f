"""The retry policy shared by the outbox and webhook deliveries."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait before try ``attempt + 1``: exponential, capped, with jitter.

    Jitter spreads a burst of failures so they do not all come back at once; a
    carrier's Retry-After is a floor.
    """
    exp = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = exp * (0.5 + (rng or random).random())  # 50%..150% of the nominal delay
    delay = min(delay, cap)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
