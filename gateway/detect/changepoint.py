"""Change-point detector kind: a two-sided CUSUM on standardised residuals, per channel.

Each reading is standardised by an exponentially weighted baseline (time
constant ``baseline_s``, at least 64 samples) and clipped at 4 sd, so one
wild sample moves the sums only so far. 1 Hz sensor data are autocorrelated,
which makes a plain CUSUM fire constantly: the residuals' lag-1
autocorrelation ``rho`` (mean of ``z·z_prev`` over mean of ``z²``, at most
0.95) is tracked too and each residual is scaled by
``sqrt((1 - rho) / (1 + rho))``, the factor that turns the variance of a
sum of correlated residuals back into that of independent ones. Then

    up   = min(max(0, up + z - k), 2h)      down = min(max(0, down - z - k), 2h)

and ``up`` (or ``down``) above ``h`` after ``warmup_s`` is a change point
(code +1 high, -1 low), raised once wanted for ``hold_s``, held while the
sum stays above ``h / 2``, cleared after ``clear_s`` below it. The sums are
capped at ``2h`` so they drain within a few dozen samples of a return. The
baseline is frozen while raised; after ``rebaseline_s`` the recent mean
(``fast_s``) is the new baseline and the facet clears. NaN readings are
skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gateway.config.rules import ThresholdRule
from gateway.detect.jit import kernel, njit
from gateway.detect.kind import Description
from gateway.detect.perchannel import ChannelKind
from gateway.detect.pieces import CLIP, MIN_BASELINE_N, clip, hold_step, rates

FACET = "changepoint"
MAX_RHO = 0.95

P_BASE_S, P_FAST_S, P_WARM_S, P_K, P_H, P_HOLD, P_CLEAR, P_REBASE = range(8)
N_PARAMS = 8
(
    S_N,
    S_T0,
    S_TLAST,
    S_MEAN,
    S_VAR,
    S_FAST,
    S_PREVZ,
    S_ZZ,
    S_Z2,
    S_UP,
    S_DOWN,
    S_CODE,
    S_PEND,
    S_QUIET,
    S_RAISED,
) = range(15)
N_STATE = 15


def initial_state() -> list[float]:
    """The state of a channel that has seen nothing."""
    row = [0.0] * N_STATE
    for column in (S_T0, S_TLAST, S_PEND, S_QUIET, S_RAISED):
        row[column] = math.nan
    return row


@njit()
def changepoint_update(p: npt.NDArray[np.float64], s: npt.NDArray[np.float64], v: float, t: float) -> float:
    """Advance one channel's state ``s`` (parameters ``p``) by reading ``v`` at ``t``; return old code."""
    old = float(s[S_CODE])
    if math.isnan(v):
        return old
    if s[S_N] == 0.0:
        s[S_N], s[S_T0], s[S_TLAST], s[S_MEAN], s[S_FAST] = 1.0, t, t, v, v
        return old
    dt = max(t - s[S_TLAST], 0.0)
    s[S_TLAST] = t
    a_s, a_f = rates(s[S_N], dt, p[P_BASE_S], p[P_FAST_S])
    learned = s[S_N] >= MIN_BASELINE_N
    sd = math.sqrt(s[S_VAR])
    z = clip((v - s[S_MEAN]) / sd, CLIP) if sd > 0.0 else 0.0
    rho = min(max(s[S_ZZ] / s[S_Z2], 0.0), MAX_RHO) if s[S_Z2] > 0.0 else 0.0
    zz = z * math.sqrt((1.0 - rho) / (1.0 + rho))
    h = p[P_H]
    s[S_UP] = min(max(0.0, s[S_UP] + zz - p[P_K]), 2.0 * h)
    s[S_DOWN] = min(max(0.0, s[S_DOWN] - zz - p[P_K]), 2.0 * h)
    s[S_FAST] += a_f * (v - s[S_FAST])
    wanted = 0.0
    if learned and t - s[S_T0] >= p[P_WARM_S]:
        if s[S_UP] > h:
            wanted = 1.0
        elif s[S_DOWN] > h:
            wanted = -1.0
    code = s[S_CODE]
    still = (s[S_UP] if code > 0 else s[S_DOWN]) > h / 2.0
    new, s[S_PEND], s[S_QUIET] = hold_step(
        code, wanted, still, t, s[S_PEND], s[S_QUIET], p[P_HOLD], p[P_CLEAR]
    )
    if new != 0.0 and code == 0.0:
        s[S_RAISED] = t
    if new != 0.0 and t - s[S_RAISED] >= p[P_REBASE]:  # the new level is the normal now
        s[S_MEAN], s[S_UP], s[S_DOWN] = s[S_FAST], 0.0, 0.0
        new, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
    s[S_CODE] = new
    if new == 0.0:
        diff = v - s[S_MEAN]
        if learned and sd > 0.0:  # a change under way must not widen its own yardstick
            diff = clip(diff, CLIP * sd)
        s[S_MEAN] += a_s * diff
        s[S_VAR] = (1.0 - a_s) * (s[S_VAR] + a_s * diff * diff)
        s[S_ZZ] += a_s * (z * s[S_PREVZ] - s[S_ZZ])
        s[S_Z2] += a_s * (z * z - s[S_Z2])
    s[S_PREVZ] = z
    s[S_N] += 1.0
    return old


