"""Several simulated devices on one Modbus RTU line: a pty pair, a serial port, or RTU over TCP.

The server answers read requests (function codes 1 to 4) for the unit ids it
holds, from each device's register image, the way a real RS-485 slave does:
requests for other units and frames with a bad CRC get no answer. Each unit can
misbehave (see :class:`SimulatedModbusDevice`: slow, dead, exception codes), and
the line can too, per unit: ``garbage`` (noise instead of an answer), ``crc``
(an answer with a broken CRC), ``wrong_unit`` (an answer from another address).

With ``baudrate`` set, each exchange takes the time its bytes would take on a
real line at that speed, so bus occupancy can be measured on a pty.

On a pty each unit can also have its own line settings (``settings``: unit →
baud rate and parity): the server reads what the other end has set on the
port and a unit answers only when they match, as a device that hears a wrong
baud rate or parity gets only garbage and stays silent. That is what a bus
scan has to find its way through. (A Linux pty keeps the odd-parity flag but
drops "parity on", so on a pty even parity cannot be told from none: a unit
set to ``E`` also hears ``N``. Odd parity and baud rates are told apart. And
glibc may refuse to set a parity on a pty reopened at the baud rate it had.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import struct
import termios
import tty
from collections.abc import Callable, Iterable
from typing import Literal

from drivers.modbus.frames import (
    BIT_FUNCTIONS,
    RTU_REQUEST_BYTES,
    WRITE_COIL,
    WRITE_COILS,
    crc16,
    data_bytes,
    with_crc,
)
from drivers.simulators.modbus_device import SimulatedModbusDevice

LineFault = Literal["garbage", "crc", "wrong_unit"]
_SPEEDS = {
    getattr(termios, f"B{rate}"): rate for rate in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
}


def open_pty_pair() -> tuple[int, int, str]:
    """A raw pty pair: (master fd, slave fd, slave path). The gateway opens the path."""
    master, slave = os.openpty()
    tty.setraw(slave, termios.TCSANOW)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


class RtuLineServer:
    """Answers RTU requests on one line for every device it holds, by unit id."""

    def __init__(self, devices: Iterable[SimulatedModbusDevice], *, baudrate: int | None = None) -> None:
        self.devices = {d.unit_id: d for d in devices}
        self.faults: dict[int, LineFault] = {}
        self.settings: dict[int, tuple[int, str]] = {}  # unit: (baud rate, parity) it listens at
        self.baudrate = baudrate
        self.frames_in = 0
        self._buffer = bytearray()
        self._rng = random.Random(7)
        self._fds: tuple[int, int] | None = None
        self._tcp: asyncio.Server | None = None
        self._writer: Callable[[bytes], object] = lambda data: None
        self._work: asyncio.Task[None] | None = None
        self._pending: asyncio.Queue[bytes] = asyncio.Queue()

    # --- where the line is -------------------------------------------------
    async def serve_pty(self) -> str:
        """Serve on a new pty pair; return the path the gateway opens as its serial port."""
        master, slave, path = open_pty_pair()
        self._fds = (master, slave)
        asyncio.get_running_loop().add_reader(master, self._pty_readable)
        self._writer = lambda data: os.write(master, data)
        self._work = asyncio.create_task(self._answer_loop(), name="rtu-sim")
        return path

    async def serve_tcp(self, host: str, port: int) -> None:
        """Serve RTU frames over TCP (a serial device server), one client at a time."""
        self._tcp = await asyncio.start_server(self._client, host, port)
        self._work = asyncio.create_task(self._answer_loop(), name="rtu-sim")

    async def stop(self) -> None:
        if self._work is not None:
            self._work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._work
            self._work = None
        if self._fds is not None:
            asyncio.get_running_loop().remove_reader(self._fds[0])
            for fd in self._fds:
                os.close(fd)
            self._fds = None
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
            self._tcp = None

    def noise(self, size: int = 7) -> None:
        """Put ``size`` random bytes on the line now, as a disturbance would."""
        self._writer(self._rng.randbytes(size))

    # --- bytes in, answers out ---------------------------------------------
    def _pty_readable(self) -> None:
        assert self._fds is not None
        try:
            data = os.read(self._fds[0], 4096)
        except BlockingIOError:
            return
        except OSError:  # EIO: nobody has the slave side open right now
            return
        self._received(data)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer.write
        try:
            while data := await reader.read(4096):
                self._received(data)
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= RTU_REQUEST_BYTES:
            size = _request_size(self._buffer)
            if len(self._buffer) < size:
                break
            frame = bytes(self._buffer[:size])
            if crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
                del self._buffer[0]  # not a frame start: resynchronise byte by byte
                continue
            del self._buffer[:size]
            self.frames_in += 1
            self._pending.put_nowait(frame)

    async def _answer_loop(self) -> None:
        while True:
            frame = await self._pending.get()
            answer = await self._answer(frame)
            if answer is not None:
                self._writer(answer)

    async def _answer(self, frame: bytes) -> bytes | None:
        unit, function, start, count = struct.unpack(">BBHH", frame[:6])
        device = self.devices.get(unit)
        if device is None or getattr(device, "silent", False) or not self._hears(unit):
            return None
        device.requests += 1
        if device.response_delay_s:
            await asyncio.sleep(device.response_delay_s)
        image = device.image(function)
        if device.exception is not None:
            body = struct.pack(">BBB", unit, function | 0x80, int(device.exception))
        elif function in (WRITE_COIL, WRITE_COILS):
            body = _switch(device, frame)
        elif image is None:
            body = struct.pack(">BBB", unit, function | 0x80, 1)  # illegal function
        elif start + count > len(image) or not 1 <= count <= (2000 if function in BIT_FUNCTIONS else 125):
            body = struct.pack(">BBB", unit, function | 0x80, 2)  # illegal data address
        elif function in BIT_FUNCTIONS:
            packed = bytearray(data_bytes(function, count))
            for i, bit in enumerate(image[start : start + count]):
                packed[i // 8] |= (bit & 1) << (i % 8)
            body = struct.pack(">BBB", unit, function, len(packed)) + bytes(packed)
        else:
            words = image[start : start + count]
            body = struct.pack(f">BBB{count}H", unit, function, 2 * count, *words)
        answer = self._spoil(unit, with_crc(body))
        if self.baudrate:
            await asyncio.sleep((RTU_REQUEST_BYTES + len(answer)) * 10 / self.baudrate)
        return answer

    def line_settings(self) -> tuple[int, str] | None:
        """The baud rate and parity the other end of the pty has set; None off a pty."""
        if self._fds is None:
            return None
        attributes = termios.tcgetattr(self._fds[1])
        cflag, speed = attributes[2], attributes[4]
        parity = "O" if cflag & termios.PARODD else ("E" if cflag & termios.PARENB else "N")
        return _SPEEDS.get(speed, 0), parity

    def _hears(self, unit: int) -> bool:
        wanted, line = self.settings.get(unit), self.line_settings()
        if wanted is None or line is None:
            return True
        return line[0] == wanted[0] and (line[1] == "O") == (wanted[1] == "O")

    def _spoil(self, unit: int, answer: bytes) -> bytes:
        fault = self.faults.get(unit)
        if fault == "garbage":
            return self._rng.randbytes(len(answer))
        if fault == "crc":
            return answer[:-1] + bytes([answer[-1] ^ 0x5A])
        if fault == "wrong_unit":
            return with_crc(bytes([(unit % 247) + 1]) + answer[1:-2])
        return answer


def _request_size(buffer: bytearray) -> int:
    """Bytes of the request starting the buffer: 8, or for FC 15 its header, data and CRC."""
    if buffer[1] == WRITE_COILS and len(buffer) >= 7:
        return 9 + buffer[6]
    return RTU_REQUEST_BYTES


def _switch(device: SimulatedModbusDevice, frame: bytes) -> bytes:
    """Store an FC 05 or FC 15 write in the coils; the answer echoes address and value or count."""
    unit, function, start, value = struct.unpack(">BBHH", frame[:6])
    if function == WRITE_COIL:
        if value not in (0, 0xFF00):
            return struct.pack(">BBB", unit, function | 0x80, 3)  # illegal data value
        bits = [int(value == 0xFF00)]
    else:
        bits = [(frame[7 + i // 8] >> (i % 8)) & 1 for i in range(value)]
    if start + len(bits) > len(device.coils):
        return struct.pack(">BBB", unit, function | 0x80, 2)  # illegal data address
    device.coils[start : start + len(bits)] = bits
    return frame[:6]
