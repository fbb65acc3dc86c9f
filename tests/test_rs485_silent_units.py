"""A good unit keeps answering while silent units share the line, whatever the slave's RTU stack.

libmodbus' RTU server (``_modbus_rtu_receive``), after ignoring a request for
another unit, takes the next frame that arrives within its response timeout
(0.5 s by default) for that unit's answer (a "confirmation to ignore") and
drops it. When the other unit is silent, the next frame is the gateway's
following request, to the good unit, which is then lost: timeouts to a good
unit, only while silent units share the line. The peer below is a slave that
behaves that way, on a real pty; the bus keeps a longer silence after a
request nobody answered (``after_silence_s``), so the slave has given up by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import pytest

from contracts.errors import DeviceTimeout
from drivers.modbus.bus import ModbusBus
from drivers.modbus.config import BusConfig
from drivers.modbus.frames import with_crc
from drivers.simulators.rtu_server import open_pty_pair

RESPONSE_TIMEOUT_S = 0.5  # libmodbus' default
FRAME_END_S = 0.02
GOOD, SILENT = 1, (2, 3)
ROUNDS = 6


class LibmodbusLikeSlave:
    """One RTU slave (unit ``unit``) with libmodbus' confirmation-to-ignore rule."""

    def __init__(self, unit: int) -> None:
        self.unit = unit
        self.dropped = 0  # frames taken for another unit's answer
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self._fds: tuple[int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    async def serve_pty(self) -> str:
        master, slave, path = open_pty_pair()
        self._fds = (master, slave)
        asyncio.get_running_loop().add_reader(master, self._readable)
        self._task = asyncio.create_task(self._serve(), name="libmodbus-like-slave")
        return path

    async def stop(self) -> None:
        assert self._task is not None and self._fds is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        asyncio.get_running_loop().remove_reader(self._fds[0])
        for fd in self._fds:
            os.close(fd)

    def _readable(self) -> None:
        assert self._fds is not None
        with contextlib.suppress(BlockingIOError, OSError):
            self._chunks.put_nowait(os.read(self._fds[0], 256))

    async def _frame(self, timeout: float | None) -> bytes | None:
        """The next frame: bytes until the line is quiet for FRAME_END_S; None if none within ``timeout``."""
        try:
            frame = await asyncio.wait_for(self._chunks.get(), timeout)
        except asyncio.TimeoutError:
            return None
        while True:
            try:
                frame += await asyncio.wait_for(self._chunks.get(), FRAME_END_S)
            except asyncio.TimeoutError:
                return frame

    async def _serve(self) -> None:
        assert self._fds is not None
        while True:
            request = await self._frame(None)
            assert request is not None
            if request[0] != self.unit:
                # The other unit's answer comes next: ignore it (libmodbus: confirmation_to_ignore).
                if await self._frame(RESPONSE_TIMEOUT_S) is not None:
                    self.dropped += 1
                continue
            count = int.from_bytes(request[4:6], "big")
            answer = bytes([self.unit, request[1], 2 * count]) + bytes(2 * count)
            os.write(self._fds[0], with_crc(answer))


@pytest.fixture
async def slave() -> AsyncIterator[tuple[LibmodbusLikeSlave, str]]:
    peer = LibmodbusLikeSlave(GOOD)
    path = await peer.serve_pty()
    yield peer, path
    await peer.stop()


async def _rounds(bus: ModbusBus) -> int:
    """A silent unit, then the good one, for each silent unit, ROUNDS times; how often the good one failed."""
    failed = 0
    for _ in range(ROUNDS):
        for unit in SILENT:
            with pytest.raises(DeviceTimeout):
                await bus.read(f"dev-{unit}", unit, 3, 0, 2, timeout=0.3)
            try:
                await bus.read("dev-1", GOOD, 3, 0, 2, timeout=0.3)
            except DeviceTimeout:
                failed += 1
    return failed


async def test_requests_right_after_a_silent_unit_were_lost_to_such_a_slave(
    slave: tuple[LibmodbusLikeSlave, str],
) -> None:
    peer, path = slave
    bus = ModbusBus(BusConfig(id="rs485-1", device=path, after_silence_s=0))
    try:
        failed = await _rounds(bus)
    finally:
        bus.close()
    tries = ROUNDS * len(SILENT)
    assert failed == tries and peer.dropped == tries, "the cause: each good request taken for an answer"


async def test_a_good_unit_answers_every_time_between_silent_ones(
    slave: tuple[LibmodbusLikeSlave, str],
) -> None:
    peer, path = slave
    bus = ModbusBus(BusConfig(id="rs485-1", device=path))
    try:
        failed = await _rounds(bus)
    finally:
        bus.close()
    assert failed == 0 and bus.unit_counters(GOOD).ok == ROUNDS * len(SILENT) and peer.dropped == 0
    assert bus.unit_counters(GOOD).timeouts == 0
