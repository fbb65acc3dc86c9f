"""Telemetry committed in groups: one transaction (one fsync) per interval, not per poll.

Events never wait here: the alarm book commits each one on its own before it
is sent. Telemetry not yet committed when the power goes is at most one
interval's worth, which is what the batching trades for a disk that lasts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from gateway.outbox.store import Outbox, Priority


class TelemetryBatcher:
    """Collects telemetry messages and commits them together every ``interval_s``."""

    def __init__(self, outbox: Outbox, *, interval_s: float = 1.0, max_messages: int = 1000) -> None:
        self._outbox = outbox
        self._interval_s = interval_s
        self._max_messages = max_messages
        self._waiting: list[tuple[Priority, str, Mapping[str, Any], bool]] = []

    def add(self, topic: str, body: Mapping[str, Any]) -> None:
        """Queue one telemetry message; commits at once when the group is full."""
        self._waiting.append((Priority.TELEMETRY, topic, body, False))
        if len(self._waiting) >= self._max_messages:
            self.flush()

    def flush(self) -> None:
        """Commit what is waiting, in one transaction."""
        if self._waiting:
            waiting, self._waiting = self._waiting, []
            self._outbox.enqueue_many(waiting)

    async def run(self) -> None:
        """Commit every interval until cancelled; commit the rest when cancelled."""
        try:
            while True:
                await asyncio.sleep(self._interval_s)
                self.flush()
        finally:
            self.flush()
