"""Adaptive multivariate detector kind: channels of one device that stop behaving as they do together.

Each channel is standardised by its own exponentially weighted baseline mean
and variance (time constant ``baseline_s``, at least 64 samples), so units do
not matter: a vibration in g weighs as much as a pressure in bar. The
correlation of the standardised values is tracked with the same forgetting
and shrunk towards the identity by ``p / (p + n)`` (``n`` the samples behind
it, at most the baseline's effective length), which keeps it invertible from
the first minutes. Every complete row scores ``T² = zᵀ R⁻¹ z``; the recent
mean of ``T²/p`` (``fast_s``, at least 8 rows; about 1 when all is as usual)
is the *recent score*.

A small shift that lasts (a sensor offset of a few noise sd on one channel)
barely moves a row's T²; its average over a minute stands out. So the
standardised values are also averaged over ``sustain_s`` (at least 8 rows),
and the covariance of these *sustained residuals* is learned as the
correlation is (shrunk towards its diagonal by the same ``p / (p + n)``): it
knows that noise averages away and a wandering load does not, whatever the
data's autocorrelation. Their ``T²/p`` in that covariance is the *sustained
score* (0 ``sustain_s`` switches it off).

Either score above ``score_limit`` is an anomaly (a limit half as high again
at the first row, coming down to it over ``baseline_s``: a young baseline has
seen little of the plant's slow variation), raised once held for ``hold_s``,
held while either is above half-way, cleared after ``clear_s`` quiet. The
baseline is frozen while raised; after ``rebaseline_s`` the recent means are
taken as the new normal and the facet clears. The baseline before a fault is
kept for ``baseline_s``: a fault raised again within ``2 × rebaseline_s`` of
being re-baselined is the same fault, so re-baselining it again keeps the
normal from before it; recent means back at that normal (nearer it than the
current baseline, by T², and not anomalous from it) take it back without an
event, and while a row is nearer it no new event is raised. The end of a long fault, or
of one that kept moving, is then no new anomaly. Quadratic forms use Cholesky
factors, a sixth of the work of an inverse.

Every row of a batch is scored in order: the readings of one timestamp
update the device's latest values, and the row is judged when the
timestamp changes or the batch ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gateway.config.rules import MultivariateRule
from gateway.detect.jit import kernel, njit
from gateway.detect.kind import Description, KindEvent, StateRows
from gateway.detect.layout import Subject, multivariate_subject
from gateway.detect.multivariate import MAX_DIMS, cholesky, whitened_square
from gateway.detect.pieces import CLIP, MIN_BASELINE_N, clip, hold_step, rates, recent_rate

FACET = "multivariate"

P_DIMS, P_BASE_S, P_FAST_S, P_WARM_S, P_LIMIT, P_HOLD, P_CLEAR, P_REBASE, P_SUSTAIN = range(9)
N_PARAMS = 9
S_N, S_T0, S_TLAST, S_SCORE, S_CODE, S_PEND, S_QUIET, S_RAISED, S_PRIOR_T = range(9)
S_SUSTAINED, S_OK, S_OK_S = 9, 10, 11  # the sustained score; whether each factor exists
N_STATE = 12
# Per detector, after the scalars: MAX_DIMS baseline means, variances, recent means, the means
# before the last re-baselining and sustained residuals, then MAX_DIMS² co-moments of the
# standardised values and MAX_DIMS² of the sustained residuals, and the Cholesky factors of the
# two (refreshed every REFRESH rows: once 64 rows are learned, a row moves the co-moments by at
# most 1/64 of the way, so a factor eight rows old is as good and factoring is most of a row's work).
MEAN0 = N_STATE
VAR0 = MEAN0 + MAX_DIMS
FAST0 = VAR0 + MAX_DIMS
PRIOR0 = FAST0 + MAX_DIMS
SUS0 = PRIOR0 + MAX_DIMS
CO0 = SUS0 + MAX_DIMS
SCO0 = CO0 + MAX_DIMS * MAX_DIMS
LOW0 = SCO0 + MAX_DIMS * MAX_DIMS
LOWS0 = LOW0 + MAX_DIMS * MAX_DIMS
WIDTH = LOWS0 + MAX_DIMS * MAX_DIMS
REFRESH = 8  # factor every 8th row, and every row of the first MIN_BASELINE_N (nothing is judged before)
YOUNG = 0.5  # the raise limit's extra share at the first row, gone after baseline_s


def initial_state() -> list[float]:
    """The state of a detector that has seen nothing."""
    row = [0.0] * WIDTH
    for column in (S_T0, S_TLAST, S_PEND, S_QUIET, S_RAISED, S_PRIOR_T):
        row[column] = math.nan
    return row


@njit()
def factor_learned(s: npt.NDArray[np.float64], p: int, gamma: float, lower: npt.NDArray[np.float64]) -> bool:
    """``lower``: the Cholesky factor of the learned correlation shrunk by ``gamma`` towards none."""
    for r in range(p):
        crr = s[CO0 + r * p + r]
        lower[r * p + r] = 1.0 / math.sqrt(crr) if crr > 0.0 else 0.0  # 1 / sd until the loop below
        for c in range(r):
            lower[r * p + c] = (1.0 - gamma) * s[CO0 + r * p + c] * lower[r * p + r] * lower[c * p + c]
    for r in range(p):
        lower[r * p + r] = 1.0
    return cholesky(lower, p)


@njit()
def factor_sustained(
    s: npt.NDArray[np.float64], p: int, gamma: float, lower: npt.NDArray[np.float64]
) -> bool:
    """``lower``: the Cholesky factor of the sustained residuals' covariance, shrunk towards its diagonal."""
    for r in range(p):
        for c in range(r + 1):
            co = s[SCO0 + r * p + c]
            lower[r * p + c] = max(co, 1e-9) if r == c else (1.0 - gamma) * co
    return cholesky(lower, p)


