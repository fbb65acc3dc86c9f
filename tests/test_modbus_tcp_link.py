"""The Modbus TCP driver against a device that answers wrong: each fault named, the next poll clean.

A scripted TCP peer stands in for a device whose firmware or gateway misbehaves
(the simulators only answer correctly or not at all).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable

import pytest

from contracts.errors import DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from drivers.modbus.registers import ModbusChannel
from drivers.modbus.tcp import ModbusTcpConfig, ModbusTcpDriver
from firmware_tools.local_broker import free_port

Answer = Callable[[int, int, bytes], bytes | None]
"""(transaction id, unit, request PDU) → the bytes to send back, or None for silence."""


def _registers(tid: int, unit: int, values: list[int]) -> bytes:
    pdu = struct.pack(f">BB{len(values)}H", 3, 2 * len(values), *values)
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def _good(tid: int, unit: int, pdu: bytes) -> bytes:
    return _registers(tid, unit, [215, 88])


async def _device(answers: list[Answer]) -> tuple[asyncio.Server, int, list[int]]:
    """A peer that answers the n-th request with ``answers[n]`` (the last one from then on)."""
    seen: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(7)
                tid, _, length, unit = struct.unpack(">HHHB", header)
                pdu = await reader.readexactly(length - 1)
                answer = answers[min(len(seen), len(answers) - 1)]
                seen.append(tid)
                reply = answer(tid, unit, pdu)
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    return server, port, seen


def _driver(port: int, timeout_s: float = 0.3) -> ModbusTcpDriver:
    return ModbusTcpDriver(
        ModbusTcpConfig(
            id="dust-09",
            driver="modbus_tcp",
            host="127.0.0.1",
            port=port,
            unit_id=4,
            timeout_s=timeout_s,
            channels=(
                ModbusChannel(id="pm10", address=0, type="uint16"),
                ModbusChannel(id="pm25", address=1, type="uint16"),
            ),
        )
    )


@pytest.fixture
async def closing() -> AsyncIterator[list[asyncio.Server]]:
    servers: list[asyncio.Server] = []
    yield servers
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("wrong", "error", "says"),
    [
        (lambda tid, unit, pdu: _registers(tid, unit + 1, [1, 2]), DeviceProtocolError, "from unit 5"),
        (lambda tid, unit, pdu: b"\x00\x01\xff\xff\x03\x00", DeviceProtocolError, "no Modbus TCP frame"),
        (
            lambda tid, unit, pdu: _registers(tid, unit, [1]),
            DeviceProtocolError,
            "4-byte answer to a 2-register",
        ),
        (lambda tid, unit, pdu: _registers((tid + 7) & 0xFFFF, unit, [1, 2]), DeviceTimeout, "no answer"),
        (lambda tid, unit, pdu: None, DeviceTimeout, r"no answer within 0\.3 s reading holding"),
    ],
    ids=["wrong unit", "garbage", "short answer", "another transaction", "silence"],
)
async def test_a_wrong_answer_is_named_and_the_next_poll_reads_cleanly(
    closing: list[asyncio.Server], wrong: Answer, error: type[Exception], says: str
) -> None:
    server, port, seen = await _device([wrong, _good])
    closing.append(server)
    async with _driver(port) as driver:
        with pytest.raises(error, match=says):
            await driver.read()
        batch = await driver.read()
    assert batch.values.tolist() == [215.0, 88.0]
    assert len(seen) == 2


async def test_an_exception_answer_keeps_the_connection_and_a_late_answer_is_not_taken_for_the_next(
    closing: list[asyncio.Server],
) -> None:
    def exception(tid: int, unit: int, pdu: bytes) -> bytes:
        return struct.pack(">HHHBBB", tid, 0, 3, unit, 0x83, 2)

    late: list[bytes] = []

    def slow(tid: int, unit: int, pdu: bytes) -> None:
        late.append(_registers(tid, unit, [999, 999]))  # sent with the next answer, after the timeout

    def after_slow(tid: int, unit: int, pdu: bytes) -> bytes:
        return late.pop() + _good(tid, unit, pdu)

    server, port, _ = await _device([exception, _good, slow, after_slow])
    closing.append(server)
    async with _driver(port) as driver:
        with pytest.raises(DeviceProtocolError, match=r"exception code 2 reading holding registers 0\.\.1"):
            await driver.read()
        assert (await driver.read()).values.tolist() == [215.0, 88.0]
        with pytest.raises(DeviceTimeout):
            await driver.read()
        assert (await driver.read()).values.tolist() == [215.0, 88.0]


async def test_a_device_that_is_not_there_or_hangs_up_is_unreachable(closing: list[asyncio.Server]) -> None:
    async with _driver(free_port()) as driver:
        with pytest.raises(DeviceUnreachable, match=r"cannot connect to 127\.0\.0\.1"):
            await driver.read()

    def hang_up(tid: int, unit: int, pdu: bytes) -> bytes:
        raise ConnectionError

    server, port, _ = await _device([hang_up, _good])
    closing.append(server)
    async with _driver(port) as driver:
        with pytest.raises(DeviceUnreachable, match="connection lost reading holding registers"):
            await driver.read()
        assert (await driver.read()).values.tolist() == [215.0, 88.0]
