"""The byte pipes a Modbus bus talks over: a serial port, or a TCP connection.

Both give the bus the same three things: send bytes, receive whatever arrives
within a time, and throw away what is waiting (stale bytes from a late answer
must never be taken for the next one).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol, cast

import serial

from contracts.errors import DeviceUnreachable

_PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


class Line(Protocol):
    async def open(self) -> None: ...

    def close(self) -> None: ...

    async def send(self, data: bytes) -> None: ...

    async def receive(self, timeout: float) -> bytes:
        """Bytes that arrived within ``timeout`` seconds; empty when none did."""
        ...

    def discard(self) -> int:
        """Drop bytes already received; return how many."""
        ...


class _Received:
    """Bytes as they arrive, and a way to wait for more."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._arrived = asyncio.Event()
        self.lost: str | None = None  # why the line is gone, once it is

    def feed(self, data: bytes) -> None:
        self._buffer += data
        self._arrived.set()

    async def take(self, timeout: float) -> bytes:
        if not self._buffer and self.lost is None:
            self._arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def discard(self) -> int:
        dropped = len(self._buffer)
        self._buffer.clear()
        return dropped


class SerialLine(_Received):
    """An RS-485 port through pyserial, read without threads via the event loop."""

    def __init__(
        self, bus: str, device: str, *, baudrate: int, bytesize: int, parity: str, stopbits: int
    ) -> None:
        super().__init__()
        self.bus = bus
        self.device = device
        self._settings = {
            "baudrate": baudrate,
            "bytesize": bytesize,
            "parity": _PARITY[parity],
            "stopbits": stopbits,
        }
        self._port: serial.Serial | None = None

    async def open(self) -> None:
        try:
            # Exclusive: a scan or probe must not talk over a running gateway's polls, nor it over theirs.
            port = serial.Serial(self.device, timeout=0, write_timeout=0, exclusive=True, **self._settings)
        except (serial.SerialException, ValueError) as exc:
            if "exclusively lock" in str(exc):
                raise DeviceUnreachable(
                    self.bus,
                    f"serial port {self.device} is in use by another program (a running gateway? "
                    "stop it first: systemctl stop gridgate)",
                ) from exc
            raise DeviceUnreachable(self.bus, f"cannot open serial port {self.device}: {exc}") from exc
        port.reset_input_buffer()
        asyncio.get_running_loop().add_reader(port.fileno(), self._readable)
        self._port = port
        self.lost = None

    def close(self) -> None:
        if self._port is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._port.fileno())
            self._port.close()
            self._port = None

    async def send(self, data: bytes) -> None:
        port = self._require()
        try:
            view = memoryview(data)
            while view:
                written = port.write(view) or 0
                view = view[written:]
                if view:
                    await asyncio.sleep(0.001)
        except serial.SerialException as exc:
            self.close()
            raise DeviceUnreachable(self.bus, f"serial port {self.device} failed: {exc}") from exc

    async def receive(self, timeout: float) -> bytes:
        self._require()
        return await self.take(timeout)

    def _readable(self) -> None:
        assert self._port is not None
        try:
            data = self._port.read(4096)
        except serial.SerialException as exc:  # e.g. the USB adapter was pulled
            self.lost = str(exc)
            self.close()
            self._arrived.set()
            return
        if data:
            self.feed(data)

    def _require(self) -> serial.Serial:
        if self._port is None:
            why = f": {self.lost}" if self.lost else ""
            raise DeviceUnreachable(self.bus, f"serial port {self.device} is not open{why}")
        return self._port


class TcpConnection(asyncio.Protocol):
    """A TCP connection to ``host:port`` for ``owner`` (a bus or a device), opened within a time."""

    def __init__(self, owner: str, host: str, port: int) -> None:
        self.owner = owner
        self.host = host
        self.port = port
        self._transport: asyncio.Transport | None = None
        self.lost: str | None = None  # why the connection is gone, once it is

    async def connect(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self.lost = None
        try:
            await asyncio.wait_for(loop.create_connection(lambda: self, self.host, self.port), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise DeviceUnreachable(self.owner, f"cannot connect to {self.host}:{self.port}: {exc}") from exc

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it


class TcpLine(_Received, TcpConnection):
    """A TCP connection to a serial device server (RTU over TCP) or a Modbus TCP gateway."""

    def __init__(self, bus: str, host: str, port: int, *, connect_timeout: float = 3.0) -> None:
        _Received.__init__(self)
        TcpConnection.__init__(self, bus, host, port)
        self.bus = bus
        self._connect_timeout = connect_timeout

    async def open(self) -> None:
        await self.connect(self._connect_timeout)

    async def send(self, data: bytes) -> None:
        self._require().write(data)

    async def receive(self, timeout: float) -> bytes:
        self._require()
        data = await self.take(timeout)
        if not data and self.lost is not None:
            self._require()
        return data

    def data_received(self, data: bytes) -> None:
        self.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self.lost = str(exc) if exc else "closed by the other end"
        self._arrived.set()

    def _require(self) -> asyncio.Transport:
        if self._transport is None:
            why = f": {self.lost}" if self.lost else ""
            raise DeviceUnreachable(self.bus, f"not connected to {self.host}:{self.port}{why}")
        return self._transport