@njit()
def refactor(s: npt.NDArray[np.float64], p: int, n: float, gamma: float, sustain: bool) -> None:
    """Factor the learned correlation (and the sustained covariance) into the state when due."""
    if n >= MIN_BASELINE_N and int(n) % REFRESH != 0:
        return
    s[S_OK] = 1.0 if factor_learned(s, p, gamma, s[LOW0 : LOW0 + p * p]) else 0.0
    if sustain:
        s[S_OK_S] = 1.0 if factor_sustained(s, p, gamma, s[LOWS0 : LOWS0 + p * p]) else 0.0


@njit()
def t2_from(
    s: npt.NDArray[np.float64],
    at: int,
    y: npt.NDArray[np.float64],
    lower: npt.NDArray[np.float64],
    ok: bool,
    w: npt.NDArray[np.float64],
) -> float:
    """T² of ``y`` (one value per channel) from the means in ``s[at:]``, in baseline sd; ``w`` scratch."""
    p = y.size
    for j in range(p):
        w[j] = (y[j] - s[at + j]) / math.sqrt(s[VAR0 + j]) if s[VAR0 + j] > 0.0 else 0.0
    return whitened_square(lower, ok, w, p, w)  # in place: each element is read before it is written


@njit()
def raise_limit(score_limit: float, base_s: float, age: float) -> float:
    """The score that raises an event ``age`` seconds after the first row.

    A young baseline has seen little of the plant's slow variation (a load
    that wanders over tens of minutes gives it only a few independent looks in
    its first hour), so the limit starts at ``1 + YOUNG`` times ``score_limit``
    and comes down to it as the baseline reaches its time constant.
    """
    return score_limit * (1.0 + YOUNG * max(0.0, 1.0 - age / base_s))


