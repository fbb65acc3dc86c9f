"""A streaming Hotelling T² detector per device, for relations between channels.

Each detector learns the mean vector and covariance of its channels over its
first ``learn_n`` complete samples (Welford's update, O(p²) per sample), then
freezes them as the baseline and inverts the covariance once (Gauss-Jordan
with partial pivoting; a small ridge keeps a near-constant channel from
making it singular). After that every complete sample ``x`` scores
``T² = (x - mean)ᵀ Σ⁻¹ (x - mean)``; above ``limit`` it is an anomaly, which
clears on the next sample at or under it. Samples with a NaN channel are
skipped. Arrays are sized for up to ``MAX_DIMS`` channels per detector.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from gateway.detect.codes import F_MULTIVARIATE
from gateway.detect.jit import kernel, njit

MAX_DIMS = 8


@njit()
def invert(a: npt.NDArray[np.float64], p: int, out: npt.NDArray[np.float64]) -> bool:
    """Write the inverse of the ``p``×``p`` matrix ``a`` (row-major, destroyed) to ``out``."""
    for r in range(p):
        for c in range(p):
            out[r * p + c] = 1.0 if r == c else 0.0
    for col in range(p):
        pivot = col
        for r in range(col + 1, p):
            if abs(a[r * p + col]) > abs(a[pivot * p + col]):
                pivot = r
        if not abs(a[pivot * p + col]) > 0.0:
            return False
        if pivot != col:
            for c in range(p):
                a[col * p + c], a[pivot * p + c] = a[pivot * p + c], a[col * p + c]
                out[col * p + c], out[pivot * p + c] = out[pivot * p + c], out[col * p + c]
        scale = a[col * p + col]
        for c in range(p):
            a[col * p + c] /= scale
            out[col * p + c] /= scale
        for r in range(p):
            if r != col:
                f = a[r * p + col]
                for c in range(p):
                    a[r * p + c] -= f * a[col * p + c]
                    out[r * p + c] -= f * out[col * p + c]
    return True


@njit()
def cholesky(a: npt.NDArray[np.float64], p: int) -> bool:
    """Factor the ``p``×``p`` symmetric matrix ``a`` (row-major) in place as ``L Lᵀ``; False: not positive.

    Only the lower triangle is read and written, a sixth of the work of an
    inverse; the diagonal holds ``1 / L[c, c]``, so applying it multiplies.
    """
    for c in range(p):
        d = a[c * p + c]
        for k in range(c):
            d -= a[c * p + k] * a[c * p + k]
        if not d > 0.0:
            return False
        d = 1.0 / math.sqrt(d)
        a[c * p + c] = d
        for r in range(c + 1, p):
            v = a[r * p + c]
            for k in range(c):
                v -= a[r * p + k] * a[c * p + k]
            a[r * p + c] = v * d
    return True


@njit()
def whitened_square(
    lower: npt.NDArray[np.float64], ok: bool, v: npt.NDArray[np.float64], p: int, w: npt.NDArray[np.float64]
) -> float:
    """``vᵀ A⁻¹ v`` for ``A = L Lᵀ`` factored by :func:`cholesky` (``v·v`` where that failed).

    ``w`` is scratch of ``p``; it may be ``v`` itself.
    """
    total = 0.0
    for r in range(p):
        u = v[r]
        if ok:
            for k in range(r):
                u -= lower[r * p + k] * w[k]
            u *= lower[r * p + r]
        w[r] = u
        total += u * u
    return total


@kernel
def hotelling_step(
    detectors: npt.NDArray[np.int32],
    latest: npt.NDArray[np.float64],
    channels: npt.NDArray[np.int32],
    dims: npt.NDArray[np.int32],
    learn_n: npt.NDArray[np.float64],
    limit: npt.NDArray[np.float64],
    ridge: npt.NDArray[np.float64],
    count: npt.NDArray[np.float64],
    mean: npt.NDArray[np.float64],
    comoment: npt.NDArray[np.float64],
    inverse: npt.NDArray[np.float64],
    active: npt.NDArray[np.int8],
    ev: npt.NDArray[np.int64],
) -> int:
    """Score (or learn from) the latest sample of every detector in ``detectors``.

    ``channels[d, j]`` indexes ``latest`` for dimension ``j`` of detector ``d``;
    ``mean[d]``, ``comoment[d]`` and ``inverse[d]`` hold its baseline. Changes
    go to ``ev`` rows ``(0, d, F_MULTIVARIATE, old, new)``; returns how many.
    """
    n_ev = 0
    x = np.empty(MAX_DIMS)
    delta = np.empty(MAX_DIMS)
    work = np.empty(MAX_DIMS * MAX_DIMS)
    for d in detectors:
        p = dims[d]
        complete = True
        for j in range(p):
            x[j] = latest[channels[d, j]]
            if math.isnan(x[j]):
                complete = False
        if not complete:
            continue
        m = mean[d]
        if count[d] < learn_n[d]:
            count[d] += 1.0
            for j in range(p):
                delta[j] = x[j] - m[j]
                m[j] += delta[j] / count[d]
            for r in range(p):
                for c in range(p):
                    comoment[d, r * p + c] += delta[r] * (x[c] - m[c])
            if count[d] >= learn_n[d]:
                for q in range(p * p):
                    work[q] = comoment[d, q] / (count[d] - 1.0)
                for j in range(p):  # relative to each channel's own variance: units do not matter
                    work[j * p + j] *= 1.0 + ridge[d]
                    work[j * p + j] += 1e-12
                if not invert(work, p, inverse[d]):
                    inverse[d, : p * p] = math.nan
            continue
        t2 = 0.0
        for j in range(p):
            delta[j] = x[j] - m[j]
        for r in range(p):
            row = 0.0
            for c in range(p):
                row += inverse[d, r * p + c] * delta[c]
            t2 += delta[r] * row
        new = 1 if t2 > limit[d] else 0
        if new != active[d]:
            ev[n_ev, 0], ev[n_ev, 1], ev[n_ev, 2], ev[n_ev, 3], ev[n_ev, 4] = (
                0,
                d,
                F_MULTIVARIATE,
                active[d],
                new,
            )
            n_ev += 1
            active[d] = new
    return n_ev
