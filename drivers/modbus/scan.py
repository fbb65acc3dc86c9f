"""A bus scan: which unit ids answer, at which baud rate and parity, and what they are.

Each line setting (baud rate × parity) is tried in turn, most common first,
and at each every unit id gets one short read (holding register 0). A unit
that answers at all — with registers or with a Modbus exception — is there;
silence is not. A unit id is unique on a line, so a unit found at one
setting is not asked again at the next. Units found are then matched against the device profiles
(:mod:`drivers.modbus.identify`).

The scan keeps to a time budget: it knows what each probe costs (the reply
allowance plus the frame times at the baud rate), estimates the whole scan
before it starts, and when the budget runs out it stops and reports which
settings it did not cover. Serial ports are opened exclusively, as the
gateway opens them, so a scan refuses a port a running gateway is using.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from contracts.errors import DeviceTimeout
from drivers.modbus.bus import LineFault, ModbusBus
from drivers.modbus.config import BusConfig, Transport
from drivers.modbus.frames import READ_HOLDING, RTU_REQUEST_BYTES, rtu_response_length
from drivers.modbus.identify import Match, ReadRegisters, identify
from drivers.modbus.profiles import Profile

COMMON_BAUDRATES = (9600, 19200, 4800, 2400)
COMMON_PARITIES: tuple[Literal["N", "E", "O"], ...] = ("N", "E", "O")
DEFAULT_BUDGET_S = 300.0
DEFAULT_REPLY_S = 0.05  # most RS-485 sensors answer within a few tens of ms
_DEVICE = "scan"


@dataclass(frozen=True, slots=True)
class LineSetting:
    baudrate: int
    parity: Literal["N", "E", "O"]

    def __str__(self) -> str:
        return f"{self.baudrate} 8{self.parity}1"


@dataclass(frozen=True, slots=True)
class Found:
    """A unit that answered, and what it was judged to be."""

    setting: LineSetting | None  # None over TCP: the device server's own setting
    unit: int
    answer: str  # "registers" or "exception code 2"
    matches: tuple[Match, ...] = ()

    @property
    def profile(self) -> str | None:
        """The profile that fits best, when one fits clearly better than the next."""
        if not self.matches:
            return None
        if len(self.matches) > 1 and self.matches[1].score >= self.matches[0].score:
            return None
        return self.matches[0].profile


# Almost every probe of a scan goes unanswered: the bus's quiet time after silence
# (0.6 s, for libmodbus slaves) would stretch a default scan from minutes to hours.
SCAN_AFTER_SILENCE_S = 0.0


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int
    elapsed_s: float
    left_s: float
    setting: LineSetting | None
    unit: int
    found: int


@dataclass
class ScanResult:
    found: list[Found] = field(default_factory=list)
    probes: int = 0
    elapsed_s: float = 0.0
    skipped: list[LineSetting] = field(default_factory=list)  # not tried: the budget ran out
    noise: dict[str, int] = field(default_factory=dict)  # setting: answers that were no frame


@dataclass(frozen=True)
class ScanPlan:
    """What to try, over one serial port (``device``) or one RTU-over-TCP server (``host``)."""

    transport: Transport
    units: Sequence[int]
    settings: Sequence[LineSetting] = ()
    device: str | None = None
    host: str | None = None
    port: int | None = None
    reply_s: float = DEFAULT_REPLY_S
    budget_s: float = DEFAULT_BUDGET_S

    def bus(self, setting: LineSetting | None) -> BusConfig:
        """The bus config of one setting (TCP transports have none of their own)."""
        if self.transport == "rtu":
            assert setting is not None
            return BusConfig(
                id="scan",
                device=self.device,
                baudrate=setting.baudrate,
                parity=setting.parity,
                after_silence_s=SCAN_AFTER_SILENCE_S,
            )
        return BusConfig(
            id="scan",
            transport=self.transport,
            host=self.host,
            port=self.port,
            after_silence_s=SCAN_AFTER_SILENCE_S,
        )

    def timeout_s(self, setting: LineSetting | None) -> float:
        """How long one unit gets to answer: the reply allowance plus both frames on the wire."""
        if setting is None:
            return self.reply_s
        char_s = self.bus(setting).char_s
        return self.reply_s + (RTU_REQUEST_BYTES + rtu_response_length(1)) * char_s

    def probe_s(self, setting: LineSetting | None) -> float:
        """What a silent unit costs: its timeout and the quiet gap after it."""
        return self.timeout_s(setting) + (self.bus(setting).gap_s if setting is not None else 0.0)

    def sweeps(self) -> list[LineSetting | None]:
        return list(self.settings) if self.transport == "rtu" else [None]

    def estimate_s(self) -> float:
        """The whole scan if nothing answers (each answer makes it shorter)."""
        return sum(self.probe_s(s) * len(self.units) for s in self.sweeps())


async def scan(
    plan: ScanPlan, profiles: Sequence[Profile], progress: Callable[[Progress], None] = lambda p: None
) -> ScanResult:
    """Probe every unit at every setting of ``plan`` within its budget; identify what answered."""
    result = ScanResult()
    started = time.monotonic()
    sweeps = plan.sweeps()
    total = len(sweeps) * len(plan.units)
    for n, setting in enumerate(sweeps):
        elapsed = time.monotonic() - started
        if elapsed + plan.probe_s(setting) * len(plan.units) > plan.budget_s and result.probes:
            result.skipped = [s for s in sweeps[n:] if s is not None]
            break
        bus = ModbusBus(plan.bus(setting))
        try:
            for i, unit in enumerate(plan.units):
                if not any(f.unit == unit for f in result.found):
                    answer = await _probe(bus, unit, plan.timeout_s(setting), result, setting)
                    if answer is not None:
                        matches = await identify(_reader(bus, unit, plan.timeout_s(setting) * 4), profiles)
                        result.found.append(Found(setting, unit, answer, tuple(matches)))
                    result.probes += 1
                left = sum(plan.probe_s(s) * len(plan.units) for s in sweeps[n + 1 :])
                left += plan.probe_s(setting) * (len(plan.units) - i - 1)
                done = n * len(plan.units) + i + 1
                elapsed = time.monotonic() - started
                progress(Progress(done, total, elapsed, left, setting, unit, len(result.found)))
        finally:
            bus.close()
    result.elapsed_s = time.monotonic() - started
    return result


async def _probe(
    bus: ModbusBus, unit: int, timeout: float, result: ScanResult, setting: LineSetting | None
) -> str | None:
    """What ``unit`` answered to one read, or None for silence (or bytes that were no answer)."""
    try:
        await bus.read(_DEVICE, unit, READ_HOLDING, 0, 1, timeout=timeout)
    except DeviceTimeout:
        return None
    except LineFault as exc:
        if exc.fault == "exception":
            return str(exc).split(" reading ")[0]
        key = str(setting) if setting is not None else "tcp"
        result.noise[key] = result.noise.get(key, 0) + 1
        return None
    return "registers"


def _reader(bus: ModbusBus, unit: int, timeout: float) -> ReadRegisters:
    async def read(function: int, start: int, count: int) -> list[int]:
        return await bus.read(_DEVICE, unit, function, start, count, timeout=timeout)

    return read


def parse_units(text: str) -> list[int]:
    """``1-16,20,247`` → unit ids; raise ValueError for anything outside 1–247."""
    units: list[int] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        first, last = int(low), int(high or low)
        if not 1 <= first <= last <= 247:
            raise ValueError(f"unit ids are 1–247, got {part.strip()!r}")
        units.extend(range(first, last + 1))
    return list(dict.fromkeys(units))
