"""A datalogger in front of a dust or oil-fume monitor, pushing HJ 212-2017 over TCP.

It sends real-time data (CN 2011) every ``interval_s`` and minute data (CN
2051: average, minimum and maximum of the real-time values) every
``minute_s``, asks for an answer (Flag=5) and measures how long each 9014 took
to come back. Scenarios: ``normal``; ``exceedance`` (the main pollutant, PM10
or fume, climbs past its limit for ``excursion_s`` of every ``period_s``);
``fault`` (in that window the main pollutant is flagged D, device fault);
``corrupt`` (in that window every frame is damaged: bad CRC, wrong length,
truncated, or garbage between frames).

It speaks a :mod:`dialect <drivers.simulators.hj212_dialect>` (the 2005 edition,
CRC-16/MODBUS, no CRLF, ...), answers the platform's reverse-control commands
(:mod:`drivers.simulators.hj212_commands`), may run with its clock off by
``clock_offset_s`` and may ask for the time (CN 1013) when it connects.

Run ``python -m drivers.simulators.hj212_datalogger --port 14001 --kind dust``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from drivers.hj212.codec import CN_DATA_ANSWER, CN_MINUTE, CN_REALTIME, CrcMode, Frame, FrameError
from drivers.hj212.framing import FrameSplitter
from drivers.hj212.replies import ANSWERS, CN_TIME_CALIBRATION_REQUEST, answered_qn
from drivers.simulators.hj212_commands import LoggerState, respond
from drivers.simulators.hj212_dialect import DIALECTS, STANDARD, Dialect, combined

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorKind:
    """What a monitor sends: ``codes`` are (code, baseline, σ); ``main`` climbs to ``peak``."""

    st: str
    main: str
    peak: float
    codes: tuple[tuple[str, float, float], ...]


DUST = MonitorKind(
    st="39",
    main="a34002",
    peak=230.0,
    codes=(
        ("a34001", 160.0, 6.0),
        ("a34002", 60.0, 4.0),
        ("a34004", 33.0, 2.0),
        ("LA", 58.0, 1.5),
        ("a01001", 16.5, 0.2),
        ("a01002", 48.0, 0.5),
        ("a01007", 2.0, 0.4),
    ),
)
# No standard code for oil fume: vendors use their own (ST 99, non-standard); YY01 here.
FUME = MonitorKind(
    st="99",
    main="YY01",
    peak=3.5,
    codes=(
        ("YY01", 0.8, 0.1),
        ("a34001", 1.5, 0.2),
        ("a24088", 4.0, 0.5),
    ),
)
KINDS = {"dust": DUST, "fume": FUME}
_Items = list[tuple[tuple[str, str], ...]]
SCENARIOS = ("normal", "exceedance", "fault", "corrupt")


@dataclass
class Hj212Datalogger:
    """One simulated datalogger; ``answers`` and ``latencies_s`` fill as 9014s arrive.

    ``commands`` are the platform's commands it received (and answered), in order.
    """

    mn: str
    pw: str
    kind: str = "dust"
    scenario: str = "normal"
    interval_s: float = 1.0
    minute_s: float = 60.0
    period_s: float = 60.0
    start_s: float = 10.0
    excursion_s: float = 20.0
    time_zone: str = "Asia/Shanghai"
    seed: int | None = None
    dialect: Dialect = STANDARD
    clock_offset_s: float = 0.0
    asks_time: bool = False
    answers: list[Frame] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    commands: list[Frame] = field(default_factory=list)
    sent: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.scenario not in SCENARIOS:
            raise ValueError(f"kind must be one of {list(KINDS)}, scenario one of {SCENARIOS}")
        self._spec = KINDS[self.kind]
        self._rng = random.Random(self.seed)
        self._zone = ZoneInfo(self.time_zone)
        self._minute: dict[str, list[float]] = {}
        self._waiting: dict[str, float] = {}
        self._qn_count = 0
        self.state = LoggerState(
            self._zone, realtime_s=self.interval_s, minute_s=self.minute_s, clock_offset_s=self.clock_offset_s
        )

    def in_window(self, t: float) -> bool:
        """Whether the scenario's special window is on ``t`` seconds after start."""
        return 0 <= t % self.period_s - self.start_s < self.excursion_s

    def values(self, t: float) -> dict[str, float]:
        """What the monitor measures ``t`` seconds after start."""
        out = {code: base + self._rng.gauss(0, sigma) for code, base, sigma in self._spec.codes}
        if self.scenario == "exceedance" and self.in_window(t):
            main, peak = self._spec.main, self._spec.peak
            base = next(b for c, b, _ in self._spec.codes if c == main)
            phase = t % self.period_s - self.start_s
            out[main] = base + (peak - base) * math.sin(math.pi * phase / self.excursion_s) ** 0.3
        return {code: max(value, 0.0) for code, value in out.items()}

    def realtime_frame(self, t: float, now: datetime) -> bytes:
        """A CN 2011 frame for ``t`` seconds after start, stamped ``now``."""
        values = self.values(t)
        for code, value in values.items():
            self._minute.setdefault(code, []).append(value)
        fault = self.scenario == "fault" and self.in_window(t)
        cp: _Items = [(("DataTime", self.dialect.data_time(now.strftime("%Y%m%d%H%M%S"))),)]
        cp += [
            (
                (f"{code}-Rtd", f"{value:.3f}"),
                (f"{code}-Flag", "D" if fault and code == self._spec.main else "N"),
            )
            for code, value in values.items()
        ]
        frame = self._frame(CN_REALTIME, now, cp)
        return self._damage(frame) if self.scenario == "corrupt" and self.in_window(t) else frame

    def minute_frame(self, now: datetime) -> bytes:
        """A CN 2051 frame over the real-time values since the previous one."""
        start = now.replace(second=0, microsecond=0)
        cp: _Items = [(("DataTime", self.dialect.data_time(start.strftime("%Y%m%d%H%M%S"))),)]
        cp += [
            (
                (f"{code}-Avg", f"{sum(v) / len(v):.3f}"),
                (f"{code}-Min", f"{min(v):.3f}"),
                (f"{code}-Max", f"{max(v):.3f}"),
                (f"{code}-Flag", "N"),
            )
            for code, v in self._minute.items()
            if v
        ]
        self._minute.clear()
        return self._frame(CN_MINUTE, now, cp)

    async def run(self, host: str, port: int, *, duration_s: float | None = None) -> None:
        """Connect (retrying until the gateway listens), send, read answers; reconnect on loss."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while duration_s is None or loop.time() - started < duration_s:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            answers = asyncio.create_task(self._read_answers(reader, writer), name=f"answers:{self.mn}")
            try:
                if self.asks_time:
                    writer.write(self._frame(CN_TIME_CALIBRATION_REQUEST, self.state.now(), []))
                await self._send_until(writer, started, duration_s)
            except OSError as exc:
                log.warning("datalogger %s: connection lost: %s", self.mn, exc)
            finally:
                answers.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):  # reset by the gateway
                    await answers
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _send_until(
        self, writer: asyncio.StreamWriter, started: float, duration_s: float | None
    ) -> None:
        loop = asyncio.get_running_loop()
        next_minute = loop.time() + self.state.minute_s
        due = loop.time()
        while duration_s is None or loop.time() - started < duration_s:
            now = self.state.now()
            if self.state.realtime_on:
                writer.write(self.realtime_frame(loop.time() - started, now))
            if loop.time() >= next_minute:
                writer.write(self.minute_frame(now))
                next_minute += self.state.minute_s
            await writer.drain()
            due += self.state.realtime_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            if writer.is_closing():
                raise OSError("closed by the gateway")

    async def _read_answers(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        modes = {self.mn: CrcMode.MODBUS} if self.dialect.modbus_crc else None
        splitter = FrameSplitter(source=f"datalogger {self.mn}", crc_modes=modes)
        loop = asyncio.get_running_loop()
        while data := await reader.read(4096):
            for item in splitter.feed(data):
                if isinstance(item, FrameError):
                    log.warning("datalogger %s: bad answer: %s", self.mn, item)
                    continue
                if item.cn not in ANSWERS:  # a command from the platform
                    self.commands.append(item)
                    writer.write(
                        b"".join(
                            respond(item, self.state, pw=self.pw, st=self._spec.st, dialect=self.dialect)
                        )
                    )
                    continue
                qn = answered_qn(item)
                if item.cn == CN_DATA_ANSWER and qn in self._waiting:
                    self.latencies_s.append(loop.time() - self._waiting.pop(qn))
                self.answers.append(item)

    def _frame(self, cn: str, now: datetime, cp: _Items) -> bytes:
        self._qn_count += 1
        millis = (now.microsecond // 1000 + self._qn_count) % 1000  # unique within a second
        qn = now.strftime("%Y%m%d%H%M%S") + f"{millis:03d}"
        header = (
            ("QN", qn),
            ("ST", self._spec.st),
            ("CN", cn),
            ("PW", self.pw),
            ("MN", self.mn),
            ("Flag", self.dialect.flag(answer=True)),
        )
        self._waiting[qn] = asyncio.get_running_loop().time()
        if len(self._waiting) > 1000:  # answers that never came: forget the oldest
            self._waiting.pop(next(iter(self._waiting)))
        self.sent += 1
        return self.dialect.encode(Frame(header, tuple(cp)))

    def _damage(self, frame: bytes) -> bytes:
        how = self._rng.randrange(4)
        if how == 0:  # one character of the data segment changed: the CRC no longer matches
            at = self._rng.randrange(6, len(frame) - 6)
            return frame[:at] + (b"X" if frame[at : at + 1] != b"X" else b"Y") + frame[at + 1 :]
        if how == 1:
            return frame[:2] + b"%04d" % (int(frame[2:6]) - 3) + frame[6:]
        if how == 2:
            return frame[: len(frame) // 2] + b"\r\n"
        return b"\x00\xffnoise" + frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=14001)
    parser.add_argument("--kind", choices=list(KINDS), default="dust")
    parser.add_argument("--scenario", choices=SCENARIOS, default="exceedance")
    parser.add_argument("--mn", default="010000A8900016F000169DC0")
    parser.add_argument("--pw", default="123456")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between 2011 frames")
    parser.add_argument("--minute", type=float, default=60.0, help="seconds between 2051 frames")
    parser.add_argument("--period", type=float, default=60.0, help="seconds between excursions")
    parser.add_argument("--start", type=float, default=10.0, help="seconds into each period")
    parser.add_argument(
        "--dialect",
        choices=list(DIALECTS),
        action="append",
        default=[],
        help="deviations to speak (repeatable)",
    )
    parser.add_argument("--clock-offset", type=float, default=0.0, help="seconds its clock is off")
    parser.add_argument("--ask-time", action="store_true", help="ask for the time (CN 1013) on connecting")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s datalogger: %(message)s")
    logger = Hj212Datalogger(
        mn=args.mn,
        pw=args.pw,
        kind=args.kind,
        scenario=args.scenario,
        interval_s=args.interval,
        minute_s=args.minute,
        period_s=args.period,
        start_s=args.start,
        dialect=combined(*args.dialect),
        clock_offset_s=args.clock_offset,
        asks_time=args.ask_time,
    )
    log.info("datalogger %s (%s, %s) → %s:%d", args.mn, args.kind, args.scenario, args.host, args.port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(logger.run(args.host, args.port))


if __name__ == "__main__":
    main()
