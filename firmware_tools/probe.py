"""Live values of one Modbus device, checked as a technician would: ``gridgate probe`` and ``read``.

Works on the wire alone, no broker: the device is read through the same bus
code the gateway uses (one request at a time, the quiet gap, counters). Each
value is rounded as the gateway publishes it and checked against its
channel's ``plausible`` range; a value that has not changed for
``STUCK_READS`` reads is flagged, and so is a 32- or 64-bit value that would
be plausible with the other word order (the most common register-map mistake).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contracts.errors import DriverError
from drivers.modbus.bus import Counters, ModbusBus
from drivers.modbus.config import BusConfig
from drivers.modbus.decoding import channel_rounding
from drivers.modbus.frames import FUNCTION
from drivers.modbus.registers import WIDTH, ModbusChannel, WordOrder, decode, plan_requests
from gateway.timestamps import iso_utc

STUCK_READS = 10
_ABSURD = 1e12  # beyond any sensor's range: a value this large, or this small, is a decoding mistake
_TINY = 1e-9


@dataclass(frozen=True)
class ProbeTarget:
    """One device: where it is, its unit id and register map."""

    device: str
    bus: BusConfig
    unit: int
    channels: tuple[ModbusChannel, ...]
    timeout_s: float = 1.0
    retries: int = 1

    def where(self) -> str:
        bus = self.bus
        if bus.transport == "rtu":
            return f"{bus.where()} {bus.baudrate} {bus.bytesize}{bus.parity}{bus.stopbits}"
        return f"{self.bus.transport} {self.bus.where()}"


@dataclass(frozen=True)
class ChannelCheck:
    channel: str
    value: float | None
    unit: str
    check: str  # "ok", "out_of_range", "no_range", "missing"
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sample:
    ts: float
    checks: tuple[ChannelCheck, ...]
    counters: dict[str, float]
    error: str | None = None

    def as_json(self, target: ProbeTarget) -> dict[str, Any]:
        """One reading as ``gridgate read`` prints it."""
        body: dict[str, Any] = {
            "device": target.device,
            "unit_id": target.unit,
            "bus": target.where(),
            "ts": iso_utc(self.ts),
        }
        if self.error:
            body["error"] = self.error
        body["readings"] = {
            c.channel: {
                "value": c.value,
                "unit": c.unit,
                "check": c.check,
                **({"notes": list(c.notes)} if c.notes else {}),
            }
            for c in self.checks
        }
        body["counters"] = self.counters
        return body


@dataclass
class Probe:
    """Reads ``target`` on demand and remembers enough to spot stuck values."""

    target: ProbeTarget
    reads: int = 0
    _bus: ModbusBus | None = None
    _last: dict[str, float] = field(default_factory=dict)
    _same: dict[str, int] = field(default_factory=dict)

    async def sample(self) -> Sample:
        """Read every channel once; a failed read is a sample with ``error`` set."""
        if self._bus is None:
            self._bus = ModbusBus(self.target.bus)
        ts = time.time()
        try:
            words = await self._read_all(self._bus)
        except DriverError as exc:
            return Sample(ts, (), self._counters(), str(exc))
        self.reads += 1
        return Sample(ts, tuple(self._check(words)), self._counters())

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None

    async def _read_all(self, bus: ModbusBus) -> dict[tuple[str, int], int]:
        target = self.target
        image: dict[tuple[str, int], int] = {}
        for request in plan_requests(target.channels):
            for attempt in range(1 + target.retries):
                try:
                    got = await bus.read(
                        target.device,
                        target.unit,
                        FUNCTION[request.table],
                        request.start,
                        request.count,
                        timeout=target.timeout_s,
                    )
                    break
                except DriverError:
                    if attempt == target.retries:
                        raise
            image.update({(request.table, request.start + i): w for i, w in enumerate(got)})
        return image

    def _check(self, image: dict[tuple[str, int], int]) -> list[ChannelCheck]:
        channels = self.target.channels
        words = [[image[(ch.table, ch.address + i)] for i in range(WIDTH[ch.type])] for ch in channels]
        raw = [_engineering(w, ch, ch.word_order) for w, ch in zip(words, channels, strict=True)]
        values = np.array(raw)
        channel_rounding(channels).apply(values)
        return [
            self._judge(ch, float(v), r, w)
            for ch, v, r, w in zip(channels, values.tolist(), raw, words, strict=True)
        ]

    def _judge(self, ch: ModbusChannel, value: float, raw: float, words: Sequence[int]) -> ChannelCheck:
        """``value`` as published; ``raw`` before rounding (a float's garbage tail rounds to 0)."""
        notes: list[str] = []
        if ch.type != "bits":
            same = self._same.get(ch.id, 0) + 1 if self._last.get(ch.id) == value else 1
            self._same[ch.id], self._last[ch.id] = same, value
            if same >= STUCK_READS:
                notes.append(f"stuck? the same for {same} reads")
        if not math.isfinite(value):
            return ChannelCheck(ch.id, None, ch.unit, "missing", tuple(notes))
        check = plausibility(ch, raw)
        if WIDTH[ch.type] > 1 and ch.type != "bits":
            other: WordOrder = "little" if ch.word_order == "big" else "big"
            swapped = _engineering(words, ch, other)
            if _believable(swapped, ch) and not _believable(raw, ch):
                notes.append(f"word order? with word_order = {other!r} it reads {swapped:.6g}")
        return ChannelCheck(ch.id, value, ch.unit, check, tuple(notes))

    def _counters(self) -> dict[str, float]:
        counters = self._bus.unit_counters(self.target.unit) if self._bus is not None else Counters()
        return counters.as_dict()


def plausibility(ch: ModbusChannel, value: float) -> str:
    """``ok`` or ``out_of_range`` against the channel's plausible range; ``no_range`` without one."""
    if ch.plausible is None:
        return "no_range"
    return "ok" if _believable(value, ch) else "out_of_range"


def _engineering(words: Sequence[int], ch: ModbusChannel, word_order: WordOrder) -> float:
    raw = decode(words, ch.type, word_order, byte_order=ch.byte_order, bit=ch.bit or 0, bits=ch.bits)
    return raw * ch.scale + ch.offset


def _believable(value: float, ch: ModbusChannel) -> bool:
    """Within the plausible range, and not the tiny or huge number a misread float makes."""
    if not math.isfinite(value) or not (value == 0 or _TINY < abs(value) < _ABSURD):
        return False
    return ch.plausible is None or ch.plausible[0] <= value <= ch.plausible[1]
