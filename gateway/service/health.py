"""The gateway about itself, every ``[uplink] health_s``: buffer, devices, uplink, detection, events, cost.

The same summary as the metrics endpoint (gateway/web/metrics.py), read from
the same counters: those are totals since start, and here the rates are over
the time since the previous health message, so that a command center without
Prometheus sees the publish rate, PUBACK latency and detection time too.

It is the liveness a command center can trust when the Last Will cannot be:
the will lives on the broker node the gateway was connected to and dies with
it, whereas a retained health says by when the next one is due (``next_by``)
and, under MQTT 5, expires on the broker at that time.

Published retained on ``health`` through the outbox like everything else, so a
command center sees the latest on subscribing, and after an outage the
history of the gateway's health arrives too (flagged historical). It is also
published on every (re)connection, so a broker that lost it has it at once.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.driver import StreamDriver
from gateway.outbox import Outbox, Priority
from gateway.poll import PollPacing
from gateway.poll.availability import Availability
from gateway.service.pipeline import Pipeline
from gateway.service.supervisor import Supervisor
from gateway.timestamps import iso_utc
from gateway.uplink import UplinkClient

HEALTH_TOPIC = "health"
MISSED_BEFORE_STALE = 2  # next_by: health intervals after ts; one late or lost health is no alarm
FIRST_AFTER_S = 5.0
EVENT_CLASSES = ("alarm", "fault", "anomaly")
DEVICE_STATES = ("online", "offline", "faulty", "unknown")

OpenEvents = Callable[[], Iterable[dict[str, Any]]]


@dataclass(frozen=True)
class _Totals:
    """The counters health turns into rates, read at one moment (monotonic ``at``)."""

    at: float
    published: int
    puback_s: float
    batches: int
    detect_s: float
    cpu_s: float


class HealthReport:
    """Publishes the gateway's health every ``every_s`` and whenever asked (on a connection)."""

    def __init__(
        self,
        outbox: Outbox,
        devices: Sequence[Availability],
        directory: Path,
        supervisor: Supervisor,
        *,
        uplink: UplinkClient,
        pipeline: Pipeline,
        open_events: OpenEvents,
        every_s: float,
        streams: Sequence[StreamDriver] = (),
        pacing: PollPacing | None = None,
    ) -> None:
        self._streams = streams
        self._pacing = pacing
        self._outbox = outbox
        self._devices = devices
        self._directory = directory
        self._supervisor = supervisor
        self._uplink = uplink
        self._pipeline = pipeline
        self._open_events = open_events
        self._every_s = every_s
        self._started = time.time()
        self._last = self._totals()

    def body(self) -> dict[str, Any]:
        """One health message (docs/schemas/health.json); rates since the previous one."""
        states = Counter(d.state or "unknown" for d in self._devices)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        now, last = self._totals(), self._last
        self._last = now
        elapsed = now.at - last.at
        uplink = self._uplink
        wall = time.time()
        return {
            "ts": iso_utc(wall),
            "interval_s": self._every_s,
            "next_by": iso_utc(wall + MISSED_BEFORE_STALE * self._every_s),
            "uptime_s": round(wall - self._started, 1),
            "outbox": {
                "pending": self._outbox.pending(),
                "bytes": self._outbox.bytes_used,
                "max_bytes": self._outbox.max_bytes,
            },
            "devices": {state: states.get(state, 0) for state in DEVICE_STATES},
            "process": {
                "rss_mb": round(rss_bytes() / (1024 * 1024), 1),
                "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
                "cpu_s": round(now.cpu_s, 2),
                "cpu_percent": _per(100 * (now.cpu_s - last.cpu_s), elapsed, digits=2),
            },
            "storage": "full" if self._outbox.disk_full else "ok",
            "storage_free_bytes": shutil.disk_usage(self._directory).free,
            "load_1m": round(os.getloadavg()[0], 2),
            "faults": self._supervisor.as_dict(),
            "uplink": {
                "connected": uplink.connected.is_set(),
                "connections": uplink.connections,
                "reconnects": max(uplink.connections - 1, 0),
                "published": now.published,
                "published_per_s": _per(now.published - last.published, elapsed, digits=2),
                "puback_ms": _per(1000 * (now.puback_s - last.puback_s), now.published - last.published),
                "refused": uplink.refused.count,
                "polls_held_back": 0 if self._pacing is None else self._pacing.held_back,
            },
            "detection": {
                "batches": now.batches,
                "ms_per_batch": _per(1000 * (now.detect_s - last.detect_s), now.batches - last.batches),
            },
            "events": events_by_class_and_state(self._open_events()),
            **_inputs(self._streams),
        }

    def publish(self) -> None:
        self._outbox.enqueue(Priority.STATE, HEALTH_TOPIC, self.body(), retain=True)

    async def run(self) -> None:
        """Publish soon after start (devices polled by then), then every ``every_s``."""
        await asyncio.sleep(min(self._every_s, FIRST_AFTER_S))
        while True:
            self.publish()
            await asyncio.sleep(self._every_s)

    def _totals(self) -> _Totals:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return _Totals(
            at=time.monotonic(),
            published=self._uplink.acknowledged,
            puback_s=self._uplink.puback_s_total,
            batches=self._pipeline.batches,
            detect_s=self._pipeline.detect_s_total,
            cpu_s=usage.ru_utime + usage.ru_stime,
        )


def open_event_counts(events: Iterable[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """Open events by (class, state, severity): what health and the metrics both count."""
    return Counter((str(e["class"]), str(e["state"]), str(e["severity"])) for e in events)


def events_by_class_and_state(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Open events: class → state → how many (every class present, states only when some are)."""
    found: dict[str, dict[str, int]] = {kind: {} for kind in EVENT_CLASSES}
    for (kind, state, _), count in open_event_counts(events).items():
        states = found.setdefault(kind, {})
        states[state] = states.get(state, 0) + count
    return found


def _per(amount: float, count: float, *, digits: int = 3) -> float | None:
    """``amount / count`` rounded; None when there is nothing to divide by (nothing happened)."""
    return round(amount / count, digits) if count > 0 else None


def rss_bytes() -> int:
    """Resident memory now (ru_maxrss is only the peak)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return pages * os.sysconf("SC_PAGE_SIZE")


def _inputs(streams: Sequence[StreamDriver]) -> dict[str, Any]:
    """``inputs``: what each stream says of itself, when any says something."""
    said = {stream.name: status for stream in streams if (status := stream.status())}
    return {"inputs": said} if said else {}
