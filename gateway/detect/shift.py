"""Sustained-shift detector kind: a channel whose level or spread has moved, for as long as it has.

Per channel, exponentially weighted means run on the readings: a slow
*baseline* (time constant ``baseline_s``, at least 64 samples) with its
variance, a *recent* mean (``fast_s``, at least 8 samples) with the spread of
readings about it, and a *quick* mean six times faster than the recent one.
The baseline also learns how far the recent mean strays from it in normal
running, its *normal gap*: the noise left in a one-minute mean, autocorrelation
and slow wander included (never less than white noise of the readings' spread
would leave), so a channel that wanders needs a larger gap than a steady one
and units do not matter. Judged after ``warmup_s`` and 64 samples:

- **level shift** (code +1 up, -1 down): the recent mean is more than
  ``limit`` normal gaps from the baseline, and the quick mean, on the same
  side, more than half as far (scaled for its own noise): the readings are
  shifted now, not only a minute ago;
- **variance shift** (code 2): the recent mean square of successive
  differences is more than ``variance_limit`` times the baseline's. Successive
  differences see the noise, not the level, so a step or a slow wander is no
  variance shift; each is clipped at 4 baseline sd so one wild sample is not.

Raised once wanted for ``hold_s``; held while the quick mean stays past half
the limit (or the spread past half-way), so a shift clears soon after the
readings come back, not after the recent mean has crept back; cleared after
``clear_s`` quiet. The baseline is frozen while raised, so a fault that
persists stays raised; after ``rebaseline_s`` the new level is taken as the
baseline (a new operating point) and the facet clears; coming back nearer the
old level within ``baseline_s`` restores the old baseline.

A shift under way must not widen the yardstick it is measured by: a reading
moves the recent and quick means as if it were at most 4 baseline sd from
them (a step is followed, a wild sample is not), baseline updates are clipped
at 4 sd (4 normal gaps for the gap), and the normal gap judged by is the
smaller of now's and the one learned ``2 fast_s`` to ``4 fast_s`` ago
(:func:`gateway.detect.pieces.yardstick`): a step inflates the learned gap
within a minute or two, faster than the recent mean reaches the limit. Time
constants are in seconds so 1 Hz and 5-minute data both learn in
minutes to hours. NaN readings are skipped.
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
from gateway.detect.pieces import CLIP, MIN_BASELINE_N, clip, hold_step, rates, yardstick

FACET = "shift"
LEVEL_UP, LEVEL_DOWN, VARIANCE = 1, -1, 2

P_BASE_S, P_FAST_S, P_WARM_S, P_LIMIT, P_VAR_LIMIT, P_HOLD, P_CLEAR, P_REBASE = range(8)
N_PARAMS = 8
(
    S_N,
    S_T0,
    S_TLAST,
    S_MEAN,
    S_VAR,
    S_FAST,
    S_FVAR,
    S_NVAR,
    S_CODE,
    S_PEND,
    S_QUIET,
    S_RAISED,
    S_PREV,
    S_PRIOR,
    S_PRIOR_T,
    S_QUICK,
    S_GAP,
    S_GAP_T,
    S_GAP_LAST,
    S_GAP_BEFORE,
) = range(20)
N_STATE = 20
QUICK = 6.0  # the quick mean learns this many times faster than the recent one
LAG = 2.0  # the normal gap judged by lags by this many recent-mean time constants


def initial_state() -> list[float]:
    """The state of a channel that has seen nothing."""
    row = [0.0] * N_STATE
    for column in (S_T0, S_TLAST, S_PEND, S_QUIET, S_RAISED, S_PRIOR, S_PRIOR_T, S_GAP_T, S_GAP_BEFORE):
        row[column] = math.nan
    return row


@njit()
def shift_update(p: npt.NDArray[np.float64], s: npt.NDArray[np.float64], v: float, t: float) -> float:
    """Advance one channel's state ``s`` (parameters ``p``) by reading ``v`` at ``t``; return old code."""
    old = float(s[S_CODE])
    if math.isnan(v):
        return old
    if s[S_N] == 0.0:
        s[S_N], s[S_T0], s[S_TLAST] = 1.0, t, t
        s[S_MEAN], s[S_FAST], s[S_QUICK], s[S_PREV] = v, v, v, v
        s[S_VAR], s[S_FVAR], s[S_NVAR], s[S_GAP] = 0.0, 0.0, 0.0, 0.0
        return old
    dt = max(t - s[S_TLAST], 0.0)
    s[S_TLAST] = t
    a_s, a_f = rates(s[S_N], dt, p[P_BASE_S], p[P_FAST_S])
    learned = s[S_N] >= MIN_BASELINE_N
    judging = learned and t - s[S_T0] >= p[P_WARM_S]
    sd = math.sqrt(s[S_VAR])
    normal_gap = yardstick(s, S_GAP, S_GAP_T, S_GAP_LAST, S_GAP_BEFORE, t, LAG * p[P_FAST_S], judging)
    gap_sd = math.sqrt(max(normal_gap, s[S_VAR] * a_f / (2.0 - a_f)))  # at least white noise's
    bound = CLIP * sd if learned and sd > 0.0 else math.inf  # one wild sample moves the means only so far
    s[S_FAST] += a_f * clip(v - s[S_FAST], bound)
    s[S_QUICK] += min(QUICK * a_f, 0.5) * clip(v - s[S_QUICK], bound)
    dev = v - s[S_PREV]
    s[S_PREV] = v
    if learned and s[S_NVAR] > 0.0:
        dev = clip(dev, CLIP * math.sqrt(s[S_NVAR]))
    s[S_FVAR] = (1.0 - a_f) * s[S_FVAR] + a_f * dev * dev
    code = s[S_CODE]
    if not math.isnan(s[S_PRIOR]):  # re-baselined on a shift: back nearer the old level is the old normal
        if t - s[S_PRIOR_T] > p[P_BASE_S] or t < s[S_PRIOR_T]:
            s[S_PRIOR] = math.nan
        elif abs(s[S_QUICK] - s[S_PRIOR]) < abs(s[S_QUICK] - s[S_MEAN]):
            s[S_MEAN] = s[S_FAST] = s[S_QUICK] = s[S_PRIOR]
            s[S_PRIOR] = math.nan
            code, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
    gap = s[S_FAST] - s[S_MEAN]
    d = gap / gap_sd if gap_sd > 0.0 else 0.0
    quick = (s[S_QUICK] - s[S_MEAN]) / (gap_sd * math.sqrt(QUICK)) if gap_sd > 0.0 else 0.0
    ratio = s[S_FVAR] / s[S_NVAR] if s[S_NVAR] > 0.0 else 1.0
    wanted = 0.0
    if judging:
        if d > p[P_LIMIT] and quick > p[P_LIMIT] / 2.0:
            wanted = LEVEL_UP
        elif d < -p[P_LIMIT] and quick < -p[P_LIMIT] / 2.0:
            wanted = LEVEL_DOWN
        elif ratio > p[P_VAR_LIMIT]:
            wanted = VARIANCE
    still = (
        ratio > 1.0 + (p[P_VAR_LIMIT] - 1.0) / 2.0 if code == VARIANCE else code * quick > p[P_LIMIT] / 2.0
    )
    new, s[S_PEND], s[S_QUIET] = hold_step(
        code, wanted, still, t, s[S_PEND], s[S_QUIET], p[P_HOLD], p[P_CLEAR]
    )
    if new != 0.0 and code == 0.0:
        s[S_RAISED] = t
    if new != 0.0 and t - s[S_RAISED] >= p[P_REBASE]:  # the shift is the new normal
        s[S_PRIOR], s[S_PRIOR_T] = s[S_MEAN], t
        s[S_MEAN], s[S_NVAR] = s[S_FAST], s[S_FVAR]
        new, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
    s[S_CODE] = new
    if new == 0.0:
        diff = v - s[S_MEAN]
        if learned and sd > 0.0:
            diff = clip(diff, CLIP * sd)
            gap = clip(gap, CLIP * gap_sd)
        s[S_MEAN] += a_s * diff
        s[S_VAR] = (1.0 - a_s) * (s[S_VAR] + a_s * diff * diff)
        s[S_NVAR] = (1.0 - a_s) * s[S_NVAR] + a_s * dev * dev
        s[S_GAP] = (1.0 - a_s) * s[S_GAP] + a_s * gap * gap
    s[S_N] += 1.0
    return old


