"""What a simulated datalogger does with the reverse-control commands a platform sends it.

It answers as the standard's request flow says: 9011 (will it), the data a get
asks for under the request's QN, then 9012 (how it went); a notification gets
9013. It keeps the state the commands change (its clock, upload intervals,
whether real-time upload is on), so a test sees their effect in what it sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from drivers.hj212.codec import Frame, parse
from drivers.hj212.replies import (
    ExeRtn,
    QnRtn,
    execution_result,
    notification_answer,
    request_answer,
)
from drivers.simulators.hj212_dialect import Dialect

_Items = tuple[tuple[tuple[str, str], ...], ...]


@dataclass
class LoggerState:
    """What reverse control can change in a datalogger."""

    zone: ZoneInfo
    realtime_s: float = 1.0
    minute_s: float = 60.0
    clock_offset_s: float = 0.0
    realtime_on: bool = True
    status_on: bool = False
    calibrations: int = 0

    def now(self) -> datetime:
        """The datalogger's own clock, which may be off by ``clock_offset_s``."""
        return datetime.now(self.zone) + timedelta(seconds=self.clock_offset_s)


def respond(command: Frame, state: LoggerState, *, pw: str, st: str, dialect: Dialect) -> list[bytes]:
    """The frames a datalogger sends back for one command, in order; state changed as it says."""
    if command.pw != pw:
        return [_as(dialect, request_answer(command, QnRtn.PW_ERROR))]
    try:
        return _carry_out(command, state, pw=pw, st=st, dialect=dialect)
    except (KeyError, ValueError):  # a parameter missing or malformed
        return [_as(dialect, request_answer(command, QnRtn.REFUSED))]


def _carry_out(command: Frame, state: LoggerState, *, pw: str, st: str, dialect: Dialect) -> list[bytes]:
    fields = command.cp_fields()
    data: _Items = ()
    cn = command.cn
    if cn == "1011":
        data = ((("SystemTime", state.now().strftime("%Y%m%d%H%M%S")),),)
    elif cn == "1012":
        moment = datetime.strptime(fields["SystemTime"], "%Y%m%d%H%M%S").replace(tzinfo=state.zone)
        state.clock_offset_s = (moment - datetime.now(state.zone)).total_seconds()
    elif cn == "1061":
        data = ((("RtdInterval", f"{state.realtime_s:g}"),),)
    elif cn == "1062":
        state.realtime_s = float(fields["RtdInterval"])
    elif cn == "1063":
        data = ((("MinInterval", f"{state.minute_s / 60:g}"),),)
    elif cn == "1064":
        state.minute_s = float(fields["MinInterval"]) * 60
    elif cn in ("2011", "2021"):
        setattr(state, "realtime_on" if cn == "2011" else "status_on", True)
        return [_as(dialect, request_answer(command, QnRtn.READY))]
    elif cn in ("2012", "2022"):
        setattr(state, "realtime_on" if cn == "2012" else "status_on", False)
        return [_as(dialect, notification_answer(command))]
    elif cn == "3011":
        state.calibrations += 1
    else:
        return [_as(dialect, request_answer(command, QnRtn.CN_ERROR))]
    out = [_as(dialect, request_answer(command, QnRtn.READY))]
    if data:
        header = (("QN", command.qn or ""), ("ST", st), ("CN", cn), ("PW", pw), ("MN", command.mn or ""))
        out.append(dialect.encode(Frame((*header, ("Flag", dialect.flag(answer=False))), data)))
    out.append(_as(dialect, execution_result(command, ExeRtn.SUCCESS)))
    return out


def _as(dialect: Dialect, answer: bytes) -> bytes:
    """An answer in the logger's own wire habits (its CRC, its line ending)."""
    return dialect.encode(parse(answer))
