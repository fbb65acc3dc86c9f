"""What drivers hand to the gateway: batches of readings, one array per field.

A batch holds every channel a device produced in one poll. Readings travel as
arrays, never as one object per reading, so the hot path allocates per batch.
This module imports nothing from the rest of the gateway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt


class Quality(IntEnum):
    """How far a reading can be trusted (HJ 212 data flags map onto these)."""

    OK = 0
    DEVICE_FAULT = 1
    OVER_RANGE = 2
    CALIBRATING = 3
    MAINTENANCE = 4
    COMMS_FAULT = 5
    STOPPED = 6
    MANUAL = 7  # entered by hand (HJ 212 flag S), not measured


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """Readings of one device: ``channels[i]`` read ``values[i]`` at ``ts[i]``.

    ``values`` is float64 with NaN for a missing value, ``ts`` is Unix seconds
    (float64), ``quality`` holds :class:`Quality` codes (uint8). ``late``: older
    than what the device already sent (a platform replaying after it
    reconnected): published as telemetry, flagged, but never a state change.
    """

    device: str
    channels: tuple[str, ...]
    values: npt.NDArray[np.float64]
    ts: npt.NDArray[np.float64]
    quality: npt.NDArray[np.uint8]
    late: bool = False

    @classmethod
    def at(cls, device: str, channels: tuple[str, ...], values: list[float], ts: float) -> ReadingBatch:
        """A batch whose readings were all taken at ``ts`` with good quality."""
        n = len(channels)
        return cls(
            device=device,
            channels=channels,
            values=np.asarray(values, dtype=np.float64),
            ts=np.full(n, ts, dtype=np.float64),
            quality=np.zeros(n, dtype=np.uint8),
        )

    def __len__(self) -> int:
        return len(self.channels)


_MAX_DECIMALS = 22  # 10**22 is the largest power of ten a float64 holds exactly


class Rounding:
    """Rounds a batch's values in place to each channel's resolution.

    ``raw × 0.1`` is ``0.6000000000000001`` and a float32 register read as
    float64 is ``233.5259246826172``: float noise that no sensor measured. A
    channel rounds either to a fixed number of ``decimals`` (from its scale) or
    to ``significant`` digits (float registers). Dividing an integer by an exact
    power of ten gives the float nearest the decimal, so what is published and
    logged is the short number (``0.6``, ``233.5259``). One vector operation per
    batch, not one call per reading.
    """

    def __init__(self, decimals: Sequence[int | None], significant: Sequence[int | None]) -> None:
        fixed = [(i, d) for i, d in enumerate(decimals) if d is not None]
        digits = [(i, s) for i, s in enumerate(significant) if s is not None and decimals[i] is None]
        self._fixed = np.array([i for i, _ in fixed], dtype=np.intp)
        self._factor = 10.0 ** np.array([min(d, _MAX_DECIMALS) for _, d in fixed], dtype=np.float64)
        self._sig = np.array([i for i, _ in digits], dtype=np.intp)
        self._digits = np.array([s for _, s in digits], dtype=np.float64)

    def apply(self, values: npt.NDArray[np.float64]) -> None:
        """Round ``values`` (one per channel, in channel order) in place; NaN stays NaN."""
        if self._fixed.size:
            values[self._fixed] = np.rint(values[self._fixed] * self._factor) / self._factor
        if self._sig.size:
            v = values[self._sig]
            with np.errstate(divide="ignore", invalid="ignore"):
                decimals = self._digits - 1 - np.floor(np.log10(np.abs(v)))
            decimals = np.clip(np.nan_to_num(decimals, nan=0.0, posinf=0.0, neginf=0.0), -22, 22)
            factor = 10.0 ** np.abs(decimals)
            rounded = np.where(decimals >= 0, np.rint(v * factor) / factor, np.rint(v / factor) * factor)
            values[self._sig] = np.where(np.isfinite(v) & (v != 0), rounded, v)
