"""Fault isolation: a failure stays where it happened and is counted, never the end of the daemon.

Two kinds of failure are contained here:

- a batch that raises on its way through detection (a bug triggered by one
  device's data): logged once per device and kind of error, counted for that
  device, and the device goes on being polled;
- a background task that raises: logged with its traceback, counted, and
  started again after a growing delay (reset once it has run for a while).

Only an invalid config, found before anything starts, stops the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from contracts.backoff import backoff_delays
from contracts.errors import GridGateError
from contracts.readings import ReadingBatch

log = logging.getLogger(__name__)

RESTART_MIN_S = 1.0
RESTART_MAX_S = 60.0
HEALTHY_AFTER_S = 60.0  # a task that ran this long before failing starts its backoff afresh


class Supervisor:
    """Counts and contains failures; health and device statuses read its counters."""

    def __init__(self, *, restart_min_s: float = RESTART_MIN_S, restart_max_s: float = RESTART_MAX_S) -> None:
        self.batch_errors: Counter[str] = Counter()  # device: batches that raised
        self.restarts: Counter[str] = Counter()  # task name: restarts after a failure
        self.last_failure: dict[str, str] = {}  # task name: what its last failure was
        self._restart_min_s = restart_min_s
        self._restart_max_s = restart_max_s
        self._logged: set[tuple[str, str]] = set()

    def guard(self, on_batch: Callable[[ReadingBatch], None]) -> Callable[[ReadingBatch], None]:
        """``on_batch``, but a batch that raises is counted for its device instead of stopping the caller.

        The gateway's own errors (a full or broken outbox) still reach the caller,
        which decides what they mean to its device (HJ 212: no answer, so the
        datalogger sends the frame again).
        """

        def guarded(batch: ReadingBatch) -> None:
            try:
                on_batch(batch)
            except GridGateError:
                raise
            except Exception as exc:
                self.batch_errors[batch.device] += 1
                kind = type(exc).__name__
                if (batch.device, kind) not in self._logged:  # once per device and kind
                    self._logged.add((batch.device, kind))
                    log.exception(
                        "device %s: a batch failed in detection (%s); counting the rest", batch.device, kind
                    )

        return guarded

    async def keep_running(self, name: str, start: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``start()`` until it returns; if it raises, log, count and start it again after a backoff."""
        delays = backoff_delays(self._restart_min_s, self._restart_max_s)
        while True:
            began = time.monotonic()
            try:
                await start()
                return
            except Exception as exc:
                if time.monotonic() - began > HEALTHY_AFTER_S:
                    delays = backoff_delays(self._restart_min_s, self._restart_max_s)
                delay = next(delays)
                self.restarts[name] += 1
                self.last_failure[name] = f"{type(exc).__name__}: {exc}"
                log.exception("task %s failed (restart %d in %.1f s)", name, self.restarts[name], delay)
                await asyncio.sleep(delay)

    def failed(self, name: str, why: str) -> None:
        """Count a failure of a task that retries by itself (a stream that cannot open its port)."""
        self.restarts[name] += 1
        self.last_failure[name] = why

    def as_dict(self) -> dict[str, Any]:
        """What health reports: batch failures by device, restarts by task."""
        return {
            "batch_errors": dict(sorted(self.batch_errors.items())),
            "restarts": dict(sorted(self.restarts.items())),
        }
