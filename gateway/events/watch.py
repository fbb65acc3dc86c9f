"""What the event layer remembers of every rule's channel, as arrays per rule slot.

Per batch (never per reading) it records, for each rule on the batch's
channels: the last good reading, since when the channel has been watched
without a gap, when it was last beyond its limit, a short ring of recent
values (the evidence for `verify`), and the peak of an open alarm. The
detection engine decides raise and clear; this is what the lifecycle needs
around them: new peaks (`updated`) and whether a cleared condition stayed
cleared (`verify`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from contracts.readings import Quality, ReadingBatch
from gateway.config.rules import ThresholdRule
from gateway.detect.layout import rule_columns


@dataclass(frozen=True, slots=True)
class _Route:
    slots: npt.NDArray[np.intp]
    columns: npt.NDArray[np.intp]


class ChannelWatch:
    """State per rule slot; ``update`` is called with every batch."""

    def __init__(self, rules: Sequence[ThresholdRule], *, samples: int, max_gap_s: float) -> None:
        n = len(rules)
        self.rules = tuple(rules)
        self.max_gap_s = max_gap_s
        self.high = np.array([math.inf if r.high is None else r.high for r in rules], dtype=np.float64)
        self.low = np.array([-math.inf if r.low is None else r.low for r in rules], dtype=np.float64)
        self.last_value = np.full(n, math.nan)
        self.last_seen = np.full(n, -math.inf)
        self.watched_since = np.full(n, math.inf)
        self.last_beyond = np.full(n, -math.inf)
        self.ring_value = np.full((n, samples), math.nan)
        self.ring_ts = np.full((n, samples), math.nan)
        self.ring_next = np.zeros(n, dtype=np.intp)
        # Open alarms: +1 high, -1 low, 0 none; peaks are kept multiplied by the sign.
        self.sign = np.zeros(n, dtype=np.float64)
        self.peak = np.full(n, -math.inf)
        self.published_peak = np.full(n, -math.inf)
        self.step = np.zeros(n, dtype=np.float64)
        self._by_channel: dict[tuple[str, str], list[int]] = {}
        for i, rule in enumerate(rules):
            self._by_channel.setdefault((rule.device, rule.channel), []).append(i)
        self._routes: dict[tuple[str, tuple[str, ...]], _Route] = {}

    def update(self, batch: ReadingBatch) -> list[int]:
        """Record one batch; return the open slots whose peak moved a whole step."""
        route = self._route(batch.device, batch.channels)
        if route.slots.size == 0:
            return []
        values = batch.values[route.columns]
        good = ~np.isnan(values) & (batch.quality[route.columns] == Quality.OK)
        if not good.all():
            slots, values, ts = route.slots[good], values[good], batch.ts[route.columns][good]
        else:
            slots, ts = route.slots, batch.ts[route.columns]
        if slots.size == 0:
            return []
        gap = ts - self.last_seen[slots] > self.max_gap_s
        self.watched_since[slots[gap]] = ts[gap]
        self.last_seen[slots] = ts
        self.last_value[slots] = values
        beyond = (values > self.high[slots]) | (values < self.low[slots])
        self.last_beyond[slots[beyond]] = ts[beyond]
        at = self.ring_next[slots]
        self.ring_value[slots, at] = values
        self.ring_ts[slots, at] = ts
        self.ring_next[slots] = (at + 1) % self.ring_value.shape[1]
        sign = self.sign[slots]
        if not sign.any():
            return []
        signed = values * sign
        self.peak[slots] = np.where(sign != 0, np.maximum(self.peak[slots], signed), self.peak[slots])
        moved = (sign != 0) & (signed >= self.published_peak[slots] + self.step[slots])
        return [int(s) for s in slots[moved]]

    def open(self, slot: int, direction: str, limit: float, value: float, step: float) -> None:
        """An alarm opened (or was restored) on ``slot`` at ``value``."""
        sign = 1.0 if direction == "high" else -1.0
        self.sign[slot] = sign
        self.peak[slot] = self.published_peak[slot] = value * sign
        self.step[slot] = max(step * abs(limit), 1e-9)

    def peak_value(self, slot: int) -> float:
        return float(self.peak[slot] * self.sign[slot])

    def mark_published(self, slot: int) -> None:
        self.published_peak[slot] = self.peak[slot]

    def close(self, slot: int) -> None:
        self.sign[slot] = 0.0

    def recent(self, slot: int) -> list[tuple[float, float]]:
        """The remembered readings of ``slot``, oldest first, as (ts, value)."""
        at = int(self.ring_next[slot])
        order = np.r_[at : self.ring_ts.shape[1], 0:at]
        ts, values = self.ring_ts[slot, order], self.ring_value[slot, order]
        keep = ~np.isnan(ts)
        return list(zip(ts[keep].tolist(), values[keep].tolist(), strict=True))

    def _route(self, device: str, channels: tuple[str, ...]) -> _Route:
        key = (device, channels)
        route = self._routes.get(key)
        if route is None:
            slots, columns = rule_columns(self._by_channel, device, channels)
            route = _Route(np.array(slots, dtype=np.intp), np.array(columns, dtype=np.intp))
            self._routes[key] = route
        return route
