"""From a verified frame to a batch: MN → device, code + suffix → channel, flag → quality.

Real-time values (CN 2011, ``-Rtd``) keep the channel's own name. Statistics
are published apart, under names that say what they are, so a minute average
never reaches a rule written for instant values: CN 2051 ``-Avg`` of channel
``pm10`` becomes ``pm10.minute_avg``; 2061 gives ``.hour_*``, 2031 ``.day_*``,
each with ``_avg``, ``_min``, ``_max`` and ``_cou`` as sent.

A logger of the 2005 edition sends the older pollutant codes (``01`` for
smoke dust where 2017 says ``a34013``): a channel takes its old code when the
new one is missing, from the channel's ``code_2005`` or the table below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from contracts.readings import Quality, ReadingBatch
from drivers.hj212.codec import (
    CN_DAY,
    CN_HOUR,
    CN_MINUTE,
    CN_REALTIME,
    CrcMode,
    Frame,
    FrameError,
    Tolerance,
)
from drivers.hj212.config import Hj212DeviceConfig

FLAG_QUALITY = {
    "N": Quality.OK,
    "D": Quality.DEVICE_FAULT,
    "C": Quality.CALIBRATING,
    "M": Quality.MAINTENANCE,
    "T": Quality.OVER_RANGE,
    "B": Quality.COMMS_FAULT,
    "F": Quality.STOPPED,
    "S": Quality.MANUAL,
}
# An unknown flag (2005's P power failure, a vendor's own) cannot vouch for its value.
UNKNOWN_FLAG = Quality.DEVICE_FAULT

# 2017 code → the 2005 code it replaced (HJ 212-2017 Appendix B's "original code" column; verify
# against a logger's manual: a channel's own ``code_2005`` wins).
CODES_2005 = {
    "a34013": "01",  # smoke dust
    "a21026": "02",  # SO2
    "a21002": "03",  # NOx
    "a21005": "04",  # CO
    "a19001": "S01",  # O2
    "a01011": "S02",  # flue gas velocity
    "a01012": "S03",  # flue gas temperature
    "a01014": "S05",  # flue gas humidity
    "a01013": "S08",  # flue gas pressure
    "a00000": "B02",  # flue gas flow
    "w00000": "B01",  # waste water flow
    "w01001": "001",  # pH
    "w01018": "011",  # COD
    "w21003": "060",  # ammonia nitrogen
    "w21001": "065",  # total nitrogen
    "w21011": "101",  # total phosphorus
}

_PERIODS = {CN_MINUTE: "minute", CN_HOUR: "hour", CN_DAY: "day"}
_Suffixes = tuple[tuple[str, str], ...]  # (suffix in the frame, in the channel name)
_REALTIME: _Suffixes = (("Rtd", ""),)
_STATISTICS: _Suffixes = (("Avg", "avg"), ("Min", "min"), ("Max", "max"), ("Cou", "cou"))


@dataclass(frozen=True, slots=True)
class _Datalogger:
    config: Hj212DeviceConfig
    zone: ZoneInfo
    old_codes: tuple[str | None, ...]  # per channel, the 2005 code to look for when the new is missing


class DataloggerMap:
    """Every configured datalogger by MN; turns their data frames into batches."""

    def __init__(self, devices: Sequence[Hj212DeviceConfig]) -> None:
        self._by_mn = {
            d.mn: _Datalogger(
                d,
                ZoneInfo(d.time_zone),
                tuple(ch.code_2005 or CODES_2005.get(ch.code) for ch in d.channels),
            )
            for d in devices
        }
        self.crc_modes = {d.mn: d.crc for d in devices if d.crc is not CrcMode.STANDARD}

    def zone(self, device: Hj212DeviceConfig) -> ZoneInfo:
        """The time zone of the device's clock (its QN and DataTime)."""
        return self._by_mn[device.mn].zone

    def authenticate(self, frame: Frame, source: str) -> Hj212DeviceConfig:
        """The device that sent ``frame``; FrameError when its MN is unknown or its PW wrong."""
        logger = self._by_mn.get(frame.mn or "")
        if logger is None:
            raise FrameError(source, "unknown_mn", f"MN {frame.mn!r} is not configured")
        if frame.pw != logger.config.pw:
            raise FrameError(source, "bad_pw", f"wrong PW for MN {frame.mn!r} ({logger.config.id})")
        return logger.config

    def to_batch(
        self,
        frame: Frame,
        device: Hj212DeviceConfig,
        received: float,
        tolerated: list[Tolerance] | None = None,
    ) -> ReadingBatch | None:
        """The readings in a data frame of ``device``; None for frames that carry none.

        Deviations accepted on the way (2005 codes) are appended to ``tolerated``.
        """
        cn = frame.cn
        suffixes: _Suffixes
        if cn == CN_REALTIME:
            suffixes, period = _REALTIME, ""
        elif cn in _PERIODS:
            suffixes, period = _STATISTICS, f".{_PERIODS[cn]}_"
        else:
            return None
        fields = frame.cp_fields()
        ts = self._timestamp(fields.get("DataTime"), device, received)
        channels: list[str] = []
        values: list[float] = []
        quality: list[int] = []
        old_codes = self._by_mn[device.mn].old_codes
        for channel, old_code in zip(device.channels, old_codes, strict=True):
            code = channel.code
            first = suffixes[0][0]
            if old_code is not None and f"{code}-{first}" not in fields and f"{old_code}-{first}" in fields:
                code = old_code
                if tolerated is not None:
                    tolerated.append(Tolerance.CODE_2005)
            flag = fields.get(f"{code}-Flag")
            for suffix, name in suffixes:
                text = fields.get(f"{code}-{suffix}")
                if text is None:
                    continue
                value, good = _number(text)
                channels.append(f"{channel.id}{period}{name}" if period else channel.id)
                values.append(value * channel.scale)
                quality.append(_quality(flag) if good else Quality.DEVICE_FAULT)
        if not channels:
            return None
        n = len(channels)
        return ReadingBatch(
            device=device.id,
            channels=tuple(channels),
            values=np.asarray(values, dtype=np.float64),
            ts=np.full(n, ts, dtype=np.float64),
            quality=np.asarray(quality, dtype=np.uint8),
        )

    def _timestamp(self, text: str | None, device: Hj212DeviceConfig, received: float) -> float:
        if text is None:
            return received  # DataTime is mandatory in data frames; some 2005 loggers omit it
        if not text.isdigit() or len(text) not in (14, 17):
            raise FrameError(device.id, "datatime", f"DataTime {text!r} is not YYYYMMDDhhmmss[zzz]")
        try:  # slicing, not strptime: this runs for every frame and strptime is slow
            moment = datetime(
                int(text[0:4]),
                int(text[4:6]),
                int(text[6:8]),
                int(text[8:10]),
                int(text[10:12]),
                int(text[12:14]),
            )
        except ValueError as exc:
            raise FrameError(device.id, "datatime", f"DataTime {text!r}: {exc}") from exc
        zone = self.zone(device)
        millis = int(text[14:]) / 1000 if len(text) == 17 else 0.0
        return moment.replace(tzinfo=zone).timestamp() + millis


def _number(text: str) -> tuple[float, bool]:
    try:
        value = float(text)
    except ValueError:
        return math.nan, False
    return (value, True) if math.isfinite(value) else (math.nan, False)


def _quality(flag: str | None) -> int:
    if flag is None:
        return Quality.OK
    return FLAG_QUALITY.get(flag, UNKNOWN_FLAG)
