"""Numbers the kernels write, and the names the events layer gives them.

A rule slot has several independent *facets*, each with its own state code:
the alarm level (signed: + above a high limit, - below a low one), the
windowed-mean alarm, the daily-exceedance alarm, the rate-of-change alarm and
the sensor fault. A facet changing its code is one kernel event
``(reading, slot, facet, old, new)``. The statistical checks of a rule
(``anomaly``) are detector kinds of their own (:mod:`gateway.detect.kinds`).

Parameters and state of all slots are held column-wise in 2-D float64 arrays
(one column per field, named below), so one kernel call reads them with no
Python objects in between and saving the state is a copy of rows.
"""

from __future__ import annotations

# Facets of a channel rule slot.
F_LEVEL, F_WINDOW, F_DAILY, F_RATE, F_FAULT = 0, 1, 2, 3, 4
N_FACETS = 5
# Facet of a cross-channel rule and of a multivariate detector (one each).
F_CROSS, F_MULTIVARIATE = 6, 7

FACET_NAMES = ("level", "window", "daily", "rate", "fault")

# Alarm levels; the level facet holds +level (high) or -level (low).
LEVEL_NAMES = ("", "warning", "alarm", "critical")

# Sensor fault reasons (fault facet code).
FAULT_RANGE, FAULT_STUCK, FAULT_MISSING = 1, 2, 3
FAULT_NAMES = ("", "out_of_range", "stuck", "missing")

# Rate facet codes: +1 rising too fast, -1 falling too fast.
RATE_NAMES = {1: "rising_too_fast", -1: "falling_too_fast"}

# Parameter columns of a channel rule slot (NaN = that check is off).
(
    P_WARN_HI,
    P_ALARM_HI,
    P_CRIT_HI,
    P_WARN_LO,
    P_ALARM_LO,
    P_CRIT_LO,
    P_HYST,
    P_HOLD,
    P_CLEAR_HOLD,
    P_PHYS_MIN,
    P_PHYS_MAX,
    P_STUCK_S,
    P_STUCK_TOL,
    P_MISSING_S,
    P_BUCKET_S,
    P_WIN_HI,
    P_WIN_HYST,
    P_DAY_LIMIT,
    P_DAY_MAX,
    P_MIN_SAMPLES,
    P_RATE_RISE,
    P_RATE_FALL,
    P_RATE_SPAN,
) = range(23)
N_PARAMS = 23

# State columns of a channel rule slot.
(
    S_LEVEL,
    S_PEND_LEVEL,
    S_PEND_SINCE,
    S_FAULT,
    S_STUCK_REF,
    S_STUCK_SINCE,
    S_NAN_SINCE,
    S_LAST_SEEN,
    S_BUCKET,
    S_B_SUM,
    S_B_N,
    S_WINDOW,
    S_DAY,
    S_DAY_COUNT,
    S_DAILY,
    S_RATE_V0,
    S_RATE_T0,
    S_RATE,
) = range(18)
N_STATE = 18


def initial_state_row() -> list[float]:
    """The state of a slot that has seen nothing yet."""
    row = [0.0] * N_STATE
    nan = float("nan")
    for column in (
        S_STUCK_REF,
        S_STUCK_SINCE,
        S_NAN_SINCE,
        S_LAST_SEEN,
        S_BUCKET,
        S_DAY,
        S_RATE_V0,
        S_RATE_T0,
    ):
        row[column] = nan
    return row
