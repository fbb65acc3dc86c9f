"""What drivers hand to the gateway: batches of readings, one array per field.

A batch holds every channel a device produced in one poll. Readings travel as
arrays, never as one object per reading, so the hot path allocates per batch.
This module imports nothing from the rest of the gateway.
"""

from __future__ import annotations

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
    (float64), ``quality`` holds :class:`Quality` codes (uint8).
    """

    device: str
    channels: tuple[str, ...]
    values: npt.NDArray[np.float64]
    ts: npt.NDArray[np.float64]
    quality: npt.NDArray[np.uint8]

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