@njit()
def sustained_from_prior(
    s: npt.NDArray[np.float64],
    p: int,
    lower: npt.NDArray[np.float64],
    ok: bool,
    v: npt.NDArray[np.float64],
    w: npt.NDArray[np.float64],
) -> float:
    """The sustained residuals' T² as the baseline before re-baselining would see them."""
    for j in range(p):
        v[j] = s[SUS0 + j]
        if s[VAR0 + j] > 0.0:
            v[j] += (s[MEAN0 + j] - s[PRIOR0 + j]) / math.sqrt(s[VAR0 + j])
    return whitened_square(lower, ok, v, p, w)


@njit()
def back_at_prior(
    s: npt.NDArray[np.float64],
    p: int,
    limit: float,
    factors: tuple[npt.NDArray[np.float64], bool, npt.NDArray[np.float64], bool],
    sustain: bool,
    v: npt.NDArray[np.float64],
    w: npt.NDArray[np.float64],
) -> bool:
    """Whether the recent means are back at the baseline before re-baselining.

    Back: their T²/p from it is under ``limit`` and under their T²/p from the
    current one. Nearness is the detector's own T² distance, so a move of every
    channel together (the plant's load) counts for less than one channel
    leaving the others: the end of a broken relation is seen as the old normal
    even when the load has wandered since. With the sustained score on, the
    sustained residuals must say so too: a small offset still there is hidden
    in the recent means' noise, not in a minute's average.
    """
    lower, ok, lower_s, ok_s = factors
    recent = s[FAST0 : FAST0 + p]
    prior = t2_from(s, PRIOR0, recent, lower, ok, w)
    if not (prior <= limit * p and prior < t2_from(s, MEAN0, recent, lower, ok, w)):
        return False
    if not sustain:
        return True
    from_prior = sustained_from_prior(s, p, lower_s, ok_s, v, w)
    return from_prior <= limit * p and from_prior < whitened_square(lower_s, ok_s, s[SUS0 : SUS0 + p], p, w)


