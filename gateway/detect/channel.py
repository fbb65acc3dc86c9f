"""The per-channel rule kernel: every check on one channel, one call per batch.

For each reading ``k`` the slot ``slot[k]`` is advanced through, in order:

1. **sensor health** (fault facet): outside the sensor's physical range,
   unchanged within ``stuck_tol`` for ``stuck_s``, or NaN for ``missing_s``.
   A faulty, NaN or untrustworthy reading goes no further: it is a fault,
   never an alarm.
2. **levels** (warning / alarm / critical, high and low): a new level is taken
   once it has been wanted for ``hold_s`` (escalation) or ``clear_hold_s``
   (de-escalation); a level is left once the value is back past ``hysteresis``.
3. **windowed mean** over local-time buckets of ``bucket_s``: the mean of each
   completed bucket is checked against ``window_high``, and counted as an
   exceedance of the day when above ``daily_limit``; more than ``daily_max``
   exceedances in one local calendar day raise the daily facet until midnight.
4. **rate of change** per minute, measured over spans of ``rate_span_s``.
   All O(1) per sample.

Which readings were trusted (not NaN, not faulty) is written out per reading:
the statistical kinds (:mod:`gateway.detect.kinds`) learn and judge only those.

NaN-safe by construction: every comparison with a NaN limit is false, so a
NaN parameter switches its check off. A clock that steps backwards restarts
timers and the current bucket instead of producing negative durations.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from gateway.detect.codes import (
    F_DAILY,
    F_FAULT,
    F_LEVEL,
    F_RATE,
    F_WINDOW,
    FAULT_MISSING,
    FAULT_RANGE,
    FAULT_STUCK,
    P_BUCKET_S,
    P_CLEAR_HOLD,
    P_DAY_LIMIT,
    P_DAY_MAX,
    P_HOLD,
    P_HYST,
    P_MIN_SAMPLES,
    P_MISSING_S,
    P_PHYS_MAX,
    P_PHYS_MIN,
    P_RATE_FALL,
    P_RATE_RISE,
    P_RATE_SPAN,
    P_STUCK_S,
    P_STUCK_TOL,
    P_WARN_HI,
    P_WARN_LO,
    P_WIN_HI,
    P_WIN_HYST,
    S_B_N,
    S_B_SUM,
    S_BUCKET,
    S_DAILY,
    S_DAY,
    S_DAY_COUNT,
    S_FAULT,
    S_LAST_SEEN,
    S_LEVEL,
    S_NAN_SINCE,
    S_PEND_LEVEL,
    S_PEND_SINCE,
    S_RATE,
    S_RATE_T0,
    S_RATE_V0,
    S_STUCK_REF,
    S_STUCK_SINCE,
    S_WINDOW,
)
from gateway.detect.jit import kernel, njit

SECONDS_PER_DAY = 86_400.0


@njit(inline="always")
def _emit(ev: npt.NDArray[np.int64], n: int, k: int, i: int, facet: int, old: float, new: float) -> int:
    ev[n, 0] = k
    ev[n, 1] = i
    ev[n, 2] = facet
    ev[n, 3] = int(old)
    ev[n, 4] = int(new)
    return n + 1


@njit()
def target_level(v: float, level: int, params: npt.NDArray[np.float64], i: int) -> int:
    """The level ``v`` asks for at ``level``, by parameter row ``i`` (hysteresis downwards)."""
    wanted = 0
    for lv in range(1, 4):
        if v > params[i, P_WARN_HI + lv - 1]:
            wanted = lv
        if v < params[i, P_WARN_LO + lv - 1]:
            wanted = -lv
    hyst = params[i, P_HYST]
    if level > 0:
        if wanted > level:
            return wanted
        for lv in range(level, 0, -1):
            if v > params[i, P_WARN_HI + lv - 1] - hyst:
                return lv
        return min(wanted, 0)
    if level < 0:
        if wanted < level:
            return wanted
        for lv in range(-level, 0, -1):
            if v < params[i, P_WARN_LO + lv - 1] + hyst:
                return -lv
        return max(wanted, 0)
    return wanted


@kernel
def channel_step(
    slot: npt.NDArray[np.int32],
    value: npt.NDArray[np.float64],
    ts: npt.NDArray[np.float64],
    tz_offset_s: float,
    params: npt.NDArray[np.float64],
    param_row: npt.NDArray[np.int32],
    state: npt.NDArray[np.float64],
    trusted: npt.NDArray[np.bool_],
    ev: npt.NDArray[np.int64],
) -> int:
    """Advance slot ``slot[k]`` by reading ``value[k]`` at ``ts[k]`` for every ``k``.

    ``tz_offset_s`` is the local time's offset from UTC (for buckets and days).
    ``trusted[k]`` is set to whether reading ``k`` was neither NaN nor faulty.
    Facet changes go to ``ev`` rows ``(k, slot, facet, old, new)``, which needs
    ``N_FACETS`` rows per reading; the number of rows written is returned.
    """
    n_ev = 0
    for k in range(slot.size):
        i = slot[k]
        r = param_row[i]
        v = value[k]
        t = ts[k]

        # 1. sensor health
        fault = state[i, S_FAULT]
        new_fault = 0.0
        if math.isnan(v):
            if math.isnan(state[i, S_NAN_SINCE]) or t < state[i, S_NAN_SINCE]:
                state[i, S_NAN_SINCE] = t
            new_fault = fault
            if params[r, P_MISSING_S] > 0 and t - state[i, S_NAN_SINCE] >= params[r, P_MISSING_S]:
                new_fault = FAULT_MISSING
        else:
            state[i, S_NAN_SINCE] = math.nan
            state[i, S_LAST_SEEN] = t
            if v < params[r, P_PHYS_MIN] or v > params[r, P_PHYS_MAX]:
                new_fault = FAULT_RANGE
            elif params[r, P_STUCK_S] > 0:
                if (
                    not abs(v - state[i, S_STUCK_REF]) <= params[r, P_STUCK_TOL]
                    or t < state[i, S_STUCK_SINCE]
                ):
                    state[i, S_STUCK_REF] = v
                    state[i, S_STUCK_SINCE] = t
                elif t - state[i, S_STUCK_SINCE] >= params[r, P_STUCK_S]:
                    new_fault = FAULT_STUCK
        if new_fault != fault:
            n_ev = _emit(ev, n_ev, k, i, F_FAULT, fault, new_fault)
            state[i, S_FAULT] = new_fault
        trusted[k] = not (math.isnan(v) or new_fault != 0)
        if not trusted[k]:
            state[i, S_PEND_LEVEL] = state[i, S_LEVEL]
            continue

        # 2. levels
        level = int(state[i, S_LEVEL])
        wanted = target_level(v, level, params, r)
        if wanted == level:
            state[i, S_PEND_LEVEL] = level
        else:
            escalate = abs(wanted) > abs(level) or wanted * level < 0
            if state[i, S_PEND_LEVEL] != wanted or t < state[i, S_PEND_SINCE]:
                state[i, S_PEND_LEVEL] = wanted
                state[i, S_PEND_SINCE] = t
            wait = params[r, P_HOLD] if escalate else params[r, P_CLEAR_HOLD]
            if t - state[i, S_PEND_SINCE] >= wait:
                n_ev = _emit(ev, n_ev, k, i, F_LEVEL, level, wanted)
                state[i, S_LEVEL] = wanted

        # 3. windowed mean and daily exceedances
        bucket_s = params[r, P_BUCKET_S]
        if bucket_s > 0:
            local = t + tz_offset_s
            bucket = math.floor(local / bucket_s)
            current = state[i, S_BUCKET]
            if math.isnan(current) or bucket < current:
                state[i, S_BUCKET] = bucket
                state[i, S_B_SUM] = 0.0
                state[i, S_B_N] = 0.0
            elif bucket > current:
                if state[i, S_B_N] >= max(1.0, params[r, P_MIN_SAMPLES]):
                    mean = state[i, S_B_SUM] / state[i, S_B_N]
                    if state[i, S_WINDOW] == 0 and mean > params[r, P_WIN_HI]:
                        n_ev = _emit(ev, n_ev, k, i, F_WINDOW, 0, 1)
                        state[i, S_WINDOW] = 1
                    elif state[i, S_WINDOW] == 1 and not mean > params[r, P_WIN_HI] - params[r, P_WIN_HYST]:
                        n_ev = _emit(ev, n_ev, k, i, F_WINDOW, 1, 0)
                        state[i, S_WINDOW] = 0
                    if mean > params[r, P_DAY_LIMIT]:
                        state[i, S_DAY_COUNT] += 1
                        if state[i, S_DAY_COUNT] > params[r, P_DAY_MAX] and state[i, S_DAILY] == 0:
                            n_ev = _emit(ev, n_ev, k, i, F_DAILY, 0, 1)
                            state[i, S_DAILY] = 1
                state[i, S_BUCKET] = bucket
                state[i, S_B_SUM] = 0.0
                state[i, S_B_N] = 0.0
            today = math.floor(local / SECONDS_PER_DAY)
            if today != state[i, S_DAY]:
                if state[i, S_DAILY] != 0:
                    n_ev = _emit(ev, n_ev, k, i, F_DAILY, 1, 0)
                    state[i, S_DAILY] = 0
                state[i, S_DAY] = today
                state[i, S_DAY_COUNT] = 0.0
            state[i, S_B_SUM] += v
            state[i, S_B_N] += 1

        # 4. rate of change
        if not (math.isnan(params[r, P_RATE_RISE]) and math.isnan(params[r, P_RATE_FALL])):
            t0 = state[i, S_RATE_T0]
            if math.isnan(t0) or t < t0:
                state[i, S_RATE_V0] = v
                state[i, S_RATE_T0] = t
            elif t - t0 >= params[r, P_RATE_SPAN]:
                per_min = (v - state[i, S_RATE_V0]) / (t - t0) * 60.0
                rate = 0.0
                if per_min > params[r, P_RATE_RISE]:
                    rate = 1.0
                elif per_min < -params[r, P_RATE_FALL]:
                    rate = -1.0
                if rate != state[i, S_RATE]:
                    n_ev = _emit(ev, n_ev, k, i, F_RATE, state[i, S_RATE], rate)
                    state[i, S_RATE] = rate
                state[i, S_RATE_V0] = v
                state[i, S_RATE_T0] = t

    return n_ev
