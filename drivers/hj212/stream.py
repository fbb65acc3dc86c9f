"""The HJ 212 stream: one TCP listener for many dataloggers, plus those on serial ports.

Each connection has its own framing buffer (bounded by one maximal frame) and
its own idle timer (reset only by a good frame), so a slow, silent or hostile
client costs a bounded amount of memory, is cut off in time, and never holds
up the others: frames are handled as they arrive, in the event loop.

Slots are shared fairly (:mod:`drivers.hj212.tcp`): one address cannot take
them all, a connection that sends no good frame soon is closed, and when the
listener is full such a connection makes room. When a datalogger's MN turns
up on a new connection, the old one (half-open after a 4G drop, typically) is
closed.

Commands go to a datalogger on the link its last frame came on
(:meth:`Hj212Stream.control`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import serial

from contracts.driver import StreamDriver
from contracts.errors import DeviceTimeout, DeviceUnreachable
from contracts.readings import ReadingBatch
from drivers.hj212 import control as commands
from drivers.hj212.codec import Frame
from drivers.hj212.config import Hj212DeviceConfig, Hj212Listener
from drivers.hj212.control import Command, ControlResult
from drivers.hj212.mapping import DataloggerMap
from drivers.hj212.replies import ANSWERS, CN_TIME_CALIBRATION_REQUEST
from drivers.hj212.session import Hj212Counters, Session
from drivers.hj212.tcp import Slots, TcpLink

log = logging.getLogger(__name__)

SERIAL_READ = 4096
CLOCK_CORRECTION_EVERY_S = 600.0  # at most one automatic time setting per datalogger this often


class Hj212Stream(StreamDriver):
    """Every configured HJ 212 datalogger, whichever way it is connected."""

    answers = True  # CN 9014 tells the datalogger its data is stored: it never sends it again

    def __init__(
        self,
        devices: Sequence[Hj212DeviceConfig],
        *,
        listener: Hj212Listener | None,
        serial_retry_s: float = 5.0,
    ) -> None:
        self.name = "hj212"
        self.devices: tuple[Hj212DeviceConfig, ...] = tuple(devices)
        self.listener = listener
        self.serial_retry_s = serial_retry_s
        self.counters = Hj212Counters()
        self.mapping = DataloggerMap(self.devices)
        self.on_batch: Callable[[ReadingBatch], None] | None = None
        self.slots = Slots(listener, self.counters) if listener is not None else None
        self._where: dict[str, tuple[Session, Callable[[], None] | None]] = {}
        self._corrected: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def open(self) -> None:
        if self.listener is None or self._server is not None:
            return
        host, port = self.listener.host, self.listener.port
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._link, host, port, start_serving=False, reuse_address=True
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
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    def status_fields(self, device: str) -> dict[str, Any]:
        """Whether the datalogger is connected now, and the deviations from the standard tolerated."""
        config = next((d for d in self.devices if d.id == device), None)
        linked = config is not None and config.mn in self._where
        tolerated = sum(n for (name, _), n in self.counters.tolerated.items() if name == device)
        return {"counters": {"linked": int(linked), "tolerated": tolerated}}

    @property
    def links(self) -> set[TcpLink]:
        """The TCP connections open now."""
        return self.slots.links if self.slots is not None else set()

    @property
    def by_address(self) -> Counter[str]:
        """How many of them each address holds."""
        return self.slots.by_address if self.slots is not None else Counter()

    def _link(self) -> TcpLink:
        assert self.slots is not None
        return TcpLink(self.slots, self._session if self.on_batch is not None else None, self._forget)

    async def control(self, device_id: str, command: Command, *, timeout_s: float = 30.0) -> ControlResult:
        """Send ``command`` to a connected datalogger and wait for its answers.

        Raises DeviceUnreachable when the datalogger has no link (or loses it meanwhile)
        and DeviceTimeout when the answer that ends the command does not come in time.
        """
        device = next((d for d in self.devices if d.id == device_id), None)
        if device is None:
            raise DeviceUnreachable(device_id, "no such HJ 212 device")
        session = self._where.get(device.mn, (None, None))[0]
        if session is None:
            raise DeviceUnreachable(device_id, "not connected (no frame from it on any link yet)")
        qn, result = session.command(command)
        log.info("hj212 %s: sent CN %s as QN %s", device_id, command.cn, qn)
        try:
            return await asyncio.wait_for(result, timeout_s)
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11 (JetPack 6 has 3.10)
            raise DeviceTimeout(
                device_id, f"no answer to CN {command.cn} (QN {qn}) in {timeout_s:g} s"
            ) from None
        finally:
            session.pending.forget(qn)

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
            fd = port.fileno()
            session = self._session(f"serial:{device.serial}", functools.partial(_write_all, fd))
            lost: asyncio.Future[str] = loop.create_future()

            def readable(session: Session = session, lost: asyncio.Future[str] = lost, fd: int = fd) -> None:
                try:
                    data = os.read(fd, SERIAL_READ)
                    if not data:
                        raise OSError("end of file")
                    answers = session.feed(data)
                    if answers:
                        _write_all(fd, b"".join(answers))
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
                self._forget(session)
                session.close()
            await asyncio.sleep(self.serial_retry_s)

    def _session(
        self, peer: str, send: Callable[[bytes], None], drop: Callable[[], None] | None = None
    ) -> Session:
        assert self.on_batch is not None
        max_segment = self.listener.max_segment_bytes if self.listener else 1024

        def on_device(session: Session, device: Hj212DeviceConfig, frame: Frame) -> None:
            self._seen(session, drop, device, frame)

        return Session(
            peer,
            self.mapping,
            self.on_batch,
            self.counters,
            max_segment=max_segment,
            send=send,
            on_device=on_device,
        )

    def _seen(
        self, session: Session, drop: Callable[[], None] | None, device: Hj212DeviceConfig, frame: Frame
    ) -> None:
        """A frame of ``device`` came on ``session``: commands go there now, and its clock is checked."""
        old = self._where.get(device.mn)
        if old is None or old[0] is not session:
            self._where[device.mn] = (session, drop)
            if old is not None and old[1] is not None:
                log.info("hj212 %s: now on %s; closing its old link %s", device.id, session.peer, old[0].peer)
                old[1]()
        cn = frame.cn or ""
        if cn == CN_TIME_CALIBRATION_REQUEST:
            self._set_clock(device, "it asked for the time")
        elif device.clock_skew_max_s is not None and cn not in ANSWERS and frame.qn is not None:
            skew = _qn_time(frame.qn, self.mapping, device) - time.time()
            if abs(skew) > device.clock_skew_max_s:
                self._set_clock(device, f"its clock is {skew:+.0f} s off")

    def _forget(self, session: Session) -> None:
        for mn, (where, _) in list(self._where.items()):
            if where is session:
                del self._where[mn]

    def _set_clock(self, device: Hj212DeviceConfig, why: str) -> None:
        loop = asyncio.get_running_loop()
        last = self._corrected.get(device.mn)
        if last is not None and loop.time() - last < CLOCK_CORRECTION_EVERY_S:
            return
        self._corrected[device.mn] = loop.time()
        self.counters.clock_corrections += 1
        task = loop.create_task(self._correct(device, why), name=f"hj212-set-time:{device.id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _correct(self, device: Hj212DeviceConfig, why: str) -> None:
        moment = datetime.fromtimestamp(time.time(), self.mapping.zone(device))
        try:
            result = await self.control(device.id, commands.set_time(moment))
        except (DeviceTimeout, DeviceUnreachable) as exc:
            log.warning("hj212 %s: setting its clock (%s) failed: %s", device.id, why, exc)
            return
        outcome = "done" if result.ok else f"refused (QnRtn {result.qn_rtn}, ExeRtn {result.exe_rtn})"
        log.info("hj212 %s: clock set to %s because %s: %s", device.id, moment.isoformat(), why, outcome)


def _qn_time(qn: str, mapping: DataloggerMap, device: Hj212DeviceConfig) -> float:
    """When the datalogger's clock says it sent a frame with this QN (YYYYMMDDhhmmsszzz)."""
    try:
        moment = datetime.strptime(qn[:14], "%Y%m%d%H%M%S").replace(tzinfo=mapping.zone(device))
    except ValueError:
        return time.time()  # not a time: nothing to correct by
    return moment.timestamp()


def _write_all(fd: int, data: bytes) -> None:
    """Write answers and commands to a datalogger's serial port."""
    os.write(fd, data)