@njit()
def adaptive_update(
    prm: npt.NDArray[np.float64],
    s: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    t: float,
    z: npt.NDArray[np.float64],
    v: npt.NDArray[np.float64],
    w: npt.NDArray[np.float64],
) -> float:
    """Score (and learn from) one complete row ``x`` at ``t``; return the old code.

    ``z``, ``v`` and ``w`` are scratch of ``MAX_DIMS``.
    """
    p = int(prm[P_DIMS])
    old = float(s[S_CODE])
    if s[S_N] == 0.0:
        s[S_N], s[S_T0], s[S_TLAST], s[S_SCORE] = 1.0, t, t, 1.0
        for j in range(p):
            s[MEAN0 + j] = x[j]
            s[FAST0 + j] = x[j]
        return old
    dt = max(t - s[S_TLAST], 0.0)
    s[S_TLAST] = t
    n = s[S_N]
    a_s, a_f = rates(n, dt, prm[P_BASE_S], prm[P_FAST_S])
    code = s[S_CODE]
    for j in range(p):
        s[FAST0 + j] += a_f * (x[j] - s[FAST0 + j])
    gamma = p / (p + min(n, 2.0 / a_s - 1.0))
    sustain = prm[P_SUSTAIN] > 0.0
    refactor(s, p, n, gamma, sustain)
    lower, ok = s[LOW0 : LOW0 + p * p], s[S_OK] != 0.0
    lower_s, ok_s = s[LOWS0 : LOWS0 + p * p], sustain and s[S_OK_S] != 0.0
    if not math.isnan(s[S_PRIOR_T]):  # re-baselined: back nearer the old point is the old normal
        if t - s[S_PRIOR_T] > prm[P_BASE_S] or t < s[S_PRIOR_T]:
            s[S_PRIOR_T] = math.nan
        elif back_at_prior(s, p, prm[P_LIMIT], (lower, ok, lower_s, ok_s), sustain, v, w):
            for j in range(p):
                s[MEAN0 + j] = s[PRIOR0 + j]
                s[SUS0 + j] = 0.0
            s[S_PRIOR_T], s[S_SCORE] = math.nan, 1.0
            code, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
    for j in range(p):
        var = s[VAR0 + j]
        z[j] = (x[j] - s[MEAN0 + j]) / math.sqrt(var) if var > 0.0 else 0.0
    t2 = whitened_square(lower, ok, z, p, w)
    s[S_SCORE] += a_f * (t2 / p - s[S_SCORE])
    if sustain:
        a_w = recent_rate(n, dt, prm[P_SUSTAIN])
        for j in range(p):
            s[SUS0 + j] += a_w * (clip(z[j], CLIP) - s[SUS0 + j])
        s[S_SUSTAINED] = whitened_square(lower_s, ok_s, s[SUS0 : SUS0 + p], p, w) / p
    limit = raise_limit(prm[P_LIMIT], prm[P_BASE_S], t - s[S_T0])
    wanted = 0.0
    warm = n >= MIN_BASELINE_N and t - s[S_T0] >= prm[P_WARM_S]
    if warm and (s[S_SCORE] > limit or (sustain and s[S_SUSTAINED] > limit)):
        wanted = 1.0
    if wanted != 0.0 and not math.isnan(s[S_PRIOR_T]) and t2_from(s, PRIOR0, x[:p], lower, ok, w) < t2:
        wanted = 0.0  # on its way back to the old normal: no new event while the recent means follow
    half = 1.0 + (prm[P_LIMIT] - 1.0) / 2.0
    still = s[S_SCORE] > half or (sustain and s[S_SUSTAINED] > half)
    new, s[S_PEND], s[S_QUIET] = hold_step(
        code, wanted, still, t, s[S_PEND], s[S_QUIET], prm[P_HOLD], prm[P_CLEAR]
    )
    if new != 0.0 and code == 0.0:
        s[S_RAISED] = t
    if new != 0.0 and t - s[S_RAISED] >= prm[P_REBASE]:
        # Raised again within 2 × rebaseline_s of re-baselining: the same fault, whose normal is still
        # the one before it (a new normal quiet that long is the one to return to).
        first = math.isnan(s[S_PRIOR_T]) or s[S_RAISED] - s[S_PRIOR_T] > 2.0 * prm[P_REBASE]
        for j in range(p):  # the new operating point is the baseline now
            if first:
                s[PRIOR0 + j] = s[MEAN0 + j]
            s[MEAN0 + j] = s[FAST0 + j]
            s[SUS0 + j] = 0.0
        s[S_SCORE], s[S_PRIOR_T] = 1.0, t
        new, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
    s[S_CODE] = new
    if new == 0.0:
        learn(s, p, n, a_s, x, z, sustain)
    s[S_N] = n + 1.0
    return old


@njit()
def learn(
    s: npt.NDArray[np.float64],
    p: int,
    n: float,
    a_s: float,
    x: npt.NDArray[np.float64],
    z: npt.NDArray[np.float64],
    sustain: bool,
) -> None:
    """Move the baseline towards row ``x`` (standardised as ``z``): means, variances, co-moments."""
    for j in range(p):
        bound = CLIP * math.sqrt(s[VAR0 + j]) if n >= MIN_BASELINE_N else math.inf
        diff = clip(x[j] - s[MEAN0 + j], bound)
        s[MEAN0 + j] += a_s * diff
        s[VAR0 + j] = (1.0 - a_s) * (s[VAR0 + j] + a_s * diff * diff)
    for r in range(p):
        zr = clip(z[r], CLIP)
        for c in range(r + 1):
            s[CO0 + r * p + c] = (1.0 - a_s) * s[CO0 + r * p + c] + a_s * zr * clip(z[c], CLIP)
    if sustain:
        for r in range(p):
            for c in range(r + 1):
                m = s[SUS0 + r] * s[SUS0 + c]
                s[SCO0 + r * p + c] = (1.0 - a_s) * s[SCO0 + r * p + c] + a_s * m


