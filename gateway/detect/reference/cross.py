"""The twin of :func:`gateway.detect.cross.cross_step`: one cross-channel rule."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.detect.codes import F_CROSS

Clause = tuple[str, int, str | float]  # channel, op (1: >, -1: <), other channel or constant


@dataclass
class CrossTwin:
    """All ``clauses`` true for ``hold_s`` raises; one false clears; unknown keeps the state."""

    clauses: list[Clause]
    hold_s: float = 0.0
    active: int = 0
    pending_since: float = math.nan

    def check(self, latest: Mapping[str, float], t: float) -> list[tuple[int, int, int]]:
        """Re-check against the latest values by channel; return ``(facet, old, new)`` changes."""
        verdicts = [self._holds(latest, clause) for clause in self.clauses]
        verdict = False if False in verdicts else None if None in verdicts else True
        if verdict is not True:
            self.pending_since = math.nan
            if verdict is False and self.active:
                self.active = 0
                return [(F_CROSS, 1, 0)]
            return []
        if self.active:
            return []
        if math.isnan(self.pending_since) or t < self.pending_since:
            self.pending_since = t
        if t - self.pending_since >= self.hold_s:
            self.active = 1
            return [(F_CROSS, 0, 1)]
        return []

    @staticmethod
    def _holds(latest: Mapping[str, float], clause: Clause) -> bool | None:
        channel, op, other = clause
        a = latest.get(channel, math.nan)
        b = latest.get(other, math.nan) if isinstance(other, str) else other
        if math.isnan(a) or math.isnan(b):
            return None
        return a > b if op > 0 else a < b
