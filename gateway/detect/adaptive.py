"""Adaptive multivariate detector kind: channels of one device that stop behaving as they do together.

Each channel is standardised by its own exponentially weighted baseline mean
and variance (time constant ``baseline_s``, at least 64 samples), so units do
not matter: a vibration in g weighs as much as a pressure in bar. The
correlation of the standardised values is tracked with the same forgetting
and shrunk towards the identity by ``p / (p + n)`` (``n`` the samples behind
it, at most the baseline's effective length), which keeps it invertible from
the first minutes. Every complete row scores ``T² = zᵀ R⁻¹ z``; the recent
mean of ``T²/p`` (``fast_s``, at least 8 rows; about 1 when all is as usual)
above ``score_limit`` is an anomaly, raised once held for ``hold_s``, held
while above half-way, cleared after ``clear_s`` quiet. The baseline is frozen
while raised; after ``rebaseline_s`` the current row is taken as the new
normal and the facet clears.

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
from gateway.detect.multivariate import MAX_DIMS, invert
from gateway.detect.pieces import CLIP, MIN_BASELINE_N, clip, hold_step, rates

FACET = "multivariate"

P_DIMS, P_BASE_S, P_FAST_S, P_WARM_S, P_LIMIT, P_HOLD, P_CLEAR, P_REBASE = range(8)
N_PARAMS = 8
S_N, S_T0, S_TLAST, S_SCORE, S_CODE, S_PEND, S_QUIET, S_RAISED, S_PRIOR_T = range(9)
N_STATE = 9
# Per detector, after the scalars: MAX_DIMS baseline means, variances, recent means and the
# means before the last re-baselining, then MAX_DIMS² co-moments.
MEAN0 = N_STATE
VAR0 = MEAN0 + MAX_DIMS
FAST0 = VAR0 + MAX_DIMS
PRIOR0 = FAST0 + MAX_DIMS
CO0 = PRIOR0 + MAX_DIMS
WIDTH = CO0 + MAX_DIMS * MAX_DIMS


def initial_state() -> list[float]:
    """The state of a detector that has seen nothing."""
    row = [0.0] * WIDTH
    for column in (S_T0, S_TLAST, S_PEND, S_QUIET, S_RAISED, S_PRIOR_T):
        row[column] = math.nan
    return row


@njit()
def adaptive_update(
    prm: npt.NDArray[np.float64],
    s: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    t: float,
    z: npt.NDArray[np.float64],
    work: npt.NDArray[np.float64],
    inv: npt.NDArray[np.float64],
) -> float:
    """Score (and learn from) one complete row ``x`` at ``t``; return the old code."""
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
    near_prior, near_now = 0.0, 0.0
    for j in range(p):
        s[FAST0 + j] += a_f * (x[j] - s[FAST0 + j])
        var = s[VAR0 + j]
        if var > 0.0:
            near_prior += (s[FAST0 + j] - s[PRIOR0 + j]) ** 2 / var
            near_now += (s[FAST0 + j] - s[MEAN0 + j]) ** 2 / var
    if not math.isnan(s[S_PRIOR_T]):  # re-baselined: back nearer the old point is the old normal
        if t - s[S_PRIOR_T] > prm[P_BASE_S] or t < s[S_PRIOR_T]:
            s[S_PRIOR_T] = math.nan
        elif near_prior < near_now:
            for j in range(p):
                s[MEAN0 + j] = s[PRIOR0 + j]
            s[S_PRIOR_T], s[S_SCORE] = math.nan, 1.0
            code, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
    for j in range(p):
        var = s[VAR0 + j]
        z[j] = (x[j] - s[MEAN0 + j]) / math.sqrt(var) if var > 0.0 else 0.0
    gamma = p / (p + min(n, 2.0 / a_s - 1.0))
    for r in range(p):
        for c in range(p):
            crr, ccc = s[CO0 + r * p + r], s[CO0 + c * p + c]
            corr = s[CO0 + r * p + c] / math.sqrt(crr * ccc) if crr > 0.0 and ccc > 0.0 else 0.0
            if r == c:
                corr = 1.0
            work[r * p + c] = (1.0 - gamma) * corr + (gamma if r == c else 0.0)
    t2 = 0.0
    if invert(work, p, inv):
        for r in range(p):
            row = 0.0
            for c in range(p):
                row += inv[r * p + c] * z[c]
            t2 += z[r] * row
    else:
        for j in range(p):
            t2 += z[j] * z[j]
    s[S_SCORE] += a_f * (t2 / p - s[S_SCORE])
    wanted = 0.0
    if n >= MIN_BASELINE_N and t - s[S_T0] >= prm[P_WARM_S] and s[S_SCORE] > prm[P_LIMIT]:
        wanted = 1.0
    still = s[S_SCORE] > 1.0 + (prm[P_LIMIT] - 1.0) / 2.0
    new, s[S_PEND], s[S_QUIET] = hold_step(
        code, wanted, still, t, s[S_PEND], s[S_QUIET], prm[P_HOLD], prm[P_CLEAR]
    )
    if new != 0.0 and code == 0.0:
        s[S_RAISED] = t
    if new != 0.0 and t - s[S_RAISED] >= prm[P_REBASE]:
        for j in range(p):  # the new operating point is the baseline now
            s[PRIOR0 + j], s[MEAN0 + j] = s[MEAN0 + j], s[FAST0 + j]
        s[S_SCORE], s[S_PRIOR_T] = 1.0, t
        new, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
    s[S_CODE] = new
    if new == 0.0:
        for j in range(p):
            bound = CLIP * math.sqrt(s[VAR0 + j]) if n >= MIN_BASELINE_N else math.inf
            diff = clip(x[j] - s[MEAN0 + j], bound)
            s[MEAN0 + j] += a_s * diff
            s[VAR0 + j] = (1.0 - a_s) * (s[VAR0 + j] + a_s * diff * diff)
        for r in range(p):
            for c in range(p):
                zr, zc = clip(z[r], CLIP), clip(z[c], CLIP)
                s[CO0 + r * p + c] = (1.0 - a_s) * s[CO0 + r * p + c] + a_s * zr * zc
    s[S_N] = n + 1.0
    return old


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
    work = np.empty(MAX_DIMS * MAX_DIMS)
    inv = np.empty(MAX_DIMS * MAX_DIMS)
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
            old = adaptive_update(params[d], state[d], x, ts[k], z, work, inv)
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
        near_prior, near_now = 0.0, 0.0
        for j in range(p):
            s[FAST0 + j] += a_f * (x[j] - s[FAST0 + j])
            if s[VAR0 + j] > 0.0:
                near_prior += (s[FAST0 + j] - s[PRIOR0 + j]) ** 2 / s[VAR0 + j]
                near_now += (s[FAST0 + j] - s[MEAN0 + j]) ** 2 / s[VAR0 + j]
        if not math.isnan(s[S_PRIOR_T]):
            if t - s[S_PRIOR_T] > prm[P_BASE_S] or t < s[S_PRIOR_T]:
                s[S_PRIOR_T] = math.nan
            elif near_prior < near_now:
                s[MEAN0 : MEAN0 + p] = s[PRIOR0 : PRIOR0 + p]
                s[S_PRIOR_T], s[S_SCORE] = math.nan, 1.0
                code, s[S_PEND], s[S_QUIET] = 0.0, math.nan, math.nan
        var = s[VAR0 : VAR0 + p]
        z = [(x[j] - s[MEAN0 + j]) / math.sqrt(var[j]) if var[j] > 0.0 else 0.0 for j in range(p)]
        gamma = p / (p + min(n, 2.0 / a_s - 1.0))
        co = s[CO0 : CO0 + p * p]
        work = np.zeros(MAX_DIMS * MAX_DIMS)
        for r in range(p):
            for c in range(p):
                crr, ccc = co[r * p + r], co[c * p + c]
                corr = co[r * p + c] / math.sqrt(crr * ccc) if crr > 0.0 and ccc > 0.0 else 0.0
                corr = 1.0 if r == c else corr
                work[r * p + c] = (1.0 - gamma) * corr + (gamma if r == c else 0.0)
        inv = np.zeros(MAX_DIMS * MAX_DIMS)
        if invert.py_func(work, p, inv):
            t2 = 0.0
            for r in range(p):
                row = 0.0
                for c in range(p):
                    row += float(inv[r * p + c]) * z[c]
                t2 += z[r] * row
        else:
            t2 = 0.0
            for j in range(p):
                t2 += z[j] * z[j]
        s[S_SCORE] += a_f * (t2 / p - s[S_SCORE])
        warm = n >= MIN_BASELINE_N and t - s[S_T0] >= prm[P_WARM_S]
        wanted = 1.0 if warm and s[S_SCORE] > prm[P_LIMIT] else 0.0
        still = s[S_SCORE] > 1.0 + (prm[P_LIMIT] - 1.0) / 2.0
        new, s[S_PEND], s[S_QUIET] = hold_step.py_func(
            code, wanted, still, t, s[S_PEND], s[S_QUIET], prm[P_HOLD], prm[P_CLEAR]
        )
        if new != 0.0 and code == 0.0:
            s[S_RAISED] = t
        if new != 0.0 and t - s[S_RAISED] >= prm[P_REBASE]:
            s[PRIOR0 : PRIOR0 + p] = s[MEAN0 : MEAN0 + p]
            s[MEAN0 : MEAN0 + p] = s[FAST0 : FAST0 + p]
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
                for c in range(p):
                    zr, zc = clip.py_func(z[r], CLIP), clip.py_func(z[c], CLIP)
                    s[CO0 + r * p + c] = (1.0 - a_s) * s[CO0 + r * p + c] + a_s * zr * zc
        s[S_N] = n + 1.0
        return [(int(old), int(new))] if new != old else []


def adaptive_params(rule: MultivariateRule) -> list[float]:
    """The parameter row of an adaptive ``[[multivariate]]`` detector."""
    p = [0.0] * N_PARAMS
    p[P_DIMS] = len(rule.channels)
    p[P_BASE_S], p[P_FAST_S], p[P_WARM_S] = rule.baseline_s, rule.fast_s, rule.warmup_s
    p[P_LIMIT], p[P_HOLD] = rule.score_limit, rule.hold_s
    p[P_CLEAR], p[P_REBASE] = rule.clear_s, rule.rebaseline_s
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