@kernel
def adaptive_step(
    at: npt.NDArray[np.intp],
    value: npt.NDArray[np.float64],
    ts: npt.NDArray[np.float64],
    latest: npt.NDArray[np.float64],
    detectors: npt.NDArray[np.int32],
    channels: npt.NDArray[np.int32],
    params: npt.NDArray[np.float64],
    state: npt.NDArray[np.float64],
    ev: npt.NDArray[np.int64],
) -> int:
    """Feed one device's batch: reading ``k`` sets ``latest[at[k]]`` (``at[k] < 0``: none).

    At the end of each timestamp's readings every detector in ``detectors``
    scores its channels' latest values (``channels[d, j]`` indexes ``latest``);
    changes go to ``ev`` rows ``(k, d, old, new)``, which needs one row per
    detector per timestamp. Returns how many rows were written.
    """
    n_ev = 0
    x = np.empty(MAX_DIMS)
    z = np.empty(MAX_DIMS)
    v = np.empty(MAX_DIMS)
    w = np.empty(MAX_DIMS)
    for k in range(at.size):
        if at[k] >= 0:
            latest[at[k]] = value[k]
        if k + 1 < at.size and ts[k + 1] == ts[k]:
            continue
        for d in detectors:
            p = int(params[d, P_DIMS])
            complete = True
            for j in range(p):
                x[j] = latest[channels[d, j]]
                complete = complete and not math.isnan(x[j])
            if not complete:
                continue
            old = adaptive_update(params[d], state[d], x, ts[k], z, v, w)
            if state[d, S_CODE] != old:
                ev[n_ev, 0], ev[n_ev, 1], ev[n_ev, 2], ev[n_ev, 3] = k, d, int(old), int(state[d, S_CODE])
                n_ev += 1
    return n_ev