@kernel
def changepoint_step(
    slot: npt.NDArray[np.int32],
    value: npt.NDArray[np.float64],
    ts: npt.NDArray[np.float64],
    params: npt.NDArray[np.float64],
    param_row: npt.NDArray[np.int32],
    state: npt.NDArray[np.float64],
    ev: npt.NDArray[np.int64],
) -> int:
    """Advance channel ``slot[k]`` by ``value[k]`` at ``ts[k]`` for every ``k``, in order.

    Code changes go to ``ev`` rows ``(k, slot, old, new)``; returns how many.
    """
    n_ev = 0
    for k in range(slot.size):
        i = slot[k]
        old = changepoint_update(params[param_row[i]], state[i], value[k], ts[k])
        if state[i, S_CODE] != old:
            ev[n_ev, 0], ev[n_ev, 1], ev[n_ev, 2], ev[n_ev, 3] = k, i, int(old), int(state[i, S_CODE])
            n_ev += 1
    return n_ev


@dataclass
class ChangePointTwin:
    """The pure-Python twin of one channel of :func:`changepoint_step`."""

    params: list[float]
    state: list[float] = field(default_factory=initial_state)

    def step(self, v: float, t: float) -> list[tuple[int, int]]:
        """Feed one reading; return ``(old, new)`` when the code changed."""
        p, s = self.params, self.state
        old = s[S_CODE]
        if math.isnan(v):
            return []
        if s[S_N] == 0.0:
            s[S_N], s[S_T0], s[S_TLAST], s[S_MEAN], s[S_FAST] = 1.0, t, t, v, v
            return []
        dt = max(t - s[S_TLAST], 0.0)
        s[S_TLAST] = t
        a_s, a_f = rates.py_func(s[S_N], dt, p[P_BASE_S], p[P_FAST_S])
        learned = s[S_N] >= MIN_BASELINE_N
        sd = math.sqrt(s[S_VAR])
        z = clip.py_func((v - s[S_MEAN]) / sd, CLIP) if sd > 0.0 else 0.0
        rho = min(max(s[S_ZZ] / s[S_Z2], 0.0), MAX_RHO) if s[S_Z2] > 0.0 else 0.0
        zz = z * math.sqrt((1.0 - rho) / (1.0 + rho))
        h = p[P_H]
        s[S_UP] = min(max(0.0, s[S_UP] + zz - p[P_K]), 2.0 * h)
        s[S_DOWN] = min(max(0.0, s[S_DOWN] - zz - p[P_K]), 2.0 * h)
        s[S_FAST] += a_f * (v - s[S_FAST])
        wanted = 0.0
        if learned and t - s[S_T0] >= p[P_WARM_S]:
            wanted = 1.0 if s[S_UP] > h else -1.0 if s[S_DOWN] > h else 0.0
        code = s[S_CODE]
        still = (s[S_UP] if code > 0 else s[S_DOWN]) > h / 2.0
        new, s[S_PEND], s[S_QUIET] = hold_step.py_func(
            code, wanted, still, t, s[S_PEND], s[S_QUIET], p[P_HOLD], p[P_CLEAR]
        )
        if new != 0.0 and code == 0.0:
            s[S_RAISED] = t
        if new != 0.0 and t - s[S_RAISED] >= p[P_REBASE]:
            s[S_MEAN], s[S_UP], s[S_DOWN] = s[S_FAST], 0.0, 0.0
            new, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
        s[S_CODE] = new
        if new == 0.0:
            diff = v - s[S_MEAN]
            if learned and sd > 0.0:
                diff = clip.py_func(diff, CLIP * sd)
            s[S_MEAN] += a_s * diff
            s[S_VAR] = (1.0 - a_s) * (s[S_VAR] + a_s * diff * diff)
            s[S_ZZ] += a_s * (z * s[S_PREVZ] - s[S_ZZ])
            s[S_Z2] += a_s * (z * z - s[S_Z2])
        s[S_PREVZ] = z
        s[S_N] += 1.0
        return [(int(old), int(new))] if new != old else []


def changepoint_params(rule: ThresholdRule) -> list[float] | None:
    """The parameter row of a rule's change-point detector, or None where the rule asks for none."""
    anomaly = rule.anomaly
    if anomaly is None or not anomaly.enabled or "changepoint" not in anomaly.method:
        return None
    c = anomaly.changepoint
    p = [0.0] * N_PARAMS
    p[P_BASE_S], p[P_FAST_S], p[P_WARM_S] = c.baseline_s, c.fast_s, c.warmup_s
    p[P_K], p[P_H], p[P_HOLD], p[P_CLEAR], p[P_REBASE] = c.k, c.h, c.hold_s, c.clear_s, c.rebaseline_s
    return p


class ChangePointKind(ChannelKind):
    """Every ``[[rules]]`` entry whose ``anomaly.method`` includes ``changepoint``."""

    facet, label, n_params = FACET, "change point", N_PARAMS
    code_at, raised_at, seen_at = S_CODE, S_RAISED, S_TLAST
    step = changepoint_step
    params_of = staticmethod(changepoint_params)
    initial_state = staticmethod(initial_state)

    def describe(self, subject: int, code: int) -> Description:
        h = float(self.params[self.param_row[subject], P_H])
        return Description("anomaly", "high" if code > 0 else "low", None, "change_point", h)

    def code_of(self, direction: str, condition: str) -> int:
        return -1 if direction == "low" else 1
