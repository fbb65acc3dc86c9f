"""核查 (verify): has a condition stayed cleared for the time its category requires?

The answer is built from what the channel watch saw, never assumed: a channel
that went silent for longer than ``verify_max_gap_s`` restarts the clock, and
one not heard from recently cannot be verified at all (``no_data``). A
condition still present says by how much it exceeds the limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gateway.events.watch import ChannelWatch
from gateway.timestamps import iso_utc

PRESENT = "present"
CLEARED = "cleared"
NOT_LONG_ENOUGH = "not_long_enough"
NO_DATA = "no_data"
_WORST_FIRST = (PRESENT, NO_DATA, NOT_LONG_ENOUGH, CLEARED)


def verify_slots(watch: ChannelWatch, slots: Sequence[int], *, hold_s: float, now: float) -> dict[str, Any]:
    """The verify answer for the rules in ``slots`` (one device and category)."""
    checks = [_check(watch, slot, hold_s=hold_s, now=now) for slot in slots]
    condition = min((c["condition"] for c in checks), key=_WORST_FIRST.index)
    return {
        "verified": condition == CLEARED,
        "condition": condition,
        "hold_s": hold_s,
        "checks": checks,
    }


def _check(watch: ChannelWatch, slot: int, *, hold_s: float, now: float) -> dict[str, Any]:
    rule = watch.rules[slot]
    value = float(watch.last_value[slot])
    last_seen = float(watch.last_seen[slot])
    check: dict[str, Any] = {
        "channel": rule.channel,
        "high": rule.high,
        "low": rule.low,
        "value": None if math.isnan(value) else value,
        "last_seen": iso_utc(last_seen) if math.isfinite(last_seen) else None,
    }
    clear_since = max(float(watch.last_beyond[slot]), float(watch.watched_since[slot]))
    if not math.isfinite(last_seen) or now - last_seen > watch.max_gap_s:
        check["condition"] = NO_DATA
        check["clear_for_s"] = 0.0
    elif float(watch.last_beyond[slot]) == last_seen:
        check["condition"] = PRESENT
        check["clear_for_s"] = 0.0
        check["excess"] = _excess(value, rule.high, rule.low)
    else:
        clear_for = max(0.0, now - clear_since)
        check["clear_for_s"] = round(clear_for, 3)
        check["condition"] = CLEARED if clear_for >= hold_s else NOT_LONG_ENOUGH
    check["recent"] = [{"ts": iso_utc(ts), "value": v} for ts, v in watch.recent(slot)]
    return check


def _excess(value: float, high: float | None, low: float | None) -> float:
    """How far past its limit ``value`` is (positive)."""
    if high is not None and value > high:
        return round(value - high, 6)
    assert low is not None
    return round(low - value, 6)