@dataclass
class AdaptiveTwin:
    """The pure-Python twin of one detector of :func:`adaptive_step`, fed complete rows."""

    params: list[float]
    state: list[float] = field(default_factory=initial_state)

    def step(self, x: list[float], t: float) -> list[tuple[int, int]]:
        prm, s = self.params, self.state
        p = int(prm[P_DIMS])
        if any(math.isnan(v) for v in x[:p]):
            return []
        old = s[S_CODE]
        if s[S_N] == 0.0:
            s[S_N], s[S_T0], s[S_TLAST], s[S_SCORE] = 1.0, t, t, 1.0
            s[MEAN0 : MEAN0 + p] = x[:p]
            s[FAST0 : FAST0 + p] = x[:p]
            return []
        dt = max(t - s[S_TLAST], 0.0)
        s[S_TLAST] = t
        n = s[S_N]
        a_s, a_f = rates.py_func(n, dt, prm[P_BASE_S], prm[P_FAST_S])
        code = s[S_CODE]
        for j in range(p):
            s[FAST0 + j] += a_f * (x[j] - s[FAST0 + j])
        gamma = p / (p + min(n, 2.0 / a_s - 1.0))
        sustain = prm[P_SUSTAIN] > 0.0
        w, v, row = np.zeros(MAX_DIMS), np.zeros(MAX_DIMS), np.array(s)
        refactor.py_func(row, p, n, gamma, sustain)
        s[:] = row.tolist()
        lower, ok = row[LOW0 : LOW0 + p * p], s[S_OK] != 0.0
        lower_s, ok_s = row[LOWS0 : LOWS0 + p * p], sustain and s[S_OK_S] != 0.0
        if not math.isnan(s[S_PRIOR_T]):
            if t - s[S_PRIOR_T] > prm[P_BASE_S] or t < s[S_PRIOR_T]:
                s[S_PRIOR_T] = math.nan
            elif back_at_prior.py_func(row, p, prm[P_LIMIT], (lower, ok, lower_s, ok_s), sustain, v, w):
                s[MEAN0 : MEAN0 + p] = s[PRIOR0 : PRIOR0 + p]
                s[SUS0 : SUS0 + p] = [0.0] * p
                s[S_PRIOR_T], s[S_SCORE] = math.nan, 1.0
                code, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
        var = s[VAR0 : VAR0 + p]
        z = [(x[j] - s[MEAN0 + j]) / math.sqrt(var[j]) if var[j] > 0.0 else 0.0 for j in range(p)]
        t2 = whitened_square.py_func(lower, ok, np.array(z), p, w)
        s[S_SCORE] += a_f * (t2 / p - s[S_SCORE])
        if sustain:
            a_w = recent_rate.py_func(n, dt, prm[P_SUSTAIN])
            for j in range(p):
                s[SUS0 + j] += a_w * (clip.py_func(z[j], CLIP) - s[SUS0 + j])
            residuals = np.array(s[SUS0 : SUS0 + p])
            s[S_SUSTAINED] = whitened_square.py_func(lower_s, ok_s, residuals, p, w) / p
        limit = raise_limit.py_func(prm[P_LIMIT], prm[P_BASE_S], t - s[S_T0])
        warm = n >= MIN_BASELINE_N and t - s[S_T0] >= prm[P_WARM_S]
        wanted = 1.0 if warm and (s[S_SCORE] > limit or (sustain and s[S_SUSTAINED] > limit)) else 0.0
        returning = not math.isnan(s[S_PRIOR_T]) and (
            t2_from.py_func(np.array(s), PRIOR0, np.array(x[:p]), lower, ok, w) < t2
        )
        if returning:
            wanted = 0.0
        half = 1.0 + (prm[P_LIMIT] - 1.0) / 2.0
        still = s[S_SCORE] > half or (sustain and s[S_SUSTAINED] > half)
        new, s[S_PEND], s[S_QUIET] = hold_step.py_func(
            code, wanted, still, t, s[S_PEND], s[S_QUIET], prm[P_HOLD], prm[P_CLEAR]
        )
        if new != 0.0 and code == 0.0:
            s[S_RAISED] = t
        if new != 0.0 and t - s[S_RAISED] >= prm[P_REBASE]:
            if math.isnan(s[S_PRIOR_T]) or s[S_RAISED] - s[S_PRIOR_T] > 2.0 * prm[P_REBASE]:
                s[PRIOR0 : PRIOR0 + p] = s[MEAN0 : MEAN0 + p]
            s[MEAN0 : MEAN0 + p] = s[FAST0 : FAST0 + p]
            s[SUS0 : SUS0 + p] = [0.0] * p
            s[S_SCORE], s[S_PRIOR_T] = 1.0, t
            new, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
        s[S_CODE] = new
        if new == 0.0:
            for j in range(p):
                bound = CLIP * math.sqrt(s[VAR0 + j]) if n >= MIN_BASELINE_N else math.inf
                diff = clip.py_func(x[j] - s[MEAN0 + j], bound)
                s[MEAN0 + j] += a_s * diff
                s[VAR0 + j] = (1.0 - a_s) * (s[VAR0 + j] + a_s * diff * diff)
            for r in range(p):
                for c in range(r + 1):
                    zr, zc = clip.py_func(z[r], CLIP), clip.py_func(z[c], CLIP)
                    s[CO0 + r * p + c] = (1.0 - a_s) * s[CO0 + r * p + c] + a_s * zr * zc
                    if sustain:
                        m = s[SUS0 + r] * s[SUS0 + c]
                        s[SCO0 + r * p + c] = (1.0 - a_s) * s[SCO0 + r * p + c] + a_s * m
        s[S_N] = n + 1.0
        return [(int(old), int(new))] if new != old else []


