"""A simulated Modbus device: a register image served by a real pymodbus server.

Scenarios (and tests) write engineering values through the same channel
definitions the gateway reads with; clients read them over the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.modbus.registers import ModbusChannel, encode

READ_HOLDING, READ_INPUT = 3, 4


class SimulatedModbusDevice:
    """Holding and input registers of one unit id, plus ways to misbehave."""

    def __init__(self, channels: Sequence[ModbusChannel], *, unit_id: int = 1, size: int = 256) -> None:
        self.channels = {ch.id: ch for ch in channels}
        self.unit_id = unit_id
        self.holding = [0] * size
        self.input = [0] * size
        self.response_delay_s = 0.0
        self.exception: ExcCodes | None = None
        self.requests = 0
        self._server: ModbusTcpServer | None = None

    def set(self, channel: str, value: float) -> None:
        """Store an engineering value the way the channel's register map encodes it."""
        ch = self.channels[channel]
        raw = (value - ch.offset) / ch.scale
        words = encode(raw, ch.type, ch.word_order)
        table = self.holding if ch.table == "holding" else self.input
        table[ch.address : ch.address + len(words)] = words

    def sim_device(self) -> SimDevice:
        size = len(self.holding)
        blocks = (
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=size, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=size, values=0, datatype=DataType.REGISTERS)],
        )
        return SimDevice(self.unit_id, simdata=blocks, action=self._on_request)

    async def serve_tcp(self, host: str, port: int) -> None:
        """Listen on ``host:port`` until :meth:`stop`."""
        self._server = ModbusTcpServer(self.sim_device(), address=(host, port))
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    async def _on_request(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        if self.response_delay_s:
            await asyncio.sleep(self.response_delay_s)
        if self.exception is not None:
            return self.exception
        image = {READ_HOLDING: self.holding, READ_INPUT: self.input}.get(function_code)
        if image is not None:
            at = address - start_address
            registers[at : at + count] = image[address : address + count]
        return None
