"""One poller per device: a drift-free schedule, availability with hysteresis, backoff when down.

After a first poll at start, a device is polled every period at a phase of its
own (one of ``PHASE_GROUPS``, from its id): hundreds of devices on one period
are not all read at the same instant, a burst that every reading of the round
waited out (at 200 devices × 20 registers every 250 ms, alarms p99 42–83 ms
→ 11–15 ms, telemetry p99 75–86 → 37–40 ms with four groups, for 10–20 % more
CPU; two groups: alarms p99 18–24 ms, telemetry p99 47–49 ms, 9–13 % less CPU
than four).

Availability moves between ``online``, ``offline`` (no answer: timeout, line or
connection gone) and ``faulty`` (answers, but wrong: CRC errors, exception
codes, garbage, another unit). A device goes down after ``offline_after`` failed
polls in a row and comes back on its first good poll. Each change is logged
once and handed to ``on_change``; failures in between are only counted.

While down, the device is tried on a growing interval (doubling from its poll
period up to ``retry_max_s``), once per try and, on a shared bus, only when no
other device is waiting for the wire: a dead device must not starve the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from contracts.driver import PolledDriver
from contracts.errors import DeviceProtocolError, DriverError
from contracts.readings import ReadingBatch
from gateway.poll.availability import FAULTY, OFFLINE, ONLINE
from gateway.poll.pacing import PollPacing

log = logging.getLogger(__name__)

PHASE_GROUPS = 2
"""Devices on one period are polled in this many groups spread over it: the devices of a group
are read together, and their answers handled in the same turns of the event loop (which costs
less CPU than one at a time), while a group is small enough to be worked through quickly."""
BUS_PHASE_GROUPS = 4
"""The same for devices on a shared serial line: they are answered one after another whatever
their phase, so a larger group saves nothing and only makes the last of it wait longer."""


class DevicePoller:
    """Reads a device every ``poll_interval_s`` and hands each batch to ``on_batch``."""

    def __init__(
        self,
        driver: PolledDriver,  # type: ignore[type-arg]
        on_batch: Callable[[ReadingBatch], None],
        on_change: Callable[[DevicePoller], None] | None = None,
        *,
        pacing: PollPacing | None = None,
    ) -> None:
        self.driver = driver
        self._pacing = pacing
        config = driver.config
        self.device = config.id
        self.driver_name = config.driver
        self._phase_groups = BUS_PHASE_GROUPS if driver.shares_line else PHASE_GROUPS
        self.mode = "polled"
        self.interval = float(config.poll_interval_s)
        self.offline_after = int(config.offline_after)
        self.retry_max_s = float(config.retry_max_s)
        self._on_batch = on_batch
        self._on_change = on_change
        self.state: str | None = None  # not known until the first poll or offline_after failures
        self.since = time.time()
        self.reason = ""
        self.polls = 0
        self.failures = 0
        self.failed_in_row = 0
        self.last_ok: float | None = None
        self.attempted_at = time.monotonic()  # when the last poll began: for the watchdog
        self.poll_s_total = 0.0  # time spent in polls, answered or not: for the metrics
        self._stop_requested = False
        self._restart_requested = False
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._reading = asyncio.Lock()  # a read asked for by a command waits for the scheduled one
        self.last_batch: ReadingBatch | None = None

    def status_fields(self) -> dict[str, Any]:
        return self.driver.status_fields()

    @property
    def available(self) -> bool | None:
        return None if self.state is None else self.state == ONLINE

    def stop(self) -> None:
        """Stop polling: cancel the task running :meth:`run`, and make sure it stays cancelled."""
        self._stop_requested = True
        if self._task is not None:
            self._task.cancel()

    def restart(self) -> None:
        """Close the driver and open it again (a command's "restart"), then poll on as before."""
        self._restart_requested = True
        if self._task is not None:
            self._task.cancel()

    async def run(self) -> None:
        self._task = asyncio.current_task()
        while True:
            try:
                await self._run_driver()
            except asyncio.CancelledError:
                if not self._restart_requested or self._stop_requested:
                    raise
                uncancel = getattr(self._task, "uncancel", None)  # Python 3.11+: forget our own cancel
                if uncancel is not None:
                    uncancel()
                self._restart_requested = False
                self.restarts += 1
                log.info("device %s: driver restarted on request", self.device)

    async def _run_driver(self) -> None:
        loop = asyncio.get_running_loop()
        async with self.driver:
            # The first poll at once, then at the device's phase of the period.
            due = loop.time() - self.interval * (1.0 - _phase(self.device, self._phase_groups))
            while True:
                if self._pacing is None or self._pacing.admit():
                    await self.poll_once()
                self._stop_if_cancelled()
                due += self._wait()
                now = loop.time()
                if due < now:  # overran: skip the missed slots instead of bursting
                    due += ((now - due) // self.interval + 1) * self.interval
                await asyncio.sleep(due - now)

    def _stop_if_cancelled(self) -> None:
        """Stop even if a device library swallowed our cancellation during the poll.

        A library can catch the CancelledError of a request in flight (pymodbus's
        client did), and the poll would go on forever. Python 3.11 remembers that the task is cancelling; 3.10
        does not, so :meth:`stop` also sets a flag of ours.
        """
        cancelling = getattr(self._task, "cancelling", None)  # Python 3.11+
        if self._stop_requested or self._restart_requested or (cancelling is not None and cancelling()):
            raise asyncio.CancelledError

    def _wait(self) -> float:
        """The poll period, or while the device is down a growing retry interval."""
        if self.state in (ONLINE, None):
            return self.interval
        tries_down = max(self.failed_in_row - self.offline_after, 0)
        return min(self.interval * 2.0**tries_down, max(self.retry_max_s, self.interval))

    async def poll_once(self) -> None:
        self.attempted_at = started = time.monotonic()
        self.polls += 1
        self.driver.probing = self.state in (OFFLINE, FAULTY)
        try:
            async with self._reading:
                batch = await self.driver.read()
        except DriverError as exc:
            self._failed(exc)
            return
        finally:
            self.poll_s_total += time.monotonic() - started
        self.failed_in_row = 0
        self.last_ok = time.time()
        self.last_batch = batch
        if self.state != ONLINE:
            self._change(ONLINE, "answering")
        if log.isEnabledFor(logging.DEBUG):  # `run --log-level DEBUG` shows every reading
            values = " ".join(f"{c}={v}" for c, v in zip(batch.channels, batch.values.tolist(), strict=True))
            log.debug("device %s: %s", self.device, values)
        self._on_batch(batch)

    async def read_now(self) -> ReadingBatch | None:
        """Poll once now, out of schedule (the batch goes the usual way); None if it failed."""
        polls_ok = self.last_ok
        await self.poll_once()
        return self.last_batch if self.last_ok != polls_ok else None

    async def write(self, values: Mapping[str, int]) -> dict[str, float]:
        """Switch outputs between polls (never during one), then poll so their state is published.

        Returns the outputs as read back; raises NotWritable or a DriverError.
        """
        async with self._reading:
            switched = await self.driver.write(values)
        await self.poll_once()
        return switched

    def _failed(self, exc: DriverError) -> None:
        self.failures += 1
        self.failed_in_row += 1
        if self.failed_in_row < self.offline_after:
            log.debug("device %s: poll failed (%d in a row): %s", self.device, self.failed_in_row, exc)
            return
        state = FAULTY if isinstance(exc, DeviceProtocolError) else OFFLINE
        if state != self.state:
            self._change(state, str(exc))

    def _change(self, state: str, reason: str) -> None:
        was = self.state
        self.state, self.since, self.reason = state, time.time(), reason
        if state == ONLINE:
            log.info("device %s: online%s", self.device, "" if was is None else f" again (was {was})")
        else:
            log.warning(
                "device %s: %s after %d failed poll(s): %s", self.device, state, self.failed_in_row, reason
            )
        if self._on_change is not None:
            self._on_change(self)


def _phase(device: str, groups: int) -> float:
    """Where in its period a device is polled, in [0, 1): the same for a device on every start."""
    return (zlib.crc32(device.encode()) * groups >> 32) / groups