def adaptive_params(rule: MultivariateRule) -> list[float]:
    """The parameter row of an adaptive ``[[multivariate]]`` detector."""
    p = [0.0] * N_PARAMS
    p[P_DIMS] = len(rule.channels)
    p[P_BASE_S], p[P_FAST_S], p[P_WARM_S] = rule.baseline_s, rule.fast_s, rule.warmup_s
    p[P_LIMIT], p[P_HOLD] = rule.score_limit, rule.hold_s
    p[P_CLEAR], p[P_REBASE], p[P_SUSTAIN] = rule.clear_s, rule.rebaseline_s, rule.sustain_s
    return p


class AdaptiveKind(StateRows):
    """Every ``[[multivariate]]`` block with ``method = "adaptive"`` (the default)."""

    facet = FACET
    code_at, raised_at, seen_at = S_CODE, S_RAISED, S_TLAST
    reports_value = False

    def __init__(self, rules: Sequence[MultivariateRule]) -> None:
        served = [rule for rule in rules if rule.method == "adaptive"]
        self.subjects: tuple[Subject, ...] = tuple(
            _adaptive_subject(multivariate_subject(rule)) for rule in served
        )
        self.params = np.array([adaptive_params(r) for r in served], dtype=np.float64).reshape(
            len(served), N_PARAMS
        )
        self.state = np.array([initial_state() for _ in served], dtype=np.float64).reshape(len(served), WIDTH)
        self._index: dict[tuple[str, str], int] = {}
        self.channels = np.zeros((len(served), MAX_DIMS), dtype=np.int32)
        self._by_device: dict[str, list[int]] = {}
        for d, rule in enumerate(served):
            self._by_device.setdefault(rule.device, []).append(d)
            for j, channel in enumerate(rule.channels):
                self.channels[d, j] = self._index.setdefault((rule.device, channel), len(self._index))
        self.latest = np.full(len(self._index), math.nan)
        self._routes: dict[tuple[str, tuple[str, ...]], npt.NDArray[np.intp]] = {}

    def evaluate(
        self,
        device: str,
        channels: tuple[str, ...],
        values: npt.NDArray[np.float64],
        ts: npt.NDArray[np.float64],
    ) -> list[KindEvent]:
        detectors = self._by_device.get(device)
        if not detectors:
            return []
        at = self._routes.get((device, channels))
        if at is None:
            at = np.array([self._index.get((device, ch), -1) for ch in channels], dtype=np.intp)
            self._routes[(device, channels)] = at
        ev = np.empty((len(detectors) * len(channels), 4), dtype=np.int64)
        chosen = np.array(detectors, np.int32)
        n = adaptive_step(at, values, ts, self.latest, chosen, self.channels, self.params, self.state, ev)
        return [KindEvent(k, d, old, new) for k, d, old, new in ev[:n].tolist()]

    def describe(self, subject: int, code: int) -> Description:
        return Description("anomaly", "", None, "adaptive_t2", float(self.params[subject, P_LIMIT]))

    def code_of(self, direction: str, condition: str) -> int:
        return 1

    def warm_up(self) -> None:
        ev = np.zeros((0, 4), dtype=np.int64)
        f0 = np.zeros(0)
        adaptive_step(
            np.zeros(0, np.intp),
            f0,
            f0,
            f0,
            np.zeros(0, np.int32),
            np.zeros((0, MAX_DIMS), np.int32),
            np.zeros((0, N_PARAMS)),
            np.zeros((0, WIDTH)),
            ev,
        )


def _adaptive_subject(base: Subject) -> Subject:
    return Subject(
        key=base.key,
        fingerprint=base.fingerprint,
        device=base.device,
        channel=base.channel,
        category=base.category,
        severity="normal",
        fault_severity="normal",
        hysteresis=0.0,
        hold_s=0.0,
        label=base.label.replace("Hotelling T²", "adaptive T²"),
    )
