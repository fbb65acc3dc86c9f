"""Modbus TCP driver: one connection per device, requests planned once at start."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Mapping
from typing import Literal

from pydantic import Field
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from contracts.config import PolledDeviceConfig
from contracts.driver import PolledDriver
from contracts.errors import DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from contracts.readings import ReadingBatch
from drivers.modbus.decoding import RequestDecoder, channel_rounding
from drivers.modbus.outputs import plan_write, read_back, writable_channels
from drivers.modbus.registers import BIT_TABLES, ModbusChannel, ReadRequest, plan_requests


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
        self._plan = [(request, RequestDecoder(config.channels, request)) for request in plan]
        self._rounding = channel_rounding(config.channels)
        self._client: AsyncModbusTcpClient | None = None
        self.outputs = writable_channels(config.channels)

    async def read(self) -> ReadingBatch:
        client = await self._connection()
        ts = time.time()
        values = [math.nan] * len(self.channel_ids)
        for request, decoder in self._plan:
            registers = await self._read_registers(client, request)
            decoder.fill(registers, values)
        batch = ReadingBatch.at(self.config.id, self.channel_ids, values, ts)
        self._rounding.apply(batch.values)
        return batch

    async def write(self, values: Mapping[str, int]) -> dict[str, float]:
        """Switch coils (FC 05 for one, FC 15 for a run), then read them back (FC 01)."""
        cfg = self.config
        write = plan_write(cfg.id, cfg.channels, values)
        client = await self._connection()
        for start, bits in write.runs:
            where = f"coils {start}..{start + len(bits) - 1}"
            if len(bits) == 1:
                await self._request(
                    client.write_coil(start, bool(bits[0]), device_id=cfg.unit_id), f"writing {where}"
                )
            else:
                switch = [bool(b) for b in bits]
                await self._request(
                    client.write_coils(start, switch, device_id=cfg.unit_id), f"writing {where}"
                )
        request = ReadRequest("coils", write.read_from, write.read_count, ())
        return read_back(write, await self._read_registers(client, request))

    async def aclose(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _connection(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        await self.aclose()
        cfg = self.config
        client = AsyncModbusTcpClient(cfg.host, port=cfg.port, timeout=cfg.timeout_s, retries=0)
        if not await client.connect():
            client.close()
            raise DeviceUnreachable(cfg.id, f"cannot connect to {cfg.host}:{cfg.port}")
        self._client = client
        return client

    async def _read_registers(self, client: AsyncModbusTcpClient, request: ReadRequest) -> list[int]:
        cfg = self.config
        read = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coils": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }[request.table]
        where = f"{request.table} registers {request.start}..{request.start + request.count - 1}"
        response = await self._request(
            read(request.start, count=request.count, device_id=cfg.unit_id), f"reading {where}"
        )
        if request.table in BIT_TABLES:  # bits come padded to whole bytes
            if len(response.bits) < request.count:
                raise DeviceProtocolError(cfg.id, f"{len(response.bits)} bits returned for {where}")
            return [int(bit) for bit in response.bits[: request.count]]
        if len(response.registers) != request.count:
            raise DeviceProtocolError(cfg.id, f"{len(response.registers)} registers returned for {where}")
        return list(response.registers)

    async def _request(self, sent: Awaitable[ModbusPDU], doing: str) -> ModbusPDU:
        """The answer to a request, pymodbus's errors (raised or returned) as the gateway's."""
        cfg = self.config
        try:
            response = await sent
        except ModbusIOException as exc:
            await self.aclose()
            raise DeviceTimeout(cfg.id, f"no answer {doing} within {cfg.timeout_s} s") from exc
        except ConnectionException as exc:
            await self.aclose()
            raise DeviceUnreachable(cfg.id, f"connection lost {doing}") from exc
        except ModbusException as exc:
            await self.aclose()
            raise DeviceProtocolError(cfg.id, f"bad answer {doing}: {exc}") from exc
        if response.isError():
            code = getattr(response, "exception_code", "?")
            raise DeviceProtocolError(cfg.id, f"exception code {code} {doing}")
        return response
