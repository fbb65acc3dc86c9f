"""Cross-channel rules on one device, as a Numba kernel over the device's rules.

A rule is a conjunction of clauses ``a > x`` / ``a < x``, where ``x`` is a
constant or another channel of the same device (``pm25 > pm10`` is a
physically impossible reading; ``fan_status > 0.5`` and ``purifier_status <
0.5`` together are a violation). It raises once every clause has held for
``hold_s`` and clears as soon as one is false. A clause on a missing (NaN)
value is unknown: the rule keeps its state and restarts its hold timer.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from gateway.detect.codes import F_CROSS
from gateway.detect.jit import kernel, njit

UNKNOWN, FALSE, TRUE = -1, 0, 1


@njit()
def clause_holds(a: float, op: int, b: float) -> int:
    """TRUE, FALSE or UNKNOWN (either side NaN) for ``a > b`` (op 1) or ``a < b`` (op -1)."""
    if math.isnan(a) or math.isnan(b):
        return UNKNOWN
    if op > 0:
        return TRUE if a > b else FALSE
    return TRUE if a < b else FALSE


@kernel
def cross_step(
    rules: npt.NDArray[np.int32],
    t: float,
    latest: npt.NDArray[np.float64],
    first_clause: npt.NDArray[np.int32],
    clause_op: npt.NDArray[np.int8],
    clause_a: npt.NDArray[np.int32],
    clause_b: npt.NDArray[np.int32],
    clause_const: npt.NDArray[np.float64],
    hold_s: npt.NDArray[np.float64],
    active: npt.NDArray[np.int8],
    pending_since: npt.NDArray[np.float64],
    ev: npt.NDArray[np.int64],
) -> int:
    """Re-check ``rules`` against the ``latest`` channel values at time ``t``.

    Clause ``c`` compares ``latest[clause_a[c]]`` with ``latest[clause_b[c]]``,
    or with ``clause_const[c]`` where ``clause_b[c]`` is -1. Changes go to
    ``ev`` rows ``(0, rule, F_CROSS, old, new)``; returns how many.
    """
    n_ev = 0
    for r in rules:
        verdict = TRUE
        for c in range(first_clause[r], first_clause[r + 1]):
            b = latest[clause_b[c]] if clause_b[c] >= 0 else clause_const[c]
            holds = clause_holds(latest[clause_a[c]], clause_op[c], b)
            if holds == FALSE:
                verdict = FALSE
                break
            if holds == UNKNOWN:
                verdict = UNKNOWN
        if verdict != TRUE:
            pending_since[r] = math.nan
            if verdict == FALSE and active[r] == 1:
                active[r] = 0
                ev[n_ev, 0], ev[n_ev, 1], ev[n_ev, 2], ev[n_ev, 3], ev[n_ev, 4] = (
                    0,
                    r,
                    F_CROSS,
                    1,
                    0,
                )
                n_ev += 1
            continue
        if active[r] == 1:
            continue
        if math.isnan(pending_since[r]) or t < pending_since[r]:
            pending_since[r] = t
        if t - pending_since[r] >= hold_s[r]:
            active[r] = 1
            ev[n_ev, 0], ev[n_ev, 1], ev[n_ev, 2], ev[n_ev, 3], ev[n_ev, 4] = 0, r, F_CROSS, 0, 1
            n_ev += 1
    return n_ev
