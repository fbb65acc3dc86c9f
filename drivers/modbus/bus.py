"""A shared Modbus bus: one request on the wire at a time, a quiet gap between frames.

Every device on the bus reads through :meth:`ModbusBus.read`, which waits its
turn, keeps the gap, sends the request and takes the answer apart. What went
wrong is counted per bus and per unit and raised as a gateway error, so a bad
answer never reaches detection as a value.

Turns are first come, first served, except that a *probe* (a try of a device
already known to be offline) waits until no regular poll is waiting: a dead
device costs the others at most one timeout, not one per poll.

On an RTU line, a request nobody answered is followed by a longer silence
(``after_silence_s`` from when it was sent): a libmodbus slave that saw a
request for another unit takes the next frame within its response timeout for
that unit's answer and drops it, so a request sent right after a silent unit's
timeout was lost to it (timeouts to a good unit, only while silent units
shared the line).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from contracts.errors import DeviceProtocolError, DeviceTimeout
from drivers.modbus.config import BusConfig
from drivers.modbus.frames import (
    Answer,
    Fault,
    classify_rtu,
    classify_rtu_write,
    coils_pdu,
    mbap_frame,
    parse_mbap,
    parse_mbap_write,
    parse_rtu,
    parse_rtu_write,
    with_crc,
)
from drivers.modbus.lines import Line, SerialLine, TcpLine


class LineFault(DeviceProtocolError):
    """An answer came but was wrong; ``fault`` says how (see :mod:`drivers.modbus.frames`)."""

    def __init__(self, device: str, fault: Fault, message: str) -> None:
        self.fault = fault
        super().__init__(device, message)


@dataclass
class Counters:
    """What happened on a bus, or to one device on it, since the gateway started."""

    requests: int = 0
    ok: int = 0
    timeouts: int = 0
    crc: int = 0
    garbage: int = 0
    wrong_unit: int = 0
    exception: int = 0
    busy_s: float = 0.0

    def count(self, fault: Fault | None) -> None:
        if fault is None:
            self.timeouts += 1
        else:
            setattr(self, fault, getattr(self, fault) + 1)

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class _Exchange:
    """One request (its PDU) and how to find its answer in RTU bytes or in an MBAP frame."""

    pdu: bytes
    parse: Callable[[bytes], Answer | None]  # None while the answer may still be arriving
    classify: Callable[[bytes], Answer]  # what the bytes were, once the line went quiet
    parse_mbap: Callable[[bytes, int], Answer]  # (frame, transaction id)


@dataclass
class _Turns:
    """Who may use the wire next: regular polls in arrival order, then probes."""

    busy: bool = False
    waiting: list[tuple[int, int, asyncio.Future[None]]] = field(default_factory=list)
    order: itertools.count[int] = field(default_factory=itertools.count)

    async def acquire(self, probe: bool) -> None:
        if not self.busy and not self.waiting:
            self.busy = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self.waiting, (int(probe), next(self.order), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # our turn came as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self.waiting:
            _, _, turn = heapq.heappop(self.waiting)
            if not turn.done():
                turn.set_result(None)
                return
        self.busy = False


class ModbusBus:
    """A bus from a ``[[buses]]`` entry; open lazily, reopened after the line is lost."""

    def __init__(self, config: BusConfig) -> None:
        self.config = config
        self.id = config.id
        self.counters = Counters()
        self.units: dict[int, Counters] = {}
        self._line: Line = _line_for(config)
        self._open = False
        self._turns = _Turns()
        self._last_end = 0.0
        self._unanswered_at: float | None = None  # when a request nobody answered was sent
        self._transaction = 0

    async def read(
        self,
        device: str,
        unit: int,
        function: int,
        start: int,
        count: int,
        *,
        timeout: float,
        probe: bool = False,
    ) -> list[int]:
        """Registers ``start..start+count-1`` of ``unit``; raise DriverError if they cannot be read."""
        exchange = _Exchange(
            pdu=struct.pack(">BHH", function, start, count),
            parse=lambda buffer: parse_rtu(buffer, unit, function, count),
            classify=lambda buffer: classify_rtu(buffer, unit, function, count),
            parse_mbap=lambda frame, tid: parse_mbap(frame, tid, unit, function, count),
        )
        where = f"registers {start}..{start + count - 1} of unit {unit} on bus {self.id}"
        return list(await self._use(device, unit, exchange, timeout, probe, f"reading {where}"))

    async def write_coils(
        self, device: str, unit: int, start: int, bits: tuple[int, ...], *, timeout: float
    ) -> None:
        """Switch coils ``start..`` of ``unit`` to ``bits`` (FC 05 one, FC 15 a run), in turn with polls."""
        pdu = coils_pdu(start, bits)
        exchange = _Exchange(
            pdu=pdu,
            parse=lambda buffer: parse_rtu_write(buffer, unit, pdu),
            classify=lambda buffer: classify_rtu_write(buffer, unit, pdu),
            parse_mbap=lambda frame, tid: parse_mbap_write(frame, tid, unit, pdu),
        )
        where = f"coils {start}..{start + len(bits) - 1} of unit {unit} on bus {self.id}"
        await self._use(device, unit, exchange, timeout, False, f"writing {where}")

    async def _use(
        self, device: str, unit: int, exchange: _Exchange, timeout: float, probe: bool, doing: str
    ) -> tuple[int, ...]:
        await self._turns.acquire(probe)
        began = time.monotonic()
        try:
            answer = await self._transact(device, unit, exchange, timeout)
        finally:
            self._last_end = time.monotonic()
            busy = self._last_end - began
            self.counters.busy_s += busy
            self.unit_counters(unit).busy_s += busy
            self._turns.release()
        if answer.registers is not None:
            return answer.registers
        if answer.fault is None:
            raise DeviceTimeout(device, f"no answer within {timeout} s {doing}")
        raise LineFault(device, answer.fault, f"{answer.detail} {doing}")

    def close(self) -> None:
        self._line.close()
        self._open = False

    def unit_counters(self, unit: int) -> Counters:
        """The counters of one unit id on this bus."""
        return self.units.setdefault(unit, Counters())

    async def _transact(self, device: str, unit: int, exchange: _Exchange, timeout: float) -> Answer:
        if not self._open:
            await self._line.open()
            self._open = True
        stale = self._line.discard()
        if stale:
            self.counters.garbage += 1
        wait = self.config.gap_s - (time.monotonic() - self._last_end)
        if self._unanswered_at is not None:
            wait = max(wait, self._unanswered_at + self.config.after_silence_s - time.monotonic())
            self._unanswered_at = None
        if wait > 0:
            await asyncio.sleep(wait)
        self.counters.requests += 1
        self.unit_counters(unit).requests += 1
        try:
            if self.config.transport == "tcp":
                answer = await self._exchange_mbap(unit, exchange, timeout)
            else:
                answer = await self._exchange_rtu(unit, exchange, timeout)
        except Exception:
            self.close()
            raise
        for counters in (self.counters, self.unit_counters(unit)):
            if answer.registers is not None:
                counters.ok += 1
            else:
                counters.count(answer.fault)
            if answer.skipped:
                counters.garbage += 1
        return answer

    async def _exchange_rtu(self, unit: int, exchange: _Exchange, timeout: float) -> Answer:
        await self._line.send(with_crc(bytes([unit]) + exchange.pdu))
        sent = time.monotonic()
        deadline = sent + timeout
        buffer = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if not buffer:
                    self._unanswered_at = sent
                return exchange.classify(buffer)
            chunk = await self._line.receive(min(left, self.config.end_s) if buffer else left)
            if not chunk:
                if buffer:  # the line went quiet after bytes that are no answer
                    return exchange.classify(buffer)
                continue
            buffer += chunk
            answer = exchange.parse(buffer)
            if answer is not None:
                return answer

    async def _exchange_mbap(self, unit: int, exchange: _Exchange, timeout: float) -> Answer:
        self._transaction = (self._transaction + 1) & 0xFFFF
        tid = self._transaction
        await self._line.send(mbap_frame(tid, unit, exchange.pdu))
        deadline = time.monotonic() + timeout
        buffer = b""
        while True:
            if len(buffer) >= 6:
                size = 6 + int.from_bytes(buffer[4:6], "big")
                if len(buffer) >= size:
                    return exchange.parse_mbap(buffer[:size], tid)
            left = deadline - time.monotonic()
            if left <= 0:
                return Answer(fault="garbage", detail="incomplete answer") if buffer else Answer()
            buffer += await self._line.receive(left)


def _line_for(config: BusConfig) -> Line:
    if config.transport == "rtu":
        assert config.device is not None
        return SerialLine(
            config.id,
            config.device,
            baudrate=config.baudrate,
            bytesize=config.bytesize,
            parity=config.parity,
            stopbits=config.stopbits,
        )
    assert config.host is not None and config.port is not None
    return TcpLine(config.id, config.host, config.port)
