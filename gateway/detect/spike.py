"""Spike detector kind: one odd reading (EWMA z-score, Hampel / MAD outlier) or CUSUM drift, per channel.

Per channel an exponentially weighted mean and variance (``ewma_alpha``; a
plain running mean for the first ``warmup`` samples) standardise each reading
into a z-score. Judged after ``warmup`` samples:

- **spike** (``ewma_spike``): ``|z|`` above ``z_limit``; the reading then
  moves the mean as if it were at the limit, so one wild sample does not
  widen the variance that judges the next;
- **outlier** (``hampel_outlier``): farther than ``hampel_k`` robust sd
  (1.4826 MAD) from the median of the last ``HAMPEL_W`` readings; a MAD of 0
  (more than half the window one value, as quantised readings often are) is
  floored at the smallest step the window shows;
- **drift** (``cusum_drift``): a two-sided CUSUM of the z-scores (each
  clipped at 4, allowance ``cusum_k``) above ``cusum_h``; the sums restart
  after firing. Slow shifts are better left to the ``shift`` and
  ``changepoint`` kinds; ``cusum_h`` is off unless set.

A raised code is held until ``clear_s`` without any of them (a burst of
spikes is one event); a stronger reason (spike over outlier over drift)
replaces a weaker one while raised. The facet is ``anomaly`` and the subject
keeps its rule's key, so an open anomaly event keeps its name; the saved state
(the EWMA, the sums and the Hampel window) has a fingerprint of its own. NaN
readings, and readings the rule's health check found faulty, are skipped.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from gateway.config.rules import ThresholdRule
from gateway.detect.jit import kernel, njit
from gateway.detect.kind import Description
from gateway.detect.layout import Subject, rule_subject
from gateway.detect.perchannel import ChannelKind

FACET = "anomaly"
SPIKE, OUTLIER, DRIFT = 1, 2, 3
NAMES = ("", "ewma_spike", "hampel_outlier", "cusum_drift")

# Hampel window length (odd, so the median is one element): 11 s at 1 Hz, long enough for a steady
# MAD; a MAD of 0 on quantised readings is floored at their resolution.
HAMPEL_W = 11
HAMPEL_K = 4.0  # the outlier limit when ``hampel`` is named in ``method`` and ``hampel_k`` is not set
Z_CLIP = 4.0  # one wild sample moves CUSUM by at most this many standard deviations
MAD_TO_SIGMA = 1.4826  # MAD of normal data times this estimates its standard deviation

P_ALPHA, P_Z, P_CUSUM_K, P_CUSUM_H, P_HAMPEL_K, P_WARMUP, P_CLEAR = range(7)
N_PARAMS = 7
S_CODE, S_N, S_MEAN, S_VAR, S_UP, S_DOWN, S_H_N, S_H_POS, S_QUIET, S_RAISED, S_SEEN = range(11)
S_RING = 11  # the last HAMPEL_W readings, oldest overwritten first
S_SORTED = S_RING + HAMPEL_W  # the same readings in order
N_STATE = S_SORTED + HAMPEL_W


def initial_state() -> list[float]:
    """The state of a channel that has seen nothing."""
    row = [0.0] * N_STATE
    for column in (S_QUIET, S_RAISED, S_SEEN):
        row[column] = math.nan
    return row


@njit()
def median_mad(s: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Median and MAD of a full, sorted window (odd length), in O(window)."""
    m = HAMPEL_W // 2
    med = s[S_SORTED + m]
    below = 0
    above = 0
    mad = 0.0
    for _ in range(m):  # the 0 of the median itself is the smallest deviation
        dl = med - s[S_SORTED + m - 1 - below] if below < m else math.inf
        dr = s[S_SORTED + m + 1 + above] - med if above < m else math.inf
        if dl <= dr:
            mad = dl
            below += 1
        else:
            mad = dr
            above += 1
    return med, mad


@njit()
def resolution_step(s: npt.NDArray[np.float64]) -> float:
    """The smallest step between the window's values (0: one value), the resolution it shows."""
    step = math.inf
    for j in range(1, HAMPEL_W):
        gap = s[S_SORTED + j] - s[S_SORTED + j - 1]
        if 0.0 < gap < step:
            step = gap
    return step if step < math.inf else 0.0


