"""What runs for a config: every driver kind's runners, built through its spec, with their availability.

Nothing here names a driver: each registered spec builds its polled drivers
and streams; a polled driver gets a poller, every device a stream receives
from gets a heartbeat watch, and both report to the same ``on_change``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contracts.backoff import backoff_delays
from contracts.driver import StreamDriver
from contracts.errors import DriverError
from contracts.readings import ReadingBatch
from contracts.spec import Runners
from drivers.registry import SPECS
from gateway.config.models import GatewayConfig
from gateway.poll import DevicePoller
from gateway.poll.availability import Availability
from gateway.poll.heartbeat import HeartbeatBook, HeartbeatWatch

log = logging.getLogger(__name__)


@dataclass
class Running:
    """The pollers, streams and watches of one config, and what their drivers share."""

    pollers: list[DevicePoller] = field(default_factory=list)
    streams: list[StreamDriver] = field(default_factory=list)
    heartbeats: HeartbeatBook = field(default_factory=lambda: HeartbeatBook([]))
    buses: dict[str, Any] = field(default_factory=dict)
    availability: list[Availability] = field(default_factory=list)  # in config order
    built: list[Runners] = field(default_factory=list)

    def close(self) -> None:
        """Release what the drivers share (bus ports), once every runner has stopped."""
        for runners in self.built:
            runners.close()


def build_running(
    config: GatewayConfig,
    on_batch: Callable[[ReadingBatch], None],
    on_change: Callable[[Any], None],
) -> Running:
    """Everything ``config`` asks to run, polled drivers wrapped in pollers feeding ``on_batch``."""
    running = Running()
    watches: dict[str, HeartbeatWatch] = {}
    found: dict[str, Availability] = {}
    for spec in SPECS.values():
        devices = [d for d in config.devices if d.driver == spec.name]
        section = None if spec.section is None else config.section(spec.section.key)
        runners = spec.build(devices, section)
        running.built.append(runners)
        running.buses.update(runners.buses)
        for driver in runners.polled:
            poller = DevicePoller(driver, on_batch, on_change)
            running.pollers.append(poller)
            found[poller.device] = poller
        for stream in runners.streams:
            running.streams.append(stream)
            for device in stream.devices:
                watches[device.id] = HeartbeatWatch(device, stream, on_change)
                found[device.id] = watches[device.id]
    running.heartbeats = HeartbeatBook(list(watches.values()))
    for stream in running.streams:
        stream.seen = running.heartbeats.seen
    running.availability = [found[d.id] for d in config.devices if d.id in found]
    return running


def heard(
    heartbeats: HeartbeatBook, on_batch: Callable[[ReadingBatch], None]
) -> Callable[[ReadingBatch], None]:
    """``on_batch`` for a stream: each batch is also a sign of life of its device."""

    def received(batch: ReadingBatch) -> None:
        heartbeats.seen(batch.device)
        on_batch(batch)

    return received


async def feed(stream: StreamDriver, on_batch: Callable[[ReadingBatch], None]) -> None:
    """Run ``stream`` into ``on_batch`` until cancelled; if it cannot open, retry with backoff."""
    delays = backoff_delays(1.0, 60.0)
    while True:
        try:
            async with stream:
                await stream.run(on_batch)
        except DriverError as exc:
            delay = next(delays)
            log.error("%s: %s; retrying in %.0f s", stream.name, exc, delay)
            await asyncio.sleep(delay)
