"""Timestamps as published: ISO 8601, UTC, millisecond precision."""

from __future__ import annotations

import math
import time

_last_second: int | None = None
_last_prefix = ""


def iso_utc(ts: float) -> str:
    """``2026-11-22T10:00:00.123Z`` for Unix time ``ts``.

    The same text as ``datetime.fromtimestamp(ts, timezone.utc)`` gives (microseconds
    rounded half to even, then cut to milliseconds), with the date and time of the
    last second kept: every telemetry message and event formats one, mostly within
    the same second, and building a datetime for each was a few percent of the CPU.
    """
    global _last_second, _last_prefix
    fraction, whole = math.modf(ts)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1_000_000
    second = int(whole)
    if second != _last_second:
        _last_prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        _last_second = second
    return f"{_last_prefix}{micro // 1000:03d}Z"
