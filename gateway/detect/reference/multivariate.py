"""The twin of :func:`gateway.detect.multivariate.hotelling_step`: one detector."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gateway.detect.codes import F_MULTIVARIATE


@dataclass
class HotellingTwin:
    """Learns mean and covariance over ``learn_n`` samples, then flags ``T² > limit``."""

    dims: int
    learn_n: float
    limit: float
    ridge: float = 0.01
    count: float = 0.0
    mean: list[float] = field(default_factory=list)
    comoment: list[list[float]] = field(default_factory=list)
    inverse: list[list[float]] | None = None
    active: int = 0

    def __post_init__(self) -> None:
        self.mean = [0.0] * self.dims
        self.comoment = [[0.0] * self.dims for _ in range(self.dims)]

    def step(self, x: list[float]) -> list[tuple[int, int, int]]:
        """Feed one sample of every channel; return ``(facet, old, new)`` changes."""
        if any(math.isnan(v) for v in x):
            return []
        p = self.dims
        if self.count < self.learn_n:
            self.count += 1.0
            delta = [x[j] - self.mean[j] for j in range(p)]
            for j in range(p):
                self.mean[j] += delta[j] / self.count
            for r in range(p):
                for c in range(p):
                    self.comoment[r][c] += delta[r] * (x[c] - self.mean[c])
            if self.count >= self.learn_n:
                self.inverse = self._baseline_inverse()
            return []
        delta = [x[j] - self.mean[j] for j in range(p)]
        t2 = 0.0
        for r in range(p):
            row = 0.0
            for c in range(p):
                row += (self.inverse[r][c] if self.inverse else math.nan) * delta[c]
            t2 += delta[r] * row
        new = 1 if t2 > self.limit else 0
        if new == self.active:
            return []
        old, self.active = self.active, new
        return [(F_MULTIVARIATE, old, new)]

    def _baseline_inverse(self) -> list[list[float]] | None:
        p, n = self.dims, self.count
        a = [[self.comoment[r][c] / (n - 1.0) for c in range(p)] for r in range(p)]
        for j in range(p):
            a[j][j] = a[j][j] * (1.0 + self.ridge) + 1e-12
        out = [[1.0 if r == c else 0.0 for c in range(p)] for r in range(p)]
        for col in range(p):
            pivot = col
            for r in range(col + 1, p):
                if abs(a[r][col]) > abs(a[pivot][col]):
                    pivot = r
            if not abs(a[pivot][col]) > 0.0:
                return None
            a[col], a[pivot] = a[pivot], a[col]
            out[col], out[pivot] = out[pivot], out[col]
            scale = a[col][col]
            a[col] = [v / scale for v in a[col]]
            out[col] = [v / scale for v in out[col]]
            for r in range(p):
                if r != col:
                    f = a[r][col]
                    a[r] = [a[r][c] - f * a[col][c] for c in range(p)]
                    out[r] = [out[r][c] - f * out[col][c] for c in range(p)]
        return out
