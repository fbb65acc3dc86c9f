"""What runs for a config: every driver kind's runners, built through its spec, with their availability.

Nothing here names a driver: each registered spec builds its polled drivers
and streams; a polled driver gets a poller, every device a stream receives
from gets a heartbeat watch, and both report to the same ``on_change``.
They are built unit by unit (:func:`units_of`), so a config change can stop
and start the units it touches and leave the others running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contracts.backoff import backoff_delays
from contracts.config import DeviceConfig
from contracts.driver import StreamDriver
from contracts.errors import DriverError
from contracts.readings import ReadingBatch
from contracts.spec import DriverSpec, Runners
from drivers.registry import SPECS
from gateway.config.models import GatewayConfig
from gateway.poll import DevicePoller, PollPacing
from gateway.poll.availability import Availability
from gateway.poll.heartbeat import HeartbeatBook, HeartbeatWatch

log = logging.getLogger(__name__)


UnitKey = tuple[str, str]  # (driver kind, the device's id or the shared entry's)


@dataclass(frozen=True)
class Unit:
    """Devices that run together: one device alone, or the devices sharing one entry of a section.

    The unit of a piecewise apply: a unit whose devices or section entry changed
    is stopped and built again; every other unit runs on untouched.
    """

    key: UnitKey
    spec: DriverSpec
    devices: tuple[DeviceConfig, ...]
    section: Any  # what the spec's build gets: the entry (in a tuple) for a ``many`` section

    @property
    def name(self) -> str:
        return f"{self.key[0]}:{self.key[1]}"


def units_of(config: GatewayConfig) -> dict[UnitKey, Unit]:
    """What ``config`` runs, unit by unit, in the registry's order then the config's."""
    units: dict[UnitKey, Unit] = {}
    for spec in SPECS.values():
        devices = tuple(d for d in config.devices if d.driver == spec.name)
        if spec.section is None:  # nothing shared: each device alone
            units.update({(spec.name, d.id): Unit((spec.name, d.id), spec, (d,), None) for d in devices})
            continue
        section = config.section(spec.section.key)
        entry = spec.entry
        if spec.section.many and entry is not None:
            for item in section or ():
                ours = tuple(d for d in devices if entry(d) == item.id)
                units[(spec.name, item.id)] = Unit((spec.name, item.id), spec, ours, (item,))
        else:
            key = (spec.name, spec.section.key)
            units[key] = Unit(key, spec, devices, section)
    return units


@dataclass
class UnitRun:
    """What one unit runs: its drivers' runners, a poller per polled driver, a watch per pushed device."""

    unit: Unit
    runners: Runners
    pollers: list[DevicePoller]
    watches: list[HeartbeatWatch]


def build_unit(
    unit: Unit,
    on_batch: Callable[[ReadingBatch], None],
    on_change: Callable[[Any], None],
    *,
    pacing: PollPacing | None = None,
) -> UnitRun:
    runners = unit.spec.build(unit.devices, unit.section)
    pollers = [DevicePoller(driver, on_batch, on_change, pacing=pacing) for driver in runners.polled]
    watches = [HeartbeatWatch(d, s, on_change) for s in runners.streams for d in s.devices]
    return UnitRun(unit, runners, pollers, watches)


@dataclass
class Running:
    """The units of one config, and flat views of them that the rest of the daemon holds on to.

    The views (``pollers``, ``streams``, ``heartbeats``, ``buses``,
    ``availability``) are updated in place when units change (:meth:`reindex`),
    so status, health and the web page see the new ones without being rebuilt.
    """

    units: dict[UnitKey, UnitRun] = field(default_factory=dict)
    pollers: list[DevicePoller] = field(default_factory=list)
    streams: list[StreamDriver] = field(default_factory=list)
    heartbeats: HeartbeatBook = field(default_factory=lambda: HeartbeatBook([]))
    buses: dict[str, Any] = field(default_factory=dict)
    availability: list[Availability] = field(default_factory=list)  # in config order

    def add(self, run: UnitRun) -> None:
        self.units[run.unit.key] = run
        for stream in run.runners.streams:
            stream.seen = self.heartbeats.seen

    def reindex(self, config: GatewayConfig) -> None:
        """Make the views match the units, after units were added or removed."""
        runs = list(self.units.values())
        self.pollers[:] = [p for run in runs for p in run.pollers]
        self.streams[:] = [s for run in runs for s in run.runners.streams]
        self.heartbeats.replace([w for run in runs for w in run.watches])
        self.buses.clear()
        for run in runs:
            self.buses.update(run.runners.buses)
        found: dict[str, Availability] = {p.device: p for p in self.pollers}
        found.update((w.device, w) for w in self.heartbeats.watches)
        self.availability[:] = [found[d.id] for d in config.devices if d.id in found]

    def unit_of(self, device: str) -> UnitRun | None:
        """The unit that runs ``device``, if any."""
        return next((r for r in self.units.values() if any(d.id == device for d in r.unit.devices)), None)

    def close(self) -> None:
        """Release what the drivers share (bus ports), once every runner has stopped."""
        for run in self.units.values():
            run.runners.close()


def heard(
    heartbeats: HeartbeatBook, on_batch: Callable[[ReadingBatch], None]
) -> Callable[[ReadingBatch], None]:
    """``on_batch`` for a stream: each batch is also a sign of life of its device."""

    def received(batch: ReadingBatch) -> None:
        heartbeats.seen(batch.device)
        on_batch(batch)

    return received


async def feed(
    stream: StreamDriver,
    on_batch: Callable[[ReadingBatch], None],
    *,
    failed: Callable[[str], None] = lambda why: None,
    opened: Callable[[], None] = lambda: None,
) -> None:
    """Run ``stream`` into ``on_batch`` until cancelled; if it cannot open, retry with backoff.

    ``opened`` is called once it is open; each failure is handed to ``failed``
    (the supervisor counts it, so a config apply sees a listener that cannot
    bind its port).
    """
    delays = backoff_delays(1.0, 60.0)
    while True:
        try:
            async with stream:
                opened()
                await stream.run(on_batch)
        except DriverError as exc:
            delay = next(delays)
            log.error("%s: %s; retrying in %.0f s", stream.name, exc, delay)
            failed(str(exc))
            await asyncio.sleep(delay)
