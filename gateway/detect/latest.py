"""The latest value of each channel a device-wide kind reads, advanced one timestamp at a time.

Cross-channel rules and Hotelling detectors judge a device's channels
together. A batch may hold many timestamps (a replayed backlog, minute data);
:meth:`LatestValues.rows` sets the latest values one timestamp's readings at
a time and yields after each, so every row is judged in order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

_Route = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]


class LatestValues:
    """Slots for ``(device, channel)`` pairs, filled from batches."""

    def __init__(self) -> None:
        self._index: dict[tuple[str, str], int] = {}
        self._routes: dict[
            tuple[str, tuple[str, ...]], tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]
        ] = {}
        self.values = np.zeros(0)

    def slot(self, device: str, channel: str) -> int:
        """The slot of a channel (made on first ask; call before :meth:`seal`)."""
        return self._index.setdefault((device, channel), len(self._index))

    def seal(self) -> None:
        """Every slot has been asked for: make the value array (NaN: nothing seen yet)."""
        self.values = np.full(len(self._index), math.nan)

    def rows(
        self,
        device: str,
        channels: tuple[str, ...],
        values: npt.NDArray[np.float64],
        ts: npt.NDArray[np.float64],
        *,
        any_channel: bool = False,
    ) -> Iterator[tuple[int, float]]:
        """Set the latest values one timestamp at a time; yield ``(last reading index, timestamp)``.

        Only timestamps of the channels asked for are yielded, unless
        ``any_channel`` (a rule whose hold timer runs on the device's clock).
        """
        key = (device, channels)
        route = self._routes.get(key)
        if route is None:
            known = [k for k, ch in enumerate(channels) if (device, ch) in self._index]
            where = [self._index[(device, channels[k])] for k in known]
            route = (np.array(where, dtype=np.intp), np.array(known, dtype=np.intp))
            self._routes[key] = route
        slots, columns = route
        if not (columns.size or (any_channel and ts.size)):
            return
        judged = np.arange(ts.size, dtype=np.intp) if any_channel else columns
        at = ts[judged]
        ends = np.flatnonzero(np.append(at[1:] != at[:-1], True))
        done = 0
        for end in ends.tolist():
            last = int(judged[end])
            upto = int(np.searchsorted(columns, last, side="right"))
            self.values[slots[done:upto]] = values[columns[done:upto]]
            done = upto
            yield last, float(at[end])