@kernel
def shift_step(
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
        old = shift_update(params[param_row[i]], state[i], value[k], ts[k])
        if state[i, S_CODE] != old:
            ev[n_ev, 0], ev[n_ev, 1], ev[n_ev, 2], ev[n_ev, 3] = k, i, int(old), int(state[i, S_CODE])
            n_ev += 1
    return n_ev


@dataclass
class ShiftTwin:
    """The pure-Python twin of one channel of :func:`shift_step`."""

    params: list[float]
    state: list[float] = field(default_factory=initial_state)

    def step(self, v: float, t: float) -> list[tuple[int, int]]:
        """Feed one reading; return ``(old, new)`` when the code changed."""
        p, s = self.params, self.state
        old = s[S_CODE]
        if math.isnan(v):
            return []
        if s[S_N] == 0.0:
            s[S_N], s[S_T0], s[S_TLAST] = 1.0, t, t
            s[S_MEAN], s[S_FAST], s[S_QUICK], s[S_PREV] = v, v, v, v
            s[S_VAR], s[S_FVAR], s[S_NVAR], s[S_GAP] = 0.0, 0.0, 0.0, 0.0
            return []
        dt = max(t - s[S_TLAST], 0.0)
        s[S_TLAST] = t
        a_s, a_f = rates.py_func(s[S_N], dt, p[P_BASE_S], p[P_FAST_S])
        learned = s[S_N] >= MIN_BASELINE_N
        judging = learned and t - s[S_T0] >= p[P_WARM_S]
        sd = math.sqrt(s[S_VAR])
        lag_s = LAG * p[P_FAST_S]
        normal_gap = yardstick.py_func(s, S_GAP, S_GAP_T, S_GAP_LAST, S_GAP_BEFORE, t, lag_s, judging)
        gap_sd = math.sqrt(max(normal_gap, s[S_VAR] * a_f / (2.0 - a_f)))
        bound = CLIP * sd if learned and sd > 0.0 else math.inf
        s[S_FAST] += a_f * clip.py_func(v - s[S_FAST], bound)
        s[S_QUICK] += min(QUICK * a_f, 0.5) * clip.py_func(v - s[S_QUICK], bound)
        dev = v - s[S_PREV]
        s[S_PREV] = v
        if learned and s[S_NVAR] > 0.0:
            dev = clip.py_func(dev, CLIP * math.sqrt(s[S_NVAR]))
        s[S_FVAR] = (1.0 - a_f) * s[S_FVAR] + a_f * dev * dev
        code = s[S_CODE]
        if not math.isnan(s[S_PRIOR]):
            if t - s[S_PRIOR_T] > p[P_BASE_S] or t < s[S_PRIOR_T]:
                s[S_PRIOR] = math.nan
            elif abs(s[S_QUICK] - s[S_PRIOR]) < abs(s[S_QUICK] - s[S_MEAN]):
                s[S_MEAN] = s[S_FAST] = s[S_QUICK] = s[S_PRIOR]
                s[S_PRIOR] = math.nan
                code, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
        gap = s[S_FAST] - s[S_MEAN]
        d = gap / gap_sd if gap_sd > 0.0 else 0.0
        quick = (s[S_QUICK] - s[S_MEAN]) / (gap_sd * math.sqrt(QUICK)) if gap_sd > 0.0 else 0.0
        ratio = s[S_FVAR] / s[S_NVAR] if s[S_NVAR] > 0.0 else 1.0
        wanted = 0.0
        if judging:
            if abs(d) > p[P_LIMIT] and d * quick > 0.0 and abs(quick) > p[P_LIMIT] / 2.0:
                wanted = LEVEL_UP if d > 0 else LEVEL_DOWN
            elif ratio > p[P_VAR_LIMIT]:
                wanted = VARIANCE
        if code == VARIANCE:
            still = ratio > 1.0 + (p[P_VAR_LIMIT] - 1.0) / 2.0
        else:
            still = code * quick > p[P_LIMIT] / 2.0
        new, s[S_PEND], s[S_QUIET] = hold_step.py_func(
            code, wanted, still, t, s[S_PEND], s[S_QUIET], p[P_HOLD], p[P_CLEAR]
        )
        if new != 0.0 and code == 0.0:
            s[S_RAISED] = t
        if new != 0.0 and t - s[S_RAISED] >= p[P_REBASE]:
            s[S_PRIOR], s[S_PRIOR_T] = s[S_MEAN], t
            s[S_MEAN], s[S_NVAR] = s[S_FAST], s[S_FVAR]
            new, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
        s[S_CODE] = new
        if new == 0.0:
            diff = v - s[S_MEAN]
            if learned and sd > 0.0:
                diff = clip.py_func(diff, CLIP * sd)
                gap = clip.py_func(gap, CLIP * gap_sd)
            s[S_MEAN] += a_s * diff
            s[S_VAR] = (1.0 - a_s) * (s[S_VAR] + a_s * diff * diff)
            s[S_NVAR] = (1.0 - a_s) * s[S_NVAR] + a_s * dev * dev
            s[S_GAP] = (1.0 - a_s) * s[S_GAP] + a_s * gap * gap
        s[S_N] += 1.0
        return [(int(old), int(new))] if new != old else []


def shift_params(rule: ThresholdRule) -> list[float] | None:
    """The parameter row of a rule's shift detector, or None where the rule asks for none."""
    anomaly = rule.anomaly
    if anomaly is None or not anomaly.enabled or "shift" not in anomaly.method:
        return None
    c = anomaly.shift
    p = [0.0] * N_PARAMS
    p[P_BASE_S], p[P_FAST_S], p[P_WARM_S] = c.baseline_s, c.fast_s, c.warmup_s
    p[P_LIMIT], p[P_VAR_LIMIT] = c.limit, c.variance_limit
    p[P_HOLD], p[P_CLEAR], p[P_REBASE] = c.hold_s, c.clear_s, c.rebaseline_s
    return p


class ShiftKind(ChannelKind):
    """Every ``[[rules]]`` entry whose ``anomaly.method`` includes ``shift``."""

    facet, label, n_params = FACET, "sustained shift", N_PARAMS
    code_at, raised_at, seen_at = S_CODE, S_RAISED, S_TLAST
    step = shift_step
    params_of = staticmethod(shift_params)
    initial_state = staticmethod(initial_state)

    def describe(self, subject: int, code: int) -> Description:
        p = self.params[self.param_row[subject]]
        if code == VARIANCE:
            return Description("anomaly", "", None, "variance_shift", float(p[P_VAR_LIMIT]))
        return Description("anomaly", "high" if code > 0 else "low", None, "level_shift", float(p[P_LIMIT]))

    def code_of(self, direction: str, condition: str) -> int:
        if condition == "variance_shift":
            return VARIANCE
        return LEVEL_DOWN if direction == "low" else LEVEL_UP
