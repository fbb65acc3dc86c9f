"""The HJ 212 stream: one TCP listener for many dataloggers, plus those on serial ports.

Each connection has its own framing buffer (bounded by one maximal frame) and
its own idle timer (reset only by a good frame), so a slow, silent or hostile
client costs a bounded amount of memory, is cut off in time, and never holds
up the others: frames are handled as they arrive, in the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence

import serial

from drivers.hj212.config import Hj212DeviceConfig, Hj212Listener
from drivers.hj212.mapping import DataloggerMap
from drivers.hj212.session import Hj212Counters, Session
from drivers.stream import StreamDriver
from gateway.errors import DeviceUnreachable
from gateway.readings import ReadingBatch

log = logging.getLogger(__name__)

MAX_UNSENT = 64 * 1024  # answers a client does not read; past this it is cut off
SERIAL_READ = 4096


class Hj212Stream(StreamDriver):
    """Every configured HJ 212 datalogger, whichever way it is connected."""

    config_model = Hj212DeviceConfig

    def __init__(
        self,
        devices: Sequence[Hj212DeviceConfig],
        *,
        listener: Hj212Listener | None,
        serial_retry_s: float = 5.0,
    ) -> None:
        self.name = "hj212"
        self.devices = tuple(devices)
        self.listener = listener
        self.serial_retry_s = serial_retry_s
        self.counters = Hj212Counters()
        self.mapping = DataloggerMap(self.devices)
        self.on_batch: Callable[[ReadingBatch], None] | None = None
        self.links: set[_TcpLink] = set()
        self._server: asyncio.Server | None = None

    async def open(self) -> None:
        if self.listener is None or self._server is not None:
            return
        host, port = self.listener.host, self.listener.port
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: _TcpLink(self), host, port, start_serving=False, reuse_address=True
            )
        except OSError as exc:
            raise DeviceUnreachable(self.name, f"cannot listen on {host}:{port}: {exc.strerror}") from exc

    async def run(self, on_batch: Callable[[ReadingBatch], None]) -> None:
        self.on_batch = on_batch
        if self._server is not None:
            await self._server.start_serving()
            log.info("hj212: listening on %s:%d", self.listener.host, self.listener.port)  # type: ignore[union-attr]
        ports = [
            asyncio.create_task(self._serve_serial(d), name=f"hj212-serial:{d.id}")
            for d in self.devices
            if d.serial is not None
        ]
        try:
            await asyncio.Event().wait()
        finally:
            for task in ports:
                task.cancel()
            await asyncio.gather(*ports, return_exceptions=True)

    async def aclose(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for link in list(self.links):
            link.abort()
        if server is not None:
            await server.wait_closed()

    async def _serve_serial(self, device: Hj212DeviceConfig) -> None:
        """Keep the device's serial port open, reopening it when it goes away."""
        assert device.serial is not None and self.on_batch is not None
        loop = asyncio.get_running_loop()
        failing = False
        while True:
            try:
                port = serial.Serial(device.serial, device.baudrate, timeout=0, write_timeout=0)
            except (serial.SerialException, OSError, ValueError) as exc:
                if not failing:
                    log.warning("hj212 %s: cannot open %s: %s", device.id, device.serial, exc)
                failing = True
                await asyncio.sleep(self.serial_retry_s)
                continue
            failing = False
            session = self._session(f"serial:{device.serial}")
            lost: asyncio.Future[str] = loop.create_future()
            fd = port.fileno()

            def readable(session: Session = session, lost: asyncio.Future[str] = lost, fd: int = fd) -> None:
                try:
                    data = os.read(fd, SERIAL_READ)
                    if not data:
                        raise OSError("end of file")
                    answers = session.feed(data)
                    if answers:
                        os.write(fd, b"".join(answers))
                except OSError as exc:
                    loop.remove_reader(fd)
                    if not lost.done():
                        lost.set_result(str(exc))

            loop.add_reader(fd, readable)
            log.info("hj212 %s: reading %s at %d baud", device.id, device.serial, device.baudrate)
            try:
                reason = await lost
                log.warning("hj212 %s: %s lost (%s); reopening", device.id, device.serial, reason)
            finally:
                loop.remove_reader(fd)
                port.close()
                session.close()
            await asyncio.sleep(self.serial_retry_s)

    def _session(self, peer: str) -> Session:
        assert self.on_batch is not None
        max_segment = self.listener.max_segment_bytes if self.listener else 1024
        return Session(peer, self.mapping, self.on_batch, self.counters, max_segment=max_segment)


class _TcpLink(asyncio.Protocol):
    """One datalogger's TCP connection."""

    def __init__(self, stream: Hj212Stream) -> None:
        self._stream = stream
        self._transport: asyncio.Transport | None = None
        self._session: Session | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_good = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        stream, listener = self._stream, self._stream.listener
        assert listener is not None
        self._transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        if len(stream.links) >= listener.max_connections or stream.on_batch is None:
            stream.counters.refused_connections += 1
            if stream.counters.refused_connections % 100 == 1:
                log.warning("hj212 %s: refused, %d connections open", peer, len(stream.links))
            transport.abort()
            return
        stream.links.add(self)
        stream.counters.connections += 1
        self._session = stream._session(peer)
        loop = asyncio.get_running_loop()
        self._last_good = loop.time()
        self._timer = loop.call_later(listener.idle_timeout_s, self._check_idle)
        log.info("hj212 %s: connected", peer)

    def data_received(self, data: bytes) -> None:
        session, transport = self._session, self._transport
        if session is None or transport is None:
            return
        accepted = session.accepted
        answers = session.feed(data)
        if session.accepted != accepted:
            self._last_good = asyncio.get_running_loop().time()
        if answers:
            transport.write(b"".join(answers))
            if transport.get_write_buffer_size() > MAX_UNSENT:
                log.warning("hj212 %s: does not read its answers; closing", session.peer)
                transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._stream.links.discard(self)
        if self._session is not None:
            self._session.close()
            log.info("hj212 %s: disconnected", self._session.peer)
            self._session = None

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _check_idle(self) -> None:
        listener = self._stream.listener
        assert listener is not None and self._transport is not None
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self._last_good
        if quiet < listener.idle_timeout_s:
            self._timer = loop.call_later(listener.idle_timeout_s - quiet, self._check_idle)
            return
        peer = self._session.peer if self._session else "?"
        log.info("hj212 %s: no good frame for %.0f s; closing", peer, quiet)
        self._transport.close()
