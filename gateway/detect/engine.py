"""The detection engine: rule slots as arrays, one kernel call per batch."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.config.models import ThresholdRule
from gateway.detect.threshold import (
    CLEARED,
    HIGH,
    LOW,
    NO_CHANGE,
    RAISED_HIGH,
    RAISED_LOW,
    threshold_step,
)
from gateway.readings import Quality, ReadingBatch


@dataclass(frozen=True, slots=True)
class Transition:
    """A rule slot changed state: raised (``direction`` high or low) or cleared (no direction)."""

    rule: int
    raised: bool
    direction: str
    value: float
    ts: float


@dataclass(frozen=True, slots=True)
class _Route:
    slots: npt.NDArray[np.int32]
    columns: npt.NDArray[np.intp]


class DetectionEngine:
    """Evaluates every threshold rule of the gateway; consumers see transitions only."""

    def __init__(self, rules: Sequence[ThresholdRule]) -> None:
        n = len(rules)
        self.rules = tuple(rules)
        self.high = np.array([_or_nan(r.high) for r in rules], dtype=np.float64)
        self.low = np.array([_or_nan(r.low) for r in rules], dtype=np.float64)
        self.hysteresis = np.array([r.hysteresis for r in rules], dtype=np.float64)
        self.hold_s = np.array([r.hold_s for r in rules], dtype=np.float64)
        self.state = np.zeros(n, dtype=np.int8)
        self.pending_kind = np.zeros(n, dtype=np.int8)
        self.pending_since = np.zeros(n, dtype=np.float64)
        self._by_channel: dict[tuple[str, str], list[int]] = {}
        for i, rule in enumerate(rules):
            self._by_channel.setdefault((rule.device, rule.channel), []).append(i)
        self._routes: dict[tuple[str, tuple[str, ...]], _Route] = {}

    def warm_up(self) -> float:
        """Compile (or load from cache) every kernel; return the seconds it took."""
        started = time.perf_counter()
        empty_f = np.zeros(0, dtype=np.float64)
        empty_i8 = np.zeros(0, dtype=np.int8)
        threshold_step(
            np.zeros(0, dtype=np.int32), empty_f, empty_f, empty_f, empty_f, empty_f, empty_f,
            empty_i8, empty_i8, empty_f, empty_i8,
        )
        return time.perf_counter() - started

    def restore(self, alarms: Iterable[tuple[int, str]]) -> None:
        """Mark rule slots as already in alarm (open alarms kept across a restart)."""
        for rule, direction in alarms:
            self.state[rule] = HIGH if direction == "high" else LOW

    def evaluate(self, batch: ReadingBatch) -> list[Transition]:
        """Feed one batch through every rule on its channels."""
        route = self._route(batch.device, batch.channels)
        if route.slots.size == 0:
            return []
        values = batch.values[route.columns]
        values[batch.quality[route.columns] != Quality.OK] = math.nan
        ts = batch.ts[route.columns]
        out = np.empty(route.slots.size, dtype=np.int8)
        threshold_step(
            route.slots, values, ts, self.high, self.low, self.hysteresis, self.hold_s,
            self.state, self.pending_kind, self.pending_since, out,
        )
        changed = np.flatnonzero(out != NO_CHANGE)
        return [self._transition(int(route.slots[k]), int(out[k]), values[k], ts[k]) for k in changed]

    def _transition(self, rule: int, code: int, value: float, ts: float) -> Transition:
        return Transition(rule, code != CLEARED, _DIRECTION[code], float(value), float(ts))

    def _route(self, device: str, channels: tuple[str, ...]) -> _Route:
        key = (device, channels)
        route = self._routes.get(key)
        if route is None:
            slots: list[int] = []
            columns: list[int] = []
            for column, channel in enumerate(channels):
                for rule in self._by_channel.get((device, channel), ()):
                    slots.append(rule)
                    columns.append(column)
            route = _Route(np.array(slots, dtype=np.int32), np.array(columns, dtype=np.intp))
            self._routes[key] = route
        return route


_DIRECTION = {RAISED_HIGH: "high", RAISED_LOW: "low", CLEARED: ""}


def _or_nan(limit: float | None) -> float:
    return math.nan if limit is None else limit
