"""The detection engine: rule slots as arrays, one kernel call per batch and kind of rule.

Consumers see :class:`Transition` objects only: a facet of a subject (a rule
on a channel, a cross-channel rule, a multivariate detector) was raised or
cleared, with the class of event (alarm, sensor fault, anomaly), the level,
and a condition code saying why.

Subjects are numbered: the ``[[rules]]`` first, then the cross-channel rules
and the Hotelling detectors, then the subjects of each registered detector
kind (:mod:`gateway.detect.kinds`) in turn. The kinds are a list the engine
loops over; the first three are the older built-in kernels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from contracts.readings import Quality, ReadingBatch
from gateway.config.rules import CrossRule, MultivariateRule, ThresholdRule
from gateway.detect import codes as c
from gateway.detect.channel import channel_step
from gateway.detect.cross import cross_step
from gateway.detect.kind import DetectorKind
from gateway.detect.kinds import kinds_for
from gateway.detect.layout import (
    Subject,
    channel_params,
    cross_subject,
    multivariate_subject,
    rule_columns,
    rule_subject,
)
from gateway.detect.multivariate import MAX_DIMS, hotelling_step

CHANNEL_FACETS = (c.F_LEVEL, c.F_WINDOW, c.F_DAILY, c.F_RATE, c.F_FAULT, c.F_ANOMALY)


@dataclass(frozen=True, slots=True)
class Transition:
    """A facet of subject ``rule`` was raised (``raised``) or cleared, by ``value`` at ``ts``."""

    rule: int
    raised: bool
    direction: str  # "high", "low", or "" where a side means nothing (faults, anomalies)
    value: float
    ts: float
    facet: str = "level"
    event_class: str = "alarm"  # "alarm", "fault" or "anomaly"
    level: str | None = "alarm"
    condition: str = "above_limit"
    limit: float | None = None
    code: int = 1


@dataclass(frozen=True, slots=True)
class _Route:
    slots: npt.NDArray[np.int32]
    columns: npt.NDArray[np.intp]
    latest_at: npt.NDArray[np.intp]  # where the batch's columns go in ``latest``
    latest_columns: npt.NDArray[np.intp]


class DetectionEngine:
    """Evaluates every detection rule of the gateway over batches of readings."""

    def __init__(
        self,
        rules: Sequence[ThresholdRule],
        cross_rules: Sequence[CrossRule] = (),
        multivariate: Sequence[MultivariateRule] = (),
        *,
        timezone_name: str = "Asia/Shanghai",
    ) -> None:
        self.rules = tuple(rules)
        self.cross_rules = tuple(cross_rules)
        self.multivariate = tuple(r for r in multivariate if r.method == "hotelling")
        self.kinds: list[DetectorKind] = kinds_for(self.rules, multivariate)
        subjects: list[Subject] = [
            *(rule_subject(r) for r in self.rules),
            *(cross_subject(r) for r in self.cross_rules),
            *(multivariate_subject(r) for r in self.multivariate),
        ]
        self._kind_first: list[int] = []
        for kind in self.kinds:
            self._kind_first.append(len(subjects))
            subjects += kind.subjects
        self.subjects: tuple[Subject, ...] = tuple(subjects)
        self._zone = ZoneInfo(timezone_name)
        self._offset_hour = math.nan
        self._offset_s = 0.0
        n = len(self.rules)
        # Rules with the same settings share one parameter row (profiles make that the usual
        # case), so the kernel reads far fewer bytes per channel and they stay in cache.
        rows: dict[bytes, int] = {}
        unique: list[list[float]] = []
        param_row: list[int] = []
        for rule in self.rules:
            row = channel_params(rule)
            param_row.append(rows.setdefault(np.array(row).tobytes(), len(unique)))
            if param_row[-1] == len(unique):
                unique.append(row)
        self.params = np.array(unique, dtype=np.float64).reshape(len(unique), c.N_PARAMS)
        self.param_row = np.array(param_row, dtype=np.int32)
        self.state = np.array([c.initial_state_row() for _ in range(n)], dtype=np.float64).reshape(
            n, c.N_STATE
        )
        self.history = np.zeros((n, 2 * c.HAMPEL_W), dtype=np.float64)
        self._by_channel: dict[tuple[str, str], list[int]] = {}
        for i, rule in enumerate(self.rules):
            self._by_channel.setdefault((rule.device, rule.channel), []).append(i)
        self._latest_index: dict[tuple[str, str], int] = {}
        self._init_cross()
        self._init_multivariate()
        self.latest = np.full(len(self._latest_index), math.nan)
        self._routes: dict[tuple[str, tuple[str, ...]], _Route] = {}
        self._made_at = time.time()

    def _latest(self, device: str, channel: str) -> int:
        return self._latest_index.setdefault((device, channel), len(self._latest_index))

    def _init_cross(self) -> None:
        rules = self.cross_rules
        first, ops, a_idx, b_idx, const = [0], [], [], [], []
        self._cross_by_device: dict[str, list[int]] = {}
        for r, rule in enumerate(rules):
            self._cross_by_device.setdefault(rule.device, []).append(r)
            for clause in rule.all:
                ops.append(1 if clause.op == ">" else -1)
                a_idx.append(self._latest(rule.device, clause.channel))
                b_idx.append(-1 if clause.than is None else self._latest(rule.device, clause.than))
                const.append(math.nan if clause.value is None else clause.value)
            first.append(len(ops))
        self.cross_first = np.array(first, dtype=np.int32)
        self.cross_op = np.array(ops, dtype=np.int8)
        self.cross_a = np.array(a_idx, dtype=np.int32)
        self.cross_b = np.array(b_idx, dtype=np.int32)
        self.cross_const = np.array(const, dtype=np.float64)
        self.cross_hold = np.array([r.hold_s for r in rules], dtype=np.float64)
        self.cross_active = np.zeros(len(rules), dtype=np.int8)
        self.cross_pending = np.full(len(rules), math.nan)

    def _init_multivariate(self) -> None:
        rules = self.multivariate
        m = len(rules)
        self._mv_by_device: dict[str, list[int]] = {}
        self.mv_channels = np.zeros((m, MAX_DIMS), dtype=np.int32)
        for d, rule in enumerate(rules):
            self._mv_by_device.setdefault(rule.device, []).append(d)
            for j, channel in enumerate(rule.channels):
                self.mv_channels[d, j] = self._latest(rule.device, channel)
        self.mv_dims = np.array([len(r.channels) for r in rules], dtype=np.int32)
        self.mv_learn = np.array([r.learn_samples for r in rules], dtype=np.float64)
        self.mv_limit = np.array([r.limit for r in rules], dtype=np.float64)
        self.mv_ridge = np.array([r.ridge for r in rules], dtype=np.float64)
        self.mv_count = np.zeros(m)
        self.mv_mean = np.zeros((m, MAX_DIMS))
        self.mv_comoment = np.zeros((m, MAX_DIMS * MAX_DIMS))
        self.mv_inverse = np.zeros((m, MAX_DIMS * MAX_DIMS))
        self.mv_active = np.zeros(m, dtype=np.int8)

    def warm_up(self) -> float:
        """Compile (or load from the cache) every kernel; return the seconds it took."""
        started = time.perf_counter()
        ev = np.zeros((0, 5), dtype=np.int64)
        f0, i0, i8 = np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.int8)
        channel_step(
            i0,
            f0,
            f0,
            0.0,
            np.zeros((0, c.N_PARAMS)),
            i0,
            np.zeros((0, c.N_STATE)),
            np.zeros((0, 2 * c.HAMPEL_W)),
            ev,
        )
        cross_step(i0, 0.0, f0, np.zeros(1, np.int32), i8, i0, i0, f0, f0, i8, f0, ev)
        hotelling_step(
            i0,
            f0,
            np.zeros((0, MAX_DIMS), np.int32),
            i0,
            f0,
            f0,
            f0,
            f0,
            np.zeros((0, MAX_DIMS)),
            np.zeros((0, MAX_DIMS**2)),
            np.zeros((0, MAX_DIMS**2)),
            i8,
            ev,
        )
        for kind in self.kinds:
            kind.warm_up()
        return time.perf_counter() - started

    def kind_of(self, subject: int) -> tuple[DetectorKind, int] | None:
        """The registered kind a subject belongs to and its index there (None: a built-in one)."""
        for kind, first in zip(reversed(self.kinds), reversed(self._kind_first), strict=True):
            if subject >= first:
                return kind, subject - first
        return None

    def silent_channels(self, now: float) -> list[Transition]:
        """Missing-data faults for channels with no reading at all for their ``missing_s``.

        NaN readings are timed by the kernel; this catches the device that sends
        nothing. Called now and then, not per batch; a channel never heard from
        counts from when the engine was made.
        """
        state = self.state
        last = np.where(np.isnan(state[:, c.S_LAST_SEEN]), self._made_at, state[:, c.S_LAST_SEEN])
        limit = self.params[self.param_row, c.P_MISSING_S]
        silent = (limit > 0) & (now - last >= limit) & (state[:, c.S_FAULT] != c.FAULT_MISSING)
        transitions: list[Transition] = []
        for slot in np.flatnonzero(silent).tolist():
            old = int(state[slot, c.S_FAULT])
            state[slot, c.S_FAULT] = c.FAULT_MISSING
            state[slot, c.S_PEND_LEVEL] = state[slot, c.S_LEVEL]
            self._append(transitions, slot, c.F_FAULT, old, c.FAULT_MISSING, math.nan, now)
        return transitions

    def evaluate(self, batch: ReadingBatch) -> list[Transition]:
        """Feed one batch through every rule on its channels."""
        route = self._route(batch.device, batch.channels)
        values = batch.values.copy()
        values[batch.quality != Quality.OK] = math.nan
        transitions: list[Transition] = []
        if route.slots.size:
            ts = batch.ts[route.columns]
            slot_values = values[route.columns]
            ev = np.empty((route.slots.size * c.N_FACETS, 5), dtype=np.int64)
            n = channel_step(
                route.slots,
                slot_values,
                ts,
                self._tz_offset(float(ts[-1])),
                self.params,
                self.param_row,
                self.state,
                self.history,
                ev,
            )
            for k, slot, facet, old, new in ev[:n].tolist():
                self._append(transitions, slot, facet, old, new, float(slot_values[k]), float(ts[k]))
        if route.latest_at.size:
            if batch.ts.size and batch.ts[0] != batch.ts[-1]:
                transitions += self._device_rows(batch, values, route)
            else:
                self.latest[route.latest_at] = values[route.latest_columns]
                transitions += self._device_rules(batch.device, float(batch.ts.max()))
        for kind, first in zip(self.kinds, self._kind_first, strict=True):
            for k, i, old, new in kind.evaluate(batch.device, batch.channels, values, batch.ts):
                value = float(values[k]) if kind.reports_value else math.nan
                self._append(transitions, first + i, 0, old, new, value, float(batch.ts[k]))
        return transitions

    def _device_rows(
        self, batch: ReadingBatch, values: npt.NDArray[np.float64], route: _Route
    ) -> list[Transition]:
        """A batch of history (a backlog): cross rules and Hotelling judge each timestamp in order."""
        out: list[Transition] = []
        ts = batch.ts[route.latest_columns]
        ends = np.flatnonzero(np.append(ts[1:] != ts[:-1], True))
        start = 0
        for end in ends.tolist():
            self.latest[route.latest_at[start : end + 1]] = values[route.latest_columns[start : end + 1]]
            out += self._device_rules(batch.device, float(ts[end]))
            start = end + 1
        return out

    def _device_rules(self, device: str, t: float) -> list[Transition]:
        out: list[Transition] = []
        cross = self._cross_by_device.get(device)
        if cross:
            ev = np.empty((len(cross), 5), dtype=np.int64)
            n = cross_step(
                np.array(cross, np.int32),
                t,
                self.latest,
                self.cross_first,
                self.cross_op,
                self.cross_a,
                self.cross_b,
                self.cross_const,
                self.cross_hold,
                self.cross_active,
                self.cross_pending,
                ev,
            )
            for _, r, facet, old, new in ev[:n].tolist():
                self._append(out, len(self.rules) + r, facet, old, new, math.nan, t)
        detectors = self._mv_by_device.get(device)
        if detectors:
            ev = np.empty((len(detectors), 5), dtype=np.int64)
            n = hotelling_step(
                np.array(detectors, np.int32),
                self.latest,
                self.mv_channels,
                self.mv_dims,
                self.mv_learn,
                self.mv_limit,
                self.mv_ridge,
                self.mv_count,
                self.mv_mean,
                self.mv_comoment,
                self.mv_inverse,
                self.mv_active,
                ev,
            )
            first = len(self.rules) + len(self.cross_rules)
            for _, d, facet, old, new in ev[:n].tolist():
                self._append(out, first + d, facet, old, new, math.nan, t)
        return out

    def _append(
        self,
        out: list[Transition],
        subject: int,
        facet: int,
        old: int,
        new: int,
        value: float,
        ts: float,
    ) -> None:
        if old:
            out.append(self._transition(subject, facet, old, raised=False, value=value, ts=ts))
        if new:
            out.append(self._transition(subject, facet, new, raised=True, value=value, ts=ts))

    def _transition(
        self, subject: int, facet: int, code: int, *, raised: bool, value: float, ts: float
    ) -> Transition:
        event_class, direction, level, condition, limit = self.describe(subject, facet, code)
        owner = self.kind_of(subject)
        return Transition(
            subject,
            raised,
            direction,
            value,
            ts,
            owner[0].facet if owner is not None else c.FACET_NAMES[facet],
            event_class,
            level,
            condition,
            limit,
            code,
        )

    def describe(self, subject: int, facet: int, code: int) -> tuple[str, str, str | None, str, float | None]:
        """Event class, direction, level, condition and limit of a facet's state ``code``."""
        owner = self.kind_of(subject)
        if owner is not None:
            return tuple(owner[0].describe(owner[1], code))  # type: ignore[return-value]
        p = self.params[self.param_row[subject]] if subject < len(self.rules) else None
        if facet == c.F_LEVEL and p is not None:
            high = code > 0
            column = (c.P_WARN_HI if high else c.P_WARN_LO) + abs(code) - 1
            return (
                "alarm",
                "high" if high else "low",
                c.LEVEL_NAMES[abs(code)],
                "above_limit" if high else "below_limit",
                float(p[column]),
            )
        if facet == c.F_WINDOW and p is not None:
            return "alarm", "high", "alarm", "window_mean", float(p[c.P_WIN_HI])
        if facet == c.F_DAILY and p is not None:
            return "alarm", "high", "alarm", "daily_exceedances", float(p[c.P_DAY_MAX])
        if facet == c.F_RATE and p is not None:
            limit = p[c.P_RATE_RISE] if code > 0 else p[c.P_RATE_FALL]
            return "alarm", "high" if code > 0 else "low", "alarm", c.RATE_NAMES[code], float(limit)
        if facet == c.F_FAULT:
            return "fault", "", None, c.FAULT_NAMES[code], None
        if facet == c.F_ANOMALY:
            return "anomaly", "", None, c.ANOMALY_NAMES[code], None
        if facet == c.F_CROSS:
            kind = self.cross_rules[subject - len(self.rules)].kind
            return kind, "", "alarm" if kind == "alarm" else None, "cross_channel", None
        detector = self.multivariate[subject - len(self.rules) - len(self.cross_rules)]
        return "anomaly", "", None, "hotelling_t2", detector.limit

    def facet_names(self, subject: int) -> tuple[str, ...]:
        """The facets a subject can raise."""
        owner = self.kind_of(subject)
        if owner is not None:
            return (owner[0].facet,)
        if subject < len(self.rules):
            facets: tuple[int, ...] = CHANNEL_FACETS
        elif subject < len(self.rules) + len(self.cross_rules):
            facets = (c.F_CROSS,)
        else:
            facets = (c.F_MULTIVARIATE,)
        return tuple(c.FACET_NAMES[f] for f in facets)

    def restore_events(self, open_events: Iterable[tuple[int, str, Mapping[str, Any]]]) -> None:
        """:meth:`restore` from open events ``(subject, facet, event payload)``."""
        self.restore(
            (
                subject,
                facet,
                self._code_of(subject, facet, event),
            )
            for subject, facet, event in open_events
        )

    def _code_of(self, subject: int, facet: str, event: Mapping[str, Any]) -> int:
        direction, condition = event.get("direction") or "", event.get("condition", "")
        owner = self.kind_of(subject)
        if owner is not None:
            return owner[0].code_of(direction, condition)
        return self.code_of(facet, direction, event.get("level", "alarm"), condition)

    def restore(self, open_alarms: Iterable[tuple[int, str, int]]) -> None:
        """Make facet states match the open alarms ``(subject, facet name, code)`` after a restart.

        The events layer's record is the truth: a facet without an open alarm is normal.
        """
        for column in (
            c.S_LEVEL,
            c.S_PEND_LEVEL,
            c.S_WINDOW,
            c.S_DAILY,
            c.S_RATE,
            c.S_FAULT,
            c.S_ANOMALY,
        ):
            self.state[:, column] = 0.0
        self.cross_active[:] = 0
        self.mv_active[:] = 0
        kind_codes = [[0] * len(kind.subjects) for kind in self.kinds]
        columns = {
            c.F_LEVEL: c.S_LEVEL,
            c.F_WINDOW: c.S_WINDOW,
            c.F_DAILY: c.S_DAILY,
            c.F_RATE: c.S_RATE,
            c.F_FAULT: c.S_FAULT,
            c.F_ANOMALY: c.S_ANOMALY,
        }
        for subject, facet_name, code in open_alarms:
            owner = self.kind_of(subject)
            if owner is not None:
                kind_codes[self.kinds.index(owner[0])][owner[1]] = code
                continue
            facet = c.FACET_NAMES.index(facet_name)
            if facet in columns and subject < len(self.rules):
                self.state[subject, columns[facet]] = code
                if facet == c.F_LEVEL:
                    self.state[subject, c.S_PEND_LEVEL] = code
            elif facet == c.F_CROSS:
                self.cross_active[subject - len(self.rules)] = 1
            elif facet == c.F_MULTIVARIATE:
                self.mv_active[subject - len(self.rules) - len(self.cross_rules)] = 1
        for kind, codes in zip(self.kinds, kind_codes, strict=True):
            kind.set_open(codes)

    def code_of(self, facet_name: str, direction: str, level: str | None, condition: str) -> int:
        """The facet state code an event stands for (the inverse of :meth:`describe`)."""
        facet = c.FACET_NAMES.index(facet_name)
        sign = -1 if direction == "low" else 1
        if facet == c.F_LEVEL:
            return sign * c.LEVEL_NAMES.index(level or "alarm")
        if facet == c.F_RATE:
            return sign
        if facet == c.F_FAULT:
            return c.FAULT_NAMES.index(condition)
        if facet == c.F_ANOMALY:
            return c.ANOMALY_NAMES.index(condition)
        return 1

    def _tz_offset(self, t: float) -> float:
        hour = t // 3600.0
        if hour != self._offset_hour:
            moment = datetime.fromtimestamp(t, tz=timezone.utc).astimezone(self._zone)
            offset = moment.utcoffset()
            self._offset_s = offset.total_seconds() if offset is not None else 0.0
            self._offset_hour = hour
        return self._offset_s

    def _route(self, device: str, channels: tuple[str, ...]) -> _Route:
        key = (device, channels)
        route = self._routes.get(key)
        if route is None:
            slots, columns = rule_columns(self._by_channel, device, channels)
            latest_at: list[int] = []
            latest_columns: list[int] = []
            for column, channel in enumerate(channels):
                if (device, channel) in self._latest_index:
                    latest_at.append(self._latest_index[(device, channel)])
                    latest_columns.append(column)
            route = _Route(
                np.array(slots, dtype=np.int32),
                np.array(columns, dtype=np.intp),
                np.array(latest_at, dtype=np.intp),
                np.array(latest_columns, dtype=np.intp),
            )
            self._routes[key] = route
        return route
