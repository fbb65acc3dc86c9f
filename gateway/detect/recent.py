"""What each rule's channel read lately, for the events layer: one kernel call per batch.

The events layer (:class:`gateway.events.watch.ChannelWatch`) keeps, per
``[[rules]]`` slot, the last reading and when it came, since when the channel
has been watched without a gap, when it was last past a limit, a ring of the
last readings, and for an open alarm its peak. A batch advances them reading
by reading, in order, so a backlog of several rows of one channel keeps every
row in the ring and its highest peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.detect.jit import kernel

# Per-slot columns. SIGN: +1 an alarm above the high limit is open, -1 below the low one, 0 none;
# PEAK and PUBLISHED are kept multiplied by the sign; STEP is how far the peak must move.
(LAST_VALUE, LAST_SEEN, WATCHED_SINCE, LAST_BEYOND, RING_NEXT, HIGH, LOW, SIGN, PEAK, PUBLISHED, STEP) = (
    range(11)
)
WIDTH = 11


def initial_row(high: float, low: float) -> list[float]:
    """A slot that has seen nothing, with its rule's high and low limits (inf where none)."""
    return [math.nan, -math.inf, math.inf, -math.inf, 0.0, high, low, 0.0, -math.inf, -math.inf, 0.0]


@kernel
def recent_step(
    slots: npt.NDArray[np.intp],
    columns: npt.NDArray[np.intp],
    values: npt.NDArray[np.float64],
    quality: npt.NDArray[np.uint8],
    ts: npt.NDArray[np.float64],
    max_gap_s: float,
    state: npt.NDArray[np.float64],
    ring_value: npt.NDArray[np.float64],
    ring_ts: npt.NDArray[np.float64],
    moved: npt.NDArray[np.intp],
) -> int:
    """Advance slot ``slots[k]`` by reading ``columns[k]`` of the batch for every ``k``, in order.

    A NaN reading or one whose quality is not 0 (ok) is skipped. The slots
    whose open alarm's peak moved a whole ``STEP`` past the one published go
    to ``moved``, each once; returns how many.
    """
    n_moved = 0
    size = ring_value.shape[1]
    for k in range(slots.size):
        col = columns[k]
        v = values[col]
        if math.isnan(v) or quality[col] != 0:
            continue
        i = slots[k]
        s = state[i]
        t = ts[col]
        if t - s[LAST_SEEN] > max_gap_s:
            s[WATCHED_SINCE] = t
        s[LAST_SEEN] = t
        s[LAST_VALUE] = v
        if v > s[HIGH] or v < s[LOW]:
            s[LAST_BEYOND] = t
        at = int(s[RING_NEXT])
        ring_value[i, at] = v
        ring_ts[i, at] = t
        s[RING_NEXT] = (at + 1) % size
        if s[SIGN] == 0.0:
            continue
        signed = v * s[SIGN]
        s[PEAK] = max(s[PEAK], signed)
        if signed >= s[PUBLISHED] + s[STEP]:
            j = 0
            while j < n_moved and moved[j] != i:
                j += 1
            if j == n_moved:
                moved[n_moved] = i
                n_moved += 1
    return n_moved


@dataclass
class RecentTwin:
    """The pure-Python twin of one slot of :func:`recent_step`: its row as a list, its ring as two."""

    row: list[float]
    ring_value: list[float]
    ring_ts: list[float]

    def step(self, v: float, quality: int, t: float, max_gap_s: float) -> bool:
        """Feed one reading; return whether the open alarm's peak moved a whole step."""
        s = self.row
        if math.isnan(v) or quality != 0:
            return False
        if t - s[LAST_SEEN] > max_gap_s:
            s[WATCHED_SINCE] = t
        s[LAST_SEEN], s[LAST_VALUE] = t, v
        if v > s[HIGH] or v < s[LOW]:
            s[LAST_BEYOND] = t
        at = int(s[RING_NEXT])
        self.ring_value[at], self.ring_ts[at] = v, t
        s[RING_NEXT] = (at + 1) % len(self.ring_value)
        if s[SIGN] == 0.0:
            return False
        s[PEAK] = max(s[PEAK], v * s[SIGN])
        return v * s[SIGN] >= s[PUBLISHED] + s[STEP]


def warm_up() -> None:
    """Compile (or load) the kernel."""
    i0, f0 = np.zeros(0, np.intp), np.zeros(0)
    recent_step(
        i0,
        i0,
        f0,
        np.zeros(0, np.uint8),
        f0,
        0.0,
        np.zeros((0, WIDTH)),
        np.zeros((0, 1)),
        np.zeros((0, 1)),
        i0,
    )
