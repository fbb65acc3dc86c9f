"""Availability of devices that push: heard from recently enough, or offline.

A pushed device (an HJ 212 datalogger, a smoke detector behind an IoT
platform) is never asked; it is ``online`` from its first message, and
``offline`` once ``missed_heartbeats`` of its intervals (``heartbeat_s``,
from its entry or profile) pass in silence, counted from the last message or,
before any, from the gateway's start. The next message brings it back. Each
change is handed to ``on_change`` like a poller's, so the same status, comms
event and health counts follow. Silence is judged on the gateway's clock when
a message arrives, not on the time the message claims.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from contracts.config import DeviceConfig, PushedDeviceConfig
from contracts.driver import StreamDriver
from gateway.poll.availability import OFFLINE, ONLINE

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0


class HeartbeatWatch:
    """The availability of one pushed device (the attributes of gateway.poll.availability)."""

    mode = "pushed"

    def __init__(
        self,
        config: DeviceConfig,
        stream: StreamDriver | None = None,
        on_change: Callable[[HeartbeatWatch], None] | None = None,
        *,
        now: float | None = None,
    ) -> None:
        self.device = config.id
        self.driver_name = config.driver
        heartbeat = config.heartbeat_s if isinstance(config, PushedDeviceConfig) else None
        self.interval: float | None = heartbeat
        self.offline_after = config.missed_heartbeats if isinstance(config, PushedDeviceConfig) else 1
        self._stream = stream
        self._on_change = on_change
        self.state: str | None = None
        self.since = time.time() if now is None else now
        self.reason = ""
        self.polls = 0  # messages received
        self.failures = 0  # heartbeat intervals missed, in all
        self.failed_in_row = 0
        self.last_ok: float | None = None

    def status_fields(self) -> dict[str, Any]:
        return {} if self._stream is None else self._stream.status_fields(self.device)

    def seen(self, now: float | None = None) -> None:
        """A message from the device arrived (with values or without)."""
        now = time.time() if now is None else now
        self.polls += 1
        self.last_ok = now
        self.failed_in_row = 0
        if self.state != ONLINE:
            was = self.state
            log.info("device %s: online%s", self.device, "" if was is None else f" again (was {was})")
            self._change(ONLINE, "sending", now)

    def check(self, now: float | None = None) -> None:
        """Count the intervals missed since the last message; offline once too many are."""
        if self.interval is None:
            return
        now = time.time() if now is None else now
        quiet_since = self.since if self.last_ok is None else self.last_ok
        missed = int((now - quiet_since) // self.interval)
        if missed <= self.failed_in_row:
            return
        self.failures += missed - self.failed_in_row
        self.failed_in_row = missed
        if missed >= self.offline_after and self.state != OFFLINE:
            heard = "nothing since the gateway started" if self.last_ok is None else "no message"
            reason = f"{heard} for {now - quiet_since:.0f} s (heartbeat every {self.interval:g} s)"
            log.warning("device %s: offline: %s", self.device, reason)
            self._change(OFFLINE, reason, now)

    def _change(self, state: str, reason: str, now: float) -> None:
        self.state, self.since, self.reason = state, now, reason
        if self._on_change is not None:
            self._on_change(self)


class HeartbeatBook:
    """The watches of every pushed device, fed by their streams, checked every second."""

    def __init__(self, watches: Sequence[HeartbeatWatch]) -> None:
        self.watches: list[HeartbeatWatch] = []
        self._by_device: Mapping[str, HeartbeatWatch] = {}
        self.replace(watches)

    def replace(self, watches: Sequence[HeartbeatWatch]) -> None:
        """Watch ``watches`` from now on (a config change added or removed pushed devices)."""
        self.watches = list(watches)
        self._by_device = {w.device: w for w in self.watches}

    def seen(self, device: str, ts: float | None = None) -> None:
        """``device`` was heard from (``ts``, the message's own time, is not used: clocks lie)."""
        watch = self._by_device.get(device)
        if watch is not None:
            watch.seen()

    async def run(self, every_s: float = CHECK_EVERY_S) -> None:
        while True:
            await asyncio.sleep(every_s)
            now = time.time()
            for watch in self.watches:
                watch.check(now)
