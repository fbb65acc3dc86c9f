"""Modbus TCP driver: one connection per device, requests planned once at start.

It speaks the project's own Modbus TCP frames (:mod:`drivers.modbus.frames`)
over :class:`~drivers.modbus.mbap.MbapLink`: pymodbus's client (a transaction
manager, a task and a timeout per request) took half as much CPU again per
request (124 against 84 µs of process time for a read of 20 registers, one
after another, here), and at hundreds of polls a second that counted.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from contracts.config import PolledDeviceConfig
from contracts.driver import PolledDriver
from contracts.readings import ReadingBatch
from drivers.modbus.decoding import RequestDecoder, channel_rounding
from drivers.modbus.frames import FUNCTION, coils_pdu, parse_mbap, parse_mbap_write
from drivers.modbus.mbap import MbapLink
from drivers.modbus.outputs import plan_write, read_back, writable_channels
from drivers.modbus.registers import ModbusChannel, ReadRequest, plan_requests


class ModbusTcpConfig(PolledDeviceConfig):
    """A Modbus TCP device (or a serial server speaking Modbus TCP)."""

    driver: Literal["modbus_tcp"]
    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65_535)
    unit_id: int = Field(default=1, ge=0, le=255)
    max_gap: int = Field(
        default=16, ge=0, le=124, description="unused registers one read may span to save a request"
    )
    channels: tuple[ModbusChannel, ...] = Field(min_length=1)


class ModbusTcpDriver(PolledDriver[ModbusTcpConfig]):
    """Reads holding and input registers over Modbus TCP."""

    def __init__(self, config: ModbusTcpConfig) -> None:
        super().__init__(config)
        plan = plan_requests(config.channels, max_gap=config.max_gap)
        self._plan = [(_Read(request), RequestDecoder(config.channels, request)) for request in plan]
        self._rounding = channel_rounding(config.channels)
        self._link = MbapLink(config.id, config.host, config.port)
        self.outputs = writable_channels(config.channels)

    async def read(self) -> ReadingBatch:
        await self._connection()
        ts = time.time()
        values = [math.nan] * len(self.channel_ids)
        for read, decoder in self._plan:
            decoder.fill(await self._read(read), values)
        batch = ReadingBatch.at(self.config.id, self.channel_ids, values, ts)
        self._rounding.apply(batch.values)
        return batch

    async def write(self, values: Mapping[str, int]) -> dict[str, float]:
        """Switch coils (FC 05 for one, FC 15 for a run), then read them back (FC 01)."""
        cfg = self.config
        write = plan_write(cfg.id, cfg.channels, values)
        await self._connection()
        for start, bits in write.runs:
            pdu = coils_pdu(start, bits)
            doing = f"writing coils {start}..{start + len(bits) - 1}"
            frame, tid = await self._link.exchange(cfg.unit_id, pdu, timeout=cfg.timeout_s, doing=doing)
            answer = parse_mbap_write(frame, tid, cfg.unit_id, pdu)
            if answer.registers is None:
                raise self._link.fault(answer, doing)
        request = ReadRequest("coils", write.read_from, write.read_count, ())
        return read_back(write, await self._read(_Read(request)))

    async def aclose(self) -> None:
        self._link.close()

    async def _connection(self) -> None:
        if not self._link.connected:
            await self._link.open(self.config.timeout_s)

    async def _read(self, read: _Read) -> tuple[int, ...]:
        cfg = self.config
        frame, tid = await self._link.exchange(cfg.unit_id, read.pdu, timeout=cfg.timeout_s, doing=read.doing)
        answer = parse_mbap(frame, tid, cfg.unit_id, read.function, read.count)
        if answer.registers is None:
            raise self._link.fault(answer, read.doing)
        return answer.registers


class _Read:
    """One planned read as it goes on the wire: its PDU, and what to call it in an error."""

    __slots__ = ("count", "doing", "function", "pdu")

    def __init__(self, request: ReadRequest) -> None:
        self.function = FUNCTION[request.table]
        self.count = request.count
        self.pdu = struct.pack(">BHH", self.function, request.start, request.count)
        self.doing = f"reading {request.table} registers {request.start}..{request.start + request.count - 1}"
