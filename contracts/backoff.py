"""Reconnect delays: exponential, capped, with full jitter so boxes don't reconnect in step."""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff_delays(first_s: float, cap_s: float, *, rng: random.Random | None = None) -> Iterator[float]:
    """Endless delays: uniform in [first/2, min(cap, first × 2^n)] for attempt n."""
    rng = rng or random.Random()
    ceiling = first_s
    while True:
        yield rng.uniform(first_s / 2, ceiling)
        ceiling = min(cap_s, ceiling * 2)
