"""One poller per device: a drift-free schedule, and failures logged once, not every poll."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from drivers.base import PolledDriver
from gateway.errors import DriverError
from gateway.readings import ReadingBatch

log = logging.getLogger(__name__)


class DevicePoller:
    """Reads a device every ``poll_interval_s`` and hands each batch to ``on_batch``."""

    def __init__(self, driver: PolledDriver, on_batch: Callable[[ReadingBatch], None]) -> None:  # type: ignore[type-arg]
        self.driver = driver
        self.device = driver.config.id
        self.interval = driver.config.poll_interval_s
        self._on_batch = on_batch
        self.available: bool | None = None
        self.polls = 0
        self.failures = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        async with self.driver:
            due = loop.time()
            while True:
                await self.poll_once()
                due += self.interval
                now = loop.time()
                if due < now:  # overran: skip the missed slots instead of bursting
                    due += ((now - due) // self.interval + 1) * self.interval
                await asyncio.sleep(due - now)

    async def poll_once(self) -> None:
        self.polls += 1
        try:
            batch = await self.driver.read()
        except DriverError as exc:
            self.failures += 1
            if self.available is not False:
                log.warning("device %s: unavailable: %s", self.device, exc)
            self.available = False
            return
        if self.available is False:
            log.info("device %s: available again", self.device)
        self.available = True
        self._on_batch(batch)
