"""Reverse control: commands a platform sends a datalogger, and how their answers come back.

A command goes out with a fresh QN and Flag bit A; the datalogger answers by
that QN. A request (get or set a parameter, calibrate) is answered 9011
(``QnRtn``: will it), then for a get the data upload (``SystemTime=...``,
``RtdInterval=...``), then 9012 (``ExeRtn``: how it went). A notification (stop
the real-time upload) is answered 9013. A start of real-time or status upload
is done once 9011 says ready: the data then flows as usual.

```python
result = await stream.control("dust-02", control.set_realtime_interval(30))
result.ok, result.qn_rtn, result.exe_rtn, result.data
```
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from contracts.errors import DeviceUnreachable
from drivers.hj212.codec import Frame
from drivers.hj212.replies import (
    CN_EXECUTION_RESULT,
    CN_NOTIFICATION_ANSWER,
    CN_REQUEST_ANSWER,
    ExeRtn,
    QnRtn,
    answered_qn,
)

_Items = tuple[tuple[tuple[str, str], ...], ...]


class Completion(Enum):
    """The answer that ends a command."""

    EXECUTION = "execution"  # 9012
    NOTIFICATION = "notification"  # 9013
    READY = "ready"  # 9011 with QnRtn=1


@dataclass(frozen=True, slots=True)
class Command:
    """One reverse-control command: its CN, CP items and which answer ends it."""

    cn: str
    cp: _Items = ()
    completion: Completion = Completion.EXECUTION


def _pol(pol_id: str | None) -> _Items:
    return ((("PolId", pol_id),),) if pol_id else ()


def get_time(pol_id: str | None = None) -> Command:
    """CN 1011: the datalogger's (or one analyser's) clock, as ``SystemTime``."""
    return Command("1011", _pol(pol_id))


def set_time(moment: datetime, pol_id: str | None = None) -> Command:
    """CN 1012: set the clock to ``moment`` (a wall-clock time in the datalogger's zone)."""
    return Command("1012", (*_pol(pol_id), (("SystemTime", moment.strftime("%Y%m%d%H%M%S")),)))


def get_realtime_interval() -> Command:
    """CN 1061: seconds between real-time uploads, as ``RtdInterval``."""
    return Command("1061")


def set_realtime_interval(seconds: int) -> Command:
    """CN 1062: seconds between real-time uploads (the standard allows 30-3600)."""
    return Command("1062", ((("RtdInterval", str(int(seconds))),),))


def get_minute_interval() -> Command:
    """CN 1063: minutes between minute-data uploads, as ``MinInterval``."""
    return Command("1063")


def set_minute_interval(minutes: int) -> Command:
    """CN 1064: minutes between minute-data uploads."""
    return Command("1064", ((("MinInterval", str(int(minutes))),),))


def start_realtime() -> Command:
    """CN 2011: start uploading real-time data."""
    return Command("2011", completion=Completion.READY)


def stop_realtime() -> Command:
    """CN 2012: stop uploading real-time data (a notification)."""
    return Command("2012", completion=Completion.NOTIFICATION)


def start_status() -> Command:
    """CN 2021: start uploading equipment status."""
    return Command("2021", completion=Completion.READY)


def stop_status() -> Command:
    """CN 2022: stop uploading equipment status (a notification)."""
    return Command("2022", completion=Completion.NOTIFICATION)


def calibrate(pol_id: str) -> Command:
    """CN 3011: zero and span calibration of the analyser of pollutant ``pol_id``."""
    return Command("3011", _pol(pol_id))


def pass_through(cn: str, cp: _Items = (), completion: Completion = Completion.EXECUTION) -> Command:
    """Any other CN, as given: the platform knows what its datalogger understands."""
    if not (len(cn) == 4 and cn.isdigit()) or cn.startswith("9"):
        raise ValueError(f"CN must be 4 digits and not an answer (9xxx), not {cn!r}")
    return Command(cn, cp, completion)


@dataclass
class ControlResult:
    """What came back for one command, by its QN."""

    device: str
    cn: str
    qn: str
    qn_rtn: int | None = None
    exe_rtn: int | None = None
    notified: bool = False
    data: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Carried out (or, for a start, accepted; for a notification, acknowledged)."""
        if self.notified:
            return True
        if self.exe_rtn is not None:
            return self.exe_rtn == ExeRtn.SUCCESS
        return self.qn_rtn == QnRtn.READY

    def as_dict(self) -> dict[str, Any]:
        """The result as a command response body."""
        return {
            "device": self.device,
            "cn": self.cn,
            "qn": self.qn,
            "ok": self.ok,
            "qn_rtn": self.qn_rtn,
            "exe_rtn": self.exe_rtn,
            "notified": self.notified,
            "data": dict(self.data),
        }


@dataclass
class _Pending:
    command: Command
    result: ControlResult
    done: asyncio.Future[ControlResult]


class PendingCommands:
    """The commands sent on one link that wait for their answers, by QN."""

    def __init__(self) -> None:
        self._by_qn: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._by_qn)

    def __contains__(self, qn: object) -> bool:
        return qn in self._by_qn

    def add(self, device: str, qn: str, command: Command) -> asyncio.Future[ControlResult]:
        """Wait for the answers to ``command``, sent as ``qn``."""
        future: asyncio.Future[ControlResult] = asyncio.get_running_loop().create_future()
        self._by_qn[qn] = _Pending(command, ControlResult(device, command.cn, qn), future)
        return future

    def forget(self, qn: str) -> None:
        self._by_qn.pop(qn, None)

    def receive(self, frame: Frame) -> bool:
        """Take ``frame`` if it answers a waiting command (True); its data uploads too."""
        cn = frame.cn
        qn = (
            answered_qn(frame)
            if cn in (CN_REQUEST_ANSWER, CN_EXECUTION_RESULT, CN_NOTIFICATION_ANSWER)
            else frame.qn
        )
        pending = self._by_qn.get(qn or "")
        if pending is None:
            return False
        result, completion = pending.result, pending.command.completion
        fields = frame.cp_fields()
        finished = False
        if cn == CN_REQUEST_ANSWER:
            result.qn_rtn = _number(fields.get("QnRtn"))
            refused = result.qn_rtn != QnRtn.READY
            finished = refused or completion is Completion.READY
        elif cn == CN_EXECUTION_RESULT:
            result.exe_rtn = _number(fields.get("ExeRtn"))
            finished = True
        elif cn == CN_NOTIFICATION_ANSWER:
            result.notified = True
            finished = True
        else:  # the data a get command asked for
            result.data.update((k, v) for k, v in fields.items() if k != "QN")
        if finished:
            del self._by_qn[pending.result.qn]
            if not pending.done.done():
                pending.done.set_result(result)
        return True

    def cancel_all(self, why: str) -> None:
        """The link is gone: nothing more will come."""
        for pending in self._by_qn.values():
            if not pending.done.done():
                pending.done.set_exception(DeviceUnreachable(pending.result.device, why))
        self._by_qn.clear()


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None
