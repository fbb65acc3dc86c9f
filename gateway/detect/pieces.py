"""Pieces the statistical detector kinds share: learning rates, clipping, hold and clear timing.

Each is a Numba function the kernels call and their Python twins call
through ``.py_func``, so a kernel and its twin cannot drift apart in them.

Hold and clear: a detector wants a code (0: normal). A new code is taken once
it has been wanted without a break for ``hold_s`` (a minimum duration, so one
odd sample raises nothing); a raised code is left once the detector has been
quiet (its release condition false) for ``clear_s``. Timers restart when the
clock steps back.
"""

from __future__ import annotations

import math

from gateway.detect.jit import njit

MIN_BASELINE_N, MIN_FAST_N = 64.0, 8.0
CLIP = 4.0  # baseline updates are clipped at this many sd: an anomaly under way must not widen them


@njit()
def rates(n: float, dt: float, base_s: float, fast_s: float) -> tuple[float, float]:
    """The baseline and recent-mean learning rates after ``n`` samples, ``dt`` seconds apart.

    Time constants are seconds, bounded to at least 64 (baseline) and 8
    (recent) samples, and a plain running mean while fewer have been seen.
    """
    warm_in = 1.0 / (n + 1.0)
    a_s = max(min(1.0 - math.exp(-dt / base_s), 1.0 / MIN_BASELINE_N), warm_in)
    return a_s, recent_rate(n, dt, fast_s)


@njit()
def recent_rate(n: float, dt: float, fast_s: float) -> float:
    """The learning rate of a recent mean (``fast_s``, at least 8 samples); see :func:`rates`."""
    return max(min(1.0 - math.exp(-dt / fast_s), 1.0 / MIN_FAST_N), 1.0 / (n + 1.0))


@njit()
def clip(x: float, bound: float) -> float:
    """``x`` limited to ``[-bound, bound]``."""
    return min(max(x, -bound), bound)


@njit()
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


@njit()
def yardstick(s, var, at, last, before, t, lag_s, judging):  # type: ignore[no-untyped-def]
    """The variance ``s[var]`` to judge by: the smaller of now's and the one of ``lag_s``–``2 lag_s`` ago.

    ``s[at]`` is when ``s[last]`` was copied from ``s[var]``; every ``lag_s`` it
    moves on to ``s[before]``. Clipped updates still widen a learned variance
    while a shift is under way, within a minute or two, faster than the shift
    reaches the limit; the variance from before it began stays the yardstick
    until ``lag_s`` after it has been in force. While still learning
    (``judging`` false) the variance grows as it learns and is taken as it is.
    """
    if not judging:
        s[at] = math.nan
        return float(s[var])
    if math.isnan(s[at]) or t < s[at]:
        s[at], s[last], s[before] = t, s[var], math.nan
    elif t - s[at] >= lag_s:
        s[at], s[last], s[before] = t, s[var], s[last]
    if math.isnan(s[before]) or s[before] <= 0.0:
        return float(s[var])
    return float(min(s[var], s[before]))
