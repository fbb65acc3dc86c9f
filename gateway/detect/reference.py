"""The pure-Python twin of the detection kernels, written for reading, not speed.

Tests feed the same random streams to both and require identical output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.detect.threshold import CLEARED, HIGH, LOW, NO_CHANGE, NORMAL, RAISED_HIGH, RAISED_LOW


@dataclass
class ThresholdChannel:
    """One rule slot: limits plus the state the kernel keeps in arrays."""

    high: float = math.nan
    low: float = math.nan
    hysteresis: float = 0.0
    hold_s: float = 0.0
    state: int = NORMAL
    pending_kind: int = NORMAL
    pending_since: float = 0.0

    def step(self, value: float, ts: float) -> int:
        """Feed one reading; return the transition it caused."""
        if math.isnan(value):
            self.pending_kind = NORMAL
            return NO_CHANGE
        if self.state == HIGH:
            return self._clear_if(value <= self.high - self.hysteresis)
        if self.state == LOW:
            return self._clear_if(value >= self.low + self.hysteresis)
        condition = HIGH if value > self.high else LOW if value < self.low else NORMAL
        if condition == NORMAL:
            self.pending_kind = NORMAL
            return NO_CHANGE
        clock_went_back = ts < self.pending_since
        if self.pending_kind != condition or clock_went_back:
            self.pending_kind, self.pending_since = condition, ts
        if ts - self.pending_since < self.hold_s:
            return NO_CHANGE
        self.state, self.pending_kind = condition, NORMAL
        return RAISED_HIGH if condition == HIGH else RAISED_LOW

    def _clear_if(self, back_to_normal: bool) -> int:
        if not back_to_normal:
            return NO_CHANGE
        self.state = NORMAL
        return CLEARED
