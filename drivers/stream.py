"""Drivers for devices that push their data (HJ 212 dataloggers), as opposed to polled ones.

One stream serves every device of its driver (one listener, many dataloggers).
It is used as ``async with stream: await stream.run(on_batch)``: entering
opens its listeners (raising DeviceUnreachable when it cannot), ``run``
hands each batch to ``on_batch`` until cancelled, leaving closes everything.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

from drivers.base import ClosedOnExit, DeviceConfig
from gateway.readings import ReadingBatch


class StreamDriver(ClosedOnExit):
    """Receives what devices send; ``name`` names its task in the supervisor."""

    config_model: ClassVar[type[DeviceConfig]]
    name: str

    async def __aenter__(self) -> StreamDriver:
        await self.open()
        return self

    @abc.abstractmethod
    async def open(self) -> None:
        """Open listeners and ports; raise DeviceUnreachable when one cannot be opened."""

    @abc.abstractmethod
    async def run(self, on_batch: Callable[[ReadingBatch], None]) -> None:
        """Hand every batch received to ``on_batch`` until cancelled."""
