"""Apply a config change unit by unit while the runtime runs: stop what changed, start what is new.

A unit (see ``runners.units_of``) is one device, or the devices sharing one
entry of a driver's section (a bus, a platform, the HJ 212 listener). Its
tasks live in the daemon's TaskGroup; stopping one unit cancels its tasks,
waits for them and releases what its drivers share (a bus port) before the
unit that replaces it opens the same port. Every other unit, the uplink and
the detection engine keep running: their devices see no gap, their rules keep
their state and their open alarms.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from contracts.compat import TaskGroup
from contracts.driver import StreamDriver
from contracts.readings import ReadingBatch
from gateway.config.models import GatewayConfig
from gateway.events.correlate import cells_of
from gateway.poll.availability import Availability
from gateway.service.runners import Running, Unit, UnitKey, UnitRun, feed, units_of
from gateway.service.supervisor import Supervisor

log = logging.getLogger(__name__)

Keep = Callable[[str, Callable[[], Coroutine[Any, Any, None]]], Coroutine[Any, Any, None]]


class UnitTasks:
    """The tasks of every unit's runners, in one TaskGroup, started and stopped unit by unit."""

    def __init__(
        self,
        group: TaskGroup,
        supervisor: Supervisor,
        *,
        build: Callable[[Unit], UnitRun],
        feed_for: Callable[[StreamDriver], Callable[[ReadingBatch], None]],
    ) -> None:
        self._group = group
        self._supervisor = supervisor
        self._build = build
        self._feed_for = feed_for
        self._tasks: dict[UnitKey, list[asyncio.Task[None]]] = {}
        self.opening: set[str] = set()  # streams started and not open yet: an apply waits for them

    def all(self) -> list[asyncio.Task[None]]:
        return [task for tasks in self._tasks.values() for task in tasks]

    def start(self, run: UnitRun) -> None:
        keep = self._supervisor.keep_running
        tasks = [
            self._group.create_task(keep(f"poll:{p.device}", p.run), name=f"poll:{p.device}")
            for p in run.pollers
        ]
        for stream in run.runners.streams:
            name = f"stream:{stream.name}"
            failed = functools.partial(self._supervisor.failed, name)
            opened = functools.partial(self.opening.discard, name)
            self.opening.add(name)
            start = functools.partial(feed, stream, self._feed_for(stream), failed=failed, opened=opened)
            tasks.append(self._group.create_task(keep(name, start), name=name))
        self._tasks[run.unit.key] = tasks

    async def stop(self, run: UnitRun) -> None:
        """Stop the unit's runners and release what they share; returns once they are gone."""
        for poller in run.pollers:
            poller.stop()
        tasks = self._tasks.pop(run.unit.key, [])
        self.opening.difference_update(f"stream:{s.name}" for s in run.runners.streams)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        run.runners.close()

    async def restart(self, running: Running, run: UnitRun) -> None:
        """Stop ``run`` and start its unit afresh (the ``restart`` command for a stream's device)."""
        if running.units.get(run.unit.key) is not run:  # an apply replaced it meanwhile
            return
        del running.units[run.unit.key]
        await self.stop(run)
        self._start(running, run.unit)

    async def apply(self, running: Running, config: GatewayConfig) -> None:
        """Make ``running`` run ``config``: units that changed or went are stopped, new ones started.

        A unit that cannot be built is logged and counted as a failed task, so
        the apply's health window sees it; the others start all the same.
        """
        wanted = units_of(config)
        for key, run in list(running.units.items()):
            if wanted.get(key) != run.unit:
                del running.units[key]
                await self.stop(run)
        for key, unit in wanted.items():
            if key not in running.units:
                self._start(running, unit)
        running.reindex(config)

    def _start(self, running: Running, unit: Unit) -> None:
        try:
            run = self._build(unit)
        except Exception as exc:  # one unit's driver, not the apply: the window rolls back
            log.exception("%s: its runners could not be built", unit.name)
            self._supervisor.failed(f"start:{unit.name}", f"{type(exc).__name__}: {exc}")
            return
        running.add(run)
        self.start(run)


class Reconfigurable:
    """The parts of a running runtime that take a new config in place: the ``apply`` of a piecewise change.

    ``units`` and ``cells`` are the dicts the alarm book and the correlator
    hold (each channel's unit, each device's grid cell); ``on_config`` hands
    the new config to whatever else shows it (the web page, the commands' trust).
    """

    def __init__(
        self,
        config: GatewayConfig,
        running: Running,
        tasks: UnitTasks,
        *,
        units: dict[tuple[str, str], str],
        cells: dict[str, str],
        removed: Callable[[Availability], None],
        on_config: list[Callable[[GatewayConfig], None]],
    ) -> None:
        self.config = config
        self.running = running
        self.tasks = tasks
        self._units = units
        self._cells = cells
        self._removed = removed
        self._on_config = on_config

    async def apply(self, config: GatewayConfig, removed: tuple[str, ...]) -> None:
        gone = [a for a in self.running.availability if a.device in removed]
        await self.tasks.apply(self.running, config)
        self.config = config
        self._units.clear()
        self._units.update(channel_units(config))
        self._cells.clear()
        self._cells.update(cells_of(config))
        for device in gone:
            self._removed(device)
        for hook in self._on_config:
            hook(config)

    async def restart_device(self, device: str) -> bool:
        """Restart the unit that runs ``device``; False when no unit does."""
        run = self.running.unit_of(device)
        if run is None:
            return False
        await self.tasks.restart(self.running, run)
        self.running.reindex(self.config)
        return True


def channel_units(config: GatewayConfig) -> dict[tuple[str, str], str]:
    """Each channel's unit, by (device, channel): what an alarm says its value is in."""
    return {(d.id, ch.id): ch.unit for d in config.devices for ch in d.channels}
