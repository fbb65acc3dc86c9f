"""A simulated Modbus device: a register image served by a real pymodbus server.

Scenarios (and tests) write engineering values through the same channel
definitions the gateway reads with; clients read them over the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from drivers.modbus.frames import (
    BIT_FUNCTIONS,
    READ_COILS,
    READ_DISCRETE,
    READ_HOLDING,
    READ_INPUT,
    WRITE_COIL,
    WRITE_COILS,
)
from drivers.modbus.registers import WIDTH, ModbusChannel, decode_channel, encode_channel


class SimulatedModbusDevice:
    """Holding and input registers of one unit id, plus ways to misbehave.

    ``response_delay_s`` slows every answer, ``exception`` answers with a
    Modbus exception code, and ``silent`` never answers at all.
    """

    def __init__(self, channels: Sequence[ModbusChannel], *, unit_id: int = 1, size: int = 256) -> None:
        self.channels = {ch.id: ch for ch in channels}
        self.unit_id = unit_id
        self.holding = [0] * size
        self.input = [0] * size
        self.coils = [0] * size
        self.discrete = [0] * size
        self.response_delay_s = 0.0
        self.silent = False
        self.exception: ExcCodes | None = None
        self.requests = 0
        self.port = 0  # where serve_tcp listens
        self._server: ModbusTcpServer | None = None

    def set(self, channel: str, value: float) -> None:
        """Store an engineering value the way the channel's register map encodes it.

        A bit field changes only its own bits, so the channels of one status
        word can be set one at a time.
        """
        ch = self.channels[channel]
        table = self._table(ch)
        end = ch.address + WIDTH[ch.type]
        table[ch.address : end] = encode_channel(value, ch, table[ch.address : end])

    def get(self, channel: str) -> float:
        """The engineering value the register image holds for ``channel`` now."""
        ch = self.channels[channel]
        return decode_channel(self._table(ch)[ch.address : ch.address + WIDTH[ch.type]], ch)

    def image(self, function: int) -> list[int] | None:
        """The register table a read function code reads (3 holding, 4 input); None for others."""
        tables = {READ_HOLDING: self.holding, READ_INPUT: self.input, READ_COILS: self.coils}
        return {**tables, READ_DISCRETE: self.discrete}.get(function)

    def _table(self, ch: ModbusChannel) -> list[int]:
        return {"holding": self.holding, "input": self.input, "coils": self.coils, "discrete": self.discrete}[
            ch.table
        ]

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
        """Listen on ``host:port`` until :meth:`stop`; other unit ids get no answer, as on a bus."""
        self.port = port
        self._server = ModbusTcpServer(self.sim_device(), address=(host, port), ignore_missing_devices=True)
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
        if self.silent:
            # The server drops requests for unknown unit ids without answering:
            # a dead device, and no request left pending when the server stops.
            raise NoSuchIdException(f"unit {self.unit_id} is silent")
        if self.response_delay_s:
            await asyncio.sleep(self.response_delay_s)
        if self.exception is not None:
            return self.exception
        at = address - start_address
        if function_code in (WRITE_COIL, WRITE_COILS) and set_values is not None:
            self.coils[address : address + len(set_values)] = [int(bool(v)) for v in set_values]
            return None
        image = self.image(function_code)
        if image is None:
            return None
        if function_code in BIT_FUNCTIONS:
            # pymodbus keeps coil N as bit N % 16 of the word at N (without bit addressing)
            first = address - address % 16
            bits = [bool(b) for b in image[first : first + 16 * count]]
            registers[at : at + count] = SimUtils.bitsToRegisters(bits + [False] * (16 * count - len(bits)))
        else:
            registers[at : at + count] = image[address : address + count]
        return None
