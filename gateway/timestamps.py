"""Timestamps as published: ISO 8601, UTC, millisecond precision."""

from __future__ import annotations

from datetime import datetime, timezone


def iso_utc(ts: float) -> str:
    """``2026-11-22T10:00:00.123Z`` for Unix time ``ts``."""
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
