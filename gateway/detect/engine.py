"""The detection engine: rule slots as arrays, one kernel call per batch and kind of rule.

Consumers see :class:`Transition` objects only: a facet of a subject (a rule
on a channel, a cross-channel rule, a multivariate detector) was raised or
cleared, with the class of event (alarm, sensor fault, anomaly), the level,
and a condition code saying why.

Subjects are numbered: the ``[[rules]]`` first (the channel kernel), then the
subjects of each registered detector kind (:mod:`gateway.detect.kinds`) in
turn. The kinds are a list the engine loops over and knows nothing inside.
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
from gateway.detect import recent
from gateway.detect.channel import channel_step
from gateway.detect.kind import DetectorKind
from gateway.detect.kinds import kinds_for
from gateway.detect.layout import Subject, channel_params, rule_columns, rule_subject

CHANNEL_FACETS = (c.F_LEVEL, c.F_WINDOW, c.F_DAILY, c.F_RATE, c.F_FAULT)


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
        self.multivariate = tuple(multivariate)
        self.kinds: list[DetectorKind] = kinds_for(self.rules, self.cross_rules, self.multivariate)
        subjects: list[Subject] = [rule_subject(r) for r in self.rules]
        self._kind_first: list[int] = []
        for kind in self.kinds:
            self._kind_first.append(len(subjects))
            subjects += kind.subjects
        self.subjects: tuple[Subject, ...] = tuple(subjects)
        # the kinds that serve a rule, with their first subject: the others never read a batch
        self._judging = [
            (k, first) for k, first in zip(self.kinds, self._kind_first, strict=True) if k.subjects
        ]
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
        self._by_channel: dict[tuple[str, str], list[int]] = {}
        for i, rule in enumerate(self.rules):
            self._by_channel.setdefault((rule.device, rule.channel), []).append(i)
        self._routes: dict[tuple[str, tuple[str, ...]], _Route] = {}
        self._made_at = time.time()

    def warm_up(self, *, every_kind: bool = False) -> float:
        """Compile (or load from the cache) the kernels; return the seconds it took.

        Only the kinds that serve a rule, unless ``every_kind``: each kernel loaded
        costs the daemon memory for as long as it runs (several MB of machine code
        and LLVM state), and a kind with no subjects never calls its kernel.
        """
        started = time.perf_counter()
        ev = np.zeros((0, 5), dtype=np.int64)
        f0, i0 = np.zeros(0), np.zeros(0, np.int32)
        channel_step(
            i0,
            f0,
            f0,
            0.0,
            np.zeros((0, c.N_PARAMS)),
            i0,
            np.zeros((0, c.N_STATE)),
            np.zeros(0, dtype=np.bool_),
            ev,
        )
        recent.warm_up()  # the events layer's record of every rule's channel
        for kind in self.kinds:
            if every_kind or kind.subjects:
                kind.warm_up()
        return time.perf_counter() - started

    def kind_of(self, subject: int) -> tuple[DetectorKind, int] | None:
        """The registered kind a subject belongs to and its index there (None: a ``[[rules]]`` slot)."""
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
        if np.count_nonzero(batch.quality):  # the usual batch is all good: no mask to make
            values[batch.quality != Quality.OK] = math.nan
        transitions: list[Transition] = []
        if route.slots.size:
            ts = batch.ts[route.columns]
            slot_values = values[route.columns]
            ev = np.empty((route.slots.size * c.N_FACETS, 5), dtype=np.int64)
            trusted = np.empty(route.slots.size, dtype=np.bool_)
            n = channel_step(
                route.slots,
                slot_values,
                ts,
                self._tz_offset(float(ts[-1])),
                self.params,
                self.param_row,
                self.state,
                trusted,
                ev,
            )
            for k, slot, facet, old, new in ev[:n].tolist():
                self._append(transitions, slot, facet, old, new, float(slot_values[k]), float(ts[k]))
            if self._judging:
                values[route.columns[~trusted]] = math.nan  # a faulty reading is never an anomaly
        for kind, first in self._judging:
            for k, i, old, new in kind.evaluate(batch.device, batch.channels, values, batch.ts):
                value = float(values[k]) if kind.reports_value else math.nan
                self._append(transitions, first + i, 0, old, new, value, float(batch.ts[k]))
        return transitions

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
        return "fault", "", None, c.FAULT_NAMES[code], None

    def facet_names(self, subject: int) -> tuple[str, ...]:
        """The facets a subject can raise."""
        owner = self.kind_of(subject)
        if owner is not None:
            return (owner[0].facet,)
        return tuple(c.FACET_NAMES[f] for f in CHANNEL_FACETS)

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
        ):
            self.state[:, column] = 0.0
        kind_codes = [[0] * len(kind.subjects) for kind in self.kinds]
        columns = {
            c.F_LEVEL: c.S_LEVEL,
            c.F_WINDOW: c.S_WINDOW,
            c.F_DAILY: c.S_DAILY,
            c.F_RATE: c.S_RATE,
            c.F_FAULT: c.S_FAULT,
        }
        for subject, facet_name, code in open_alarms:
            owner = self.kind_of(subject)
            if owner is not None:
                kind_codes[self.kinds.index(owner[0])][owner[1]] = code
                continue
            facet = c.FACET_NAMES.index(facet_name)
            if facet in columns:
                self.state[subject, columns[facet]] = code
                if facet == c.F_LEVEL:
                    self.state[subject, c.S_PEND_LEVEL] = code
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
            route = _Route(np.array(slots, dtype=np.int32), np.array(columns, dtype=np.intp))
            self._routes[key] = route
        return route