@njit()
def window_insert(s: npt.NDArray[np.float64], v: float) -> None:
    """Push ``v`` into the ring, replacing the oldest reading; the sorted copy stays sorted."""
    n = int(s[S_H_N])
    pos = int(s[S_H_POS])
    base = S_SORTED
    if n == HAMPEL_W:  # replace the oldest value in place, sliding it to where v belongs
        old = s[S_RING + pos]
        j = 0
        while s[base + j] != old:
            j += 1
        if v >= old:
            while j + 1 < n and s[base + j + 1] < v:
                s[base + j] = s[base + j + 1]
                j += 1
        else:
            while j > 0 and s[base + j - 1] > v:
                s[base + j] = s[base + j - 1]
                j -= 1
        s[base + j] = v
    else:
        j = n
        while j > 0 and s[base + j - 1] > v:
            s[base + j] = s[base + j - 1]
            j -= 1
        s[base + j] = v
        n += 1
    s[S_RING + pos] = v
    s[S_H_POS] = (pos + 1) % HAMPEL_W
    s[S_H_N] = n


@njit()
def spike_update(p: npt.NDArray[np.float64], s: npt.NDArray[np.float64], v: float, t: float) -> float:
    """Advance one channel's state ``s`` (parameters ``p``) by reading ``v`` at ``t``; return old code."""
    old = float(s[S_CODE])
    if math.isnan(v):
        return old
    s[S_SEEN] = t
    n = s[S_N]
    mean = s[S_MEAN]
    sd = math.sqrt(s[S_VAR])
    z = (v - mean) / sd if sd > 0 else 0.0
    warm = n >= p[P_WARMUP]
    z_limit = p[P_Z]
    spike = warm and abs(z) > z_limit
    outlier = False
    if warm and s[S_H_N] >= HAMPEL_W and p[P_HAMPEL_K] > 0:
        med, mad = median_mad(s)
        if mad == 0.0 and v != med:
            mad = resolution_step(s)
        outlier = mad > 0 and abs(v - med) > p[P_HAMPEL_K] * MAD_TO_SIGMA * mad
    drift = False
    if warm:
        zc = min(max(z, -Z_CLIP), Z_CLIP)
        s[S_UP] = max(0.0, s[S_UP] + zc - p[P_CUSUM_K])
        s[S_DOWN] = max(0.0, s[S_DOWN] - zc - p[P_CUSUM_K])
        drift = s[S_UP] > p[P_CUSUM_H] or s[S_DOWN] > p[P_CUSUM_H]
        if drift:
            s[S_UP] = 0.0
            s[S_DOWN] = 0.0
    code = 0.0
    if spike:
        code = SPIKE
    elif outlier:
        code = OUTLIER
    elif drift:
        code = DRIFT
    if code != 0.0 or old == 0.0:
        s[S_QUIET] = math.nan
    elif math.isnan(s[S_QUIET]) or t < s[S_QUIET]:
        s[S_QUIET] = t  # quiet since: a raised code clears after P_CLEAR of it
    if code == 0.0 and old != 0.0 and t - s[S_QUIET] < p[P_CLEAR]:
        code = old
    if code != old:
        s[S_CODE] = code
        s[S_QUIET] = math.nan
        if old == 0.0:
            s[S_RAISED] = t
    alpha = p[P_ALPHA]
    if n < p[P_WARMUP]:
        alpha = max(alpha, 1.0 / (n + 1.0))
    x = v
    if spike:
        x = mean + (z_limit if z > 0 else -z_limit) * sd
    diff = x - mean
    s[S_MEAN] = mean + alpha * diff
    s[S_VAR] = (1.0 - alpha) * (s[S_VAR] + alpha * diff * diff)
    s[S_N] = n + 1.0
    if p[P_HAMPEL_K] > 0:
        window_insert(s, v)
    return old


