"""Telemetry committed in groups: one transaction (one fsync) per group, not per poll.

A group is committed as soon as the uplink has sent everything committed
before it (the wire is idle), after ``coalesce_s`` so the rest of a poll round
joins it; when it is full; or at the latest ``interval_s`` after its first
message (the uplink is down or draining a backlog, and more waiting makes
bigger, cheaper groups). So telemetry waits for the disk only as long as the
wire would have made it wait anyway.

Events never wait here: the alarm book commits each one on its own before it
is sent. Telemetry not yet committed when the power goes is at most one
group, which was never acknowledged to anyone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from contracts.compat import wait_set
from gateway.outbox.store import Outbox, Priority


class TelemetryBatcher:
    """Collects telemetry messages and commits them together (see the module's docstring)."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        interval_s: float = 1.0,
        coalesce_s: float = 0.02,
        max_messages: int = 1000,
    ) -> None:
        self._outbox = outbox
        self._interval_s = interval_s
        self._coalesce_s = min(coalesce_s, interval_s)
        self._max_messages = max_messages
        self._waiting: list[tuple[Priority, str, Mapping[str, Any], bool]] = []
        self._added = asyncio.Event()
        self.groups = 0  # committed, for the metrics

    def add(self, topic: str, body: Mapping[str, Any]) -> None:
        """Queue one telemetry message; commits at once when the group is full."""
        self._waiting.append((Priority.TELEMETRY, topic, body, False))
        self._added.set()
        if len(self._waiting) >= self._max_messages:
            self.flush()

    def flush(self) -> None:
        """Commit what is waiting, in one transaction."""
        self._added.clear()
        if self._waiting:
            waiting, self._waiting = self._waiting, []
            self._outbox.enqueue_many(waiting)
            self.groups += 1

    async def run(self) -> None:
        """Commit each group when it is due, until cancelled; commit the rest when cancelled."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._added.wait()
                due = loop.time() + self._interval_s
                await wait_set(self._outbox.wire_idle, self._interval_s)
                await asyncio.sleep(max(0.0, min(self._coalesce_s, due - loop.time())))
                self.flush()
        finally:
            self.flush()
