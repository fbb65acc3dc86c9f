"""systemd's watchdog: ping only while the event loop runs and the work makes progress.

With ``WatchdogSec=`` in the unit systemd sets ``$WATCHDOG_USEC``; the daemon
must send ``WATCHDOG=1`` more often than that or be killed and restarted
(``Restart=on-failure``). The pings come from a task on the event loop, so a
wedged loop stops them by itself; each check below stops them when a part of
the gateway is stuck although the loop still turns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.service.systemd import notify

log = logging.getLogger(__name__)

Check = Callable[[float], "str | None"]  # monotonic now → why it is stuck, or None


class _Polled(Protocol):
    device: str
    interval: float
    retry_max_s: float
    attempted_at: float


class _Uplink(Protocol):
    progress_at: float
    idle: bool


def watchdog_interval_s() -> float | None:
    """systemd's watchdog timeout for this process, or None when there is none."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6


def poller_check(poller: _Polled, *, slack_s: float = 60.0) -> Check:
    """A poller must begin a poll within twice its longest wait (plus slack for a busy bus)."""
    limit = 2 * max(poller.interval, poller.retry_max_s) + slack_s

    def check(now: float) -> str | None:
        quiet = now - poller.attempted_at
        return f"device {poller.device}: no poll for {quiet:.0f} s" if quiet > limit else None

    return check


def uplink_check(uplink: _Uplink, *, limit_s: float) -> Check:
    """The uplink must connect, retry, or get a PUBACK within ``limit_s``, unless it has nothing to send."""

    def check(now: float) -> str | None:
        quiet = now - uplink.progress_at
        if uplink.idle or quiet <= limit_s:
            return None
        return f"uplink: no connect attempt or acknowledged publish for {quiet:.0f} s"

    return check


async def feed_watchdog(interval_s: float, checks: Sequence[Check]) -> None:
    """Send ``WATCHDOG=1`` every half interval while every check passes."""
    stuck: str | None = None
    while True:
        reasons = [reason for check in checks if (reason := check(time.monotonic())) is not None]
        if not reasons:
            notify("WATCHDOG=1")
            if stuck is not None:
                log.warning("watchdog: progress again, pinging systemd")
            stuck = None
        elif reasons[0] != stuck:
            stuck = reasons[0]
            log.error("watchdog: %s; no longer pinging, so systemd restarts the gateway", "; ".join(reasons))
        await asyncio.sleep(interval_s / 2)
