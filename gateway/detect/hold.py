"""Hold and clear timing shared by the statistical detector kinds.

A detector wants a code (0: normal). A new code is taken once it has been
wanted without a break for ``hold_s`` (a minimum duration, so one odd sample
raises nothing); a raised code is left once the detector has been quiet
(its release condition false) for ``clear_s``. Timers restart when the clock
steps back. The kernel and its twin both call :func:`hold_step`.
"""

from __future__ import annotations

import math

from numba import njit


@njit(cache=True, nogil=True)
def hold_step(
    code: float,
    wanted: float,
    still: bool,
    t: float,
    pend_since: float,
    quiet_since: float,
    hold_s: float,
    clear_s: float,
) -> tuple[float, float, float]:
    """The new ``(code, pend_since, quiet_since)``; ``still``: a raised code's condition holds."""
    if code == 0.0:
        if wanted == 0.0:
            return 0.0, math.nan, math.nan
        if math.isnan(pend_since) or t < pend_since:
            pend_since = t
        if t - pend_since >= hold_s:
            return wanted, math.nan, math.nan
        return 0.0, pend_since, math.nan
    if still:
        return code, math.nan, math.nan
    if math.isnan(quiet_since) or t < quiet_since:
        quiet_since = t
    if t - quiet_since >= clear_s:
        return 0.0, math.nan, math.nan
    return code, math.nan, quiet_since
