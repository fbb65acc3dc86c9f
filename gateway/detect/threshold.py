"""Threshold alarms with hysteresis and hold time, as a Numba kernel over a batch.

State per rule slot ``i`` lives in arrays: the alarm ``state`` (NORMAL, HIGH,
LOW), and the condition being timed before it may raise (``pending_kind``
since ``pending_since``). A reading raises only when its condition has held
for ``hold_s`` seconds; a HIGH alarm clears once the value is at or below
``high - hysteresis`` (LOW: at or above ``low + hysteresis``). A NaN reading
(missing, or not trustworthy) raises nothing, clears nothing and restarts the
hold timer. A clock that steps backwards restarts the hold timer too.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

NORMAL, HIGH, LOW = 0, 1, 2
NO_CHANGE, RAISED_HIGH, RAISED_LOW, CLEARED = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def threshold_step(  # noqa: PLR0913
    slot: npt.NDArray[np.int32],
    value: npt.NDArray[np.float64],
    ts: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    hysteresis: npt.NDArray[np.float64],
    hold_s: npt.NDArray[np.float64],
    state: npt.NDArray[np.int8],
    pending_kind: npt.NDArray[np.int8],
    pending_since: npt.NDArray[np.float64],
    out: npt.NDArray[np.int8],
) -> None:
    """Advance every slot named in ``slot`` by its reading; write transitions to ``out``."""
    for k in range(slot.size):
        i = slot[k]
        v = value[k]
        t = ts[k]
        out[k] = NO_CHANGE
        if np.isnan(v):
            pending_kind[i] = NORMAL
            continue
        s = state[i]
        if s == HIGH:
            if v <= high[i] - hysteresis[i]:
                state[i] = NORMAL
                out[k] = CLEARED
            continue
        if s == LOW:
            if v >= low[i] + hysteresis[i]:
                state[i] = NORMAL
                out[k] = CLEARED
            continue
        kind = NORMAL
        if v > high[i]:
            kind = HIGH
        elif v < low[i]:
            kind = LOW
        if kind == NORMAL:
            pending_kind[i] = NORMAL
            continue
        if pending_kind[i] != kind or t < pending_since[i]:
            pending_kind[i] = kind
            pending_since[i] = t
        if t - pending_since[i] >= hold_s[i]:
            state[i] = kind
            pending_kind[i] = NORMAL
            out[k] = RAISED_HIGH if kind == HIGH else RAISED_LOW
