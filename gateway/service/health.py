"""The gateway about itself, every ``[uplink] health_s``: buffer, devices, and what it costs.

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.outbox import Outbox, Priority
from gateway.poll import DevicePoller
from gateway.service.supervisor import Supervisor
from gateway.timestamps import iso_utc

HEALTH_TOPIC = "health"
FIRST_AFTER_S = 5.0
MISSED_BEFORE_STALE = 2  # next_by: health intervals after ts; one late or lost health is no alarm


def health_body(
    outbox: Outbox,
    pollers: Sequence[DevicePoller],
    directory: Path,
    started: float,
    supervisor: Supervisor,
    *,
    every_s: float,
) -> dict[str, Any]:
    """One health message (docs/schemas/health.json)."""
    states = Counter(p.state or "unknown" for p in pollers)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    now = time.time()
    return {
        "ts": iso_utc(now),
        "interval_s": every_s,
        "next_by": iso_utc(now + MISSED_BEFORE_STALE * every_s),
        "uptime_s": round(now - started, 1),
        "outbox": {
            "pending": outbox.pending(),
            "bytes": outbox.bytes_used,
            "max_bytes": outbox.max_bytes,
        },
        "devices": {state: states.get(state, 0) for state in ("online", "offline", "faulty", "unknown")},
        "process": {
            "rss_mb": round(rss_bytes() / (1024 * 1024), 1),
            "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        },
        "storage": "full" if outbox.disk_full else "ok",
        "storage_free_bytes": shutil.disk_usage(directory).free,
        "load_1m": round(os.getloadavg()[0], 2),
        "faults": supervisor.as_dict(),
    }


class HealthReport:
    """Publishes the gateway's health every ``every_s`` and whenever asked (on a connection)."""

    def __init__(
        self,
        outbox: Outbox,
        pollers: Sequence[DevicePoller],
        directory: Path,
        supervisor: Supervisor,
        *,
        every_s: float,
    ) -> None:
        self._outbox = outbox
        self._pollers = pollers
        self._directory = directory
        self._supervisor = supervisor
        self._every_s = every_s
        self._started = time.time()

    def publish(self) -> None:
        body = health_body(
            self._outbox,
            self._pollers,
            self._directory,
            self._started,
            self._supervisor,
            every_s=self._every_s,
        )
        self._outbox.enqueue(Priority.STATE, HEALTH_TOPIC, body, retain=True)

    async def run(self) -> None:
        """Publish soon after start (devices polled by then), then every ``every_s``."""
        await asyncio.sleep(min(self._every_s, FIRST_AFTER_S))
        while True:
            self.publish()
            await asyncio.sleep(self._every_s)


def rss_bytes() -> int:
    """Resident memory now (ru_maxrss is only the peak)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return pages * os.sysconf("SC_PAGE_SIZE")
