"""What the outbox tells the command center about itself: gaps, resets, a full disk.

Notices travel on ``{root}/notices`` at event priority, because they explain
missing data and a subscriber should learn of a gap before it sees the data
around it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gateway.timestamps import iso_utc

NOTICES_TOPIC = "notices"

_PRIORITY_NAMES = {0: "event", 1: "state", 2: "telemetry"}


@dataclass
class GapLedger:
    """Messages dropped since the last gap report: how many, how big, which time range."""

    priority: int
    reason: str
    dropped: int = 0
    size: int = 0
    first: float = float("inf")
    last: float = float("-inf")
    topics: dict[str, int] = field(default_factory=dict)

    def add(self, topic: str, size: int, created: float) -> None:
        self.dropped += 1
        self.size += size
        self.first = min(self.first, created)
        self.last = max(self.last, created)
        self.topics[topic] = self.topics.get(topic, 0) + 1

    def merge(self, other: GapLedger) -> None:
        """Count what ``other`` counted as well."""
        self.dropped += other.dropped
        self.size += other.size
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)
        for topic, count in other.topics.items():
            self.topics[topic] = self.topics.get(topic, 0) + count

    def body(self) -> dict[str, Any]:
        """The gap notice for what this ledger counted."""
        return {
            "ts": iso_utc(time.time()),
            "notice": "gap",
            "reason": self.reason,
            "kind": _PRIORITY_NAMES[self.priority],
            "dropped": self.dropped,
            "bytes": self.size,
            "from": iso_utc(self.first),
            "to": iso_utc(self.last),
            "topics": dict(sorted(self.topics.items())),
        }


def outbox_reset(reason: str, moved_to: str | None, *, open_events: int) -> dict[str, Any]:
    """The notice that the outbox database was damaged or lost and a fresh one was started."""
    return {
        "ts": iso_utc(time.time()),
        "notice": "outbox_reset",
        "reason": reason,
        "moved_to": moved_to,
        "open_events": open_events,
    }


def storage_full(reason: str, held_in_memory: int) -> dict[str, Any]:
    """The notice that the disk refused a write: telemetry is shed, events held in memory."""
    return {
        "ts": iso_utc(time.time()),
        "notice": "storage_full",
        "reason": reason,
        "held_in_memory": held_in_memory,
    }