@kernel
def spike_step(
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
        old = spike_update(params[param_row[i]], state[i], value[k], ts[k])
        if state[i, S_CODE] != old:
            ev[n_ev, 0], ev[n_ev, 1], ev[n_ev, 2], ev[n_ev, 3] = k, i, int(old), int(state[i, S_CODE])
            n_ev += 1
    return n_ev


@dataclass
class SpikeTwin:
    """The pure-Python twin of one channel of :func:`spike_step`, written for reading."""

    params: list[float]
    code: int = 0
    samples: float = 0.0
    mean: float = 0.0
    var: float = 0.0
    cusum_pos: float = 0.0
    cusum_neg: float = 0.0
    quiet_since: float = math.nan
    recent: list[float] = field(default_factory=list)  # the last HAMPEL_W readings, oldest first

    def step(self, v: float, t: float) -> list[tuple[int, int]]:
        """Feed one reading; return ``(old, new)`` when the code changed."""
        if math.isnan(v):
            return []
        p = self.params
        sd = math.sqrt(self.var)
        z = (v - self.mean) / sd if sd > 0 else 0.0
        warm = self.samples >= p[P_WARMUP]
        spike = warm and abs(z) > p[P_Z]
        outlier = False
        if warm and len(self.recent) >= HAMPEL_W and p[P_HAMPEL_K] > 0:
            ordered = sorted(self.recent)
            med = ordered[HAMPEL_W // 2]
            mad = sorted(abs(x - med) for x in ordered)[HAMPEL_W // 2]
            if mad == 0.0:  # floored at the resolution the window shows
                mad = min((b - a for a, b in itertools.pairwise(ordered) if b > a), default=0.0)
            outlier = mad > 0 and abs(v - med) > p[P_HAMPEL_K] * MAD_TO_SIGMA * mad
        drift = False
        if warm:
            zc = min(max(z, -Z_CLIP), Z_CLIP)
            self.cusum_pos = max(0.0, self.cusum_pos + zc - p[P_CUSUM_K])
            self.cusum_neg = max(0.0, self.cusum_neg - zc - p[P_CUSUM_K])
            drift = self.cusum_pos > p[P_CUSUM_H] or self.cusum_neg > p[P_CUSUM_H]
            if drift:
                self.cusum_pos = self.cusum_neg = 0.0
        code = SPIKE if spike else OUTLIER if outlier else DRIFT if drift else 0
        if code or not self.code:
            self.quiet_since = math.nan
        elif math.isnan(self.quiet_since) or t < self.quiet_since:
            self.quiet_since = t
        if not code and self.code and t - self.quiet_since < p[P_CLEAR]:
            code = self.code  # held until quiet for clear_s
        changes = []
        if code != self.code:
            changes.append((self.code, code))
            self.code = code
            self.quiet_since = math.nan
        alpha = p[P_ALPHA]
        if self.samples < p[P_WARMUP]:
            alpha = max(alpha, 1.0 / (self.samples + 1.0))  # a plain running mean while learning
        x = self.mean + (p[P_Z] if z > 0 else -p[P_Z]) * sd if spike else v
        diff = x - self.mean
        self.mean += alpha * diff
        self.var = (1.0 - alpha) * (self.var + alpha * diff * diff)
        self.samples += 1.0
        if p[P_HAMPEL_K] > 0:
            self.recent = [*self.recent[-(HAMPEL_W - 1) :], v]
        return changes


def spike_params(rule: ThresholdRule) -> list[float] | None:
    """The parameter row of a rule's spike detector, or None where the rule asks for none.

    ``spike`` in ``method`` switches the z-score check on, ``hampel`` (or a
    ``hampel_k``) the outlier check, a ``cusum_h`` the drift check.
    """
    anomaly = rule.anomaly
    if anomaly is None or not anomaly.enabled:
        return None
    z_limit = anomaly.z_limit if "spike" in anomaly.method else None
    hampel_k = anomaly.hampel_k
    if hampel_k is None and "hampel" in anomaly.method:
        hampel_k = HAMPEL_K
    if z_limit is None and hampel_k is None and anomaly.cusum_h is None:
        return None
    p = [math.nan] * N_PARAMS
    p[P_ALPHA], p[P_CUSUM_K], p[P_WARMUP], p[P_CLEAR] = (
        anomaly.ewma_alpha,
        anomaly.cusum_k,
        float(anomaly.warmup),
        anomaly.clear_s,
    )
    for column, limit in ((P_Z, z_limit), (P_HAMPEL_K, hampel_k), (P_CUSUM_H, anomaly.cusum_h)):
        if limit is not None:
            p[column] = float(limit)
    return p


class SpikeKind(ChannelKind):
    """Every ``[[rules]]`` entry with a spike, Hampel or CUSUM check switched on."""

    facet, label, n_params = FACET, "anomaly", N_PARAMS
    code_at, raised_at, seen_at = S_CODE, S_RAISED, S_SEEN
    step = spike_step
    params_of = staticmethod(spike_params)
    initial_state = staticmethod(initial_state)

    def subject_of(self, rule: ThresholdRule) -> Subject:
        # The rule's own key, label and fields: an anomaly event keeps the name and payload it had when
        # the rule's kernel ran the check; the saved state is kept apart from the rule's
        # (gateway.detect.persist takes it from a rule's row saved then).
        base = rule_subject(rule)
        own = super().subject_of(rule)
        return replace(
            own,
            key=base.key,
            fingerprint=f"{base.fingerprint}/{FACET}",
            label=base.label,
            hysteresis=base.hysteresis,
            hold_s=base.hold_s,
        )

    def describe(self, subject: int, code: int) -> Description:
        return Description("anomaly", "", None, NAMES[code], None)

    def code_of(self, direction: str, condition: str) -> int:
        return NAMES.index(condition) if condition in NAMES[1:] else SPIKE
