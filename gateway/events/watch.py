"""What the event layer remembers of every rule's channel, as arrays per rule slot.

Per batch (one kernel call, :mod:`gateway.detect.recent`) it records, reading
by reading, for each rule on the batch's channels: the last good reading,
since when the channel has been watched without a gap, when it was last beyond
its limit, a short ring of recent values (the evidence for `verify`), and the
peak of an open alarm. The detection engine decides raise and clear; this is
what the lifecycle needs around them: new peaks (`updated`) and whether a
cleared condition stayed cleared (`verify`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from contracts.readings import ReadingBatch
from gateway.config.rules import ThresholdRule
from gateway.detect import recent
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
        self.state = np.array(
            [
                recent.initial_row(
                    math.inf if r.high is None else r.high, -math.inf if r.low is None else r.low
                )
                for r in rules
            ],
            dtype=np.float64,
        ).reshape(n, recent.WIDTH)
        # Views of its columns, by name.
        self.last_value = self.state[:, recent.LAST_VALUE]
        self.last_seen = self.state[:, recent.LAST_SEEN]
        self.watched_since = self.state[:, recent.WATCHED_SINCE]
        self.last_beyond = self.state[:, recent.LAST_BEYOND]
        self.ring_next = self.state[:, recent.RING_NEXT]
        self.sign = self.state[:, recent.SIGN]  # open alarm: +1 high, -1 low, 0 none
        self.peak = self.state[:, recent.PEAK]  # peaks are kept multiplied by the sign
        self.published_peak = self.state[:, recent.PUBLISHED]
        self.step = self.state[:, recent.STEP]
        self.ring_value = np.full((n, samples), math.nan)
        self.ring_ts = np.full((n, samples), math.nan)
        self._moved = np.empty(n, dtype=np.intp)
        self._by_channel: dict[tuple[str, str], list[int]] = {}
        for i, rule in enumerate(rules):
            self._by_channel.setdefault((rule.device, rule.channel), []).append(i)
        self._routes: dict[tuple[str, tuple[str, ...]], _Route] = {}

    def update(self, batch: ReadingBatch) -> list[int]:
        """Record one batch, reading by reading; return the open slots whose peak moved a whole step."""
        route = self._route(batch.device, batch.channels)
        if route.slots.size == 0:
            return []
        n = recent.recent_step(
            route.slots,
            route.columns,
            batch.values,
            batch.quality,
            batch.ts,
            self.max_gap_s,
            self.state,
            self.ring_value,
            self.ring_ts,
            self._moved,
        )
        moved: list[int] = self._moved[:n].tolist()
        return moved

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
