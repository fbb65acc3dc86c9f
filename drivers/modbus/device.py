"""A Modbus device on a shared bus (``driver = "modbus"``): RTU, RTU over TCP or Modbus TCP."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from contracts.driver import PolledDriver
from contracts.errors import DriverError
from contracts.readings import ReadingBatch
from drivers.modbus.bus import Counters, ModbusBus
from drivers.modbus.config import ModbusConfig
from drivers.modbus.decoding import RequestDecoder, channel_rounding
from drivers.modbus.frames import FUNCTION, READ_COILS
from drivers.modbus.outputs import plan_write, read_back, writable_channels
from drivers.modbus.registers import ReadRequest, plan_requests

T = TypeVar("T")


class ModbusBusDriver(PolledDriver[ModbusConfig]):
    """Reads its channels in the planned requests; retries a failed request ``retries`` times."""

    shares_line = True

    def __init__(self, config: ModbusConfig, bus: ModbusBus) -> None:
        super().__init__(config)
        self.bus = bus
        self.plan = plan_requests(config.channels, max_gap=config.max_gap, max_count=config.max_registers)
        self._decoders: dict[ReadRequest, RequestDecoder] = {}
        self._rounding = channel_rounding(config.channels)
        self.outputs = writable_channels(config.channels)

    @property
    def counters(self) -> Counters:
        """This device's counters as the bus keeps them (by unit id)."""
        return self.bus.unit_counters(self.config.unit_id)

    def status_fields(self) -> dict[str, Any]:
        return {"bus": self.bus.id, "counters": self.counters.as_dict()}

    async def read(self) -> ReadingBatch:
        cfg = self.config
        ts = time.time()
        values = [math.nan] * len(self.channel_ids)
        for request in self.plan:
            registers = await self._read(FUNCTION[request.table], request.start, request.count)
            decoder = self._decoders.get(request)
            if decoder is None:
                decoder = self._decoders[request] = RequestDecoder(cfg.channels, request)
            decoder.fill(registers, values)
        batch = ReadingBatch.at(cfg.id, self.channel_ids, values, ts)
        self._rounding.apply(batch.values)
        return batch

    async def write(self, values: Mapping[str, int]) -> dict[str, float]:
        """Switch coils (FC 05/15) in turn with the bus's polls, then read them back (FC 01)."""
        cfg = self.config
        write = plan_write(cfg.id, cfg.channels, values)
        for start, bits in write.runs:  # switching a coil to a state twice is harmless: retried
            switch = functools.partial(self.bus.write_coils, cfg.id, cfg.unit_id, start, bits)
            await self._tried(functools.partial(switch, timeout=cfg.timeout_s))
        coils = await self._read(READ_COILS, write.read_from, write.read_count)
        return read_back(write, coils)

    async def _read(self, function: int, start: int, count: int) -> list[int]:
        cfg = self.config
        return await self._tried(
            lambda: self.bus.read(
                cfg.id, cfg.unit_id, function, start, count, timeout=cfg.timeout_s, probe=self.probing
            )
        )

    async def _tried(self, request: Callable[[], Awaitable[T]]) -> T:
        tries = 1 if self.probing else 1 + self.config.retries
        for attempt in range(tries):
            try:
                return await request()
            except DriverError:
                if attempt == tries - 1:
                    raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """The bus belongs to the gateway, not to one device: nothing to release."""
