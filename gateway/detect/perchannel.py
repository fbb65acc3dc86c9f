"""What every per-channel statistical kind shares: slots per rule, routing, the batch call.

A kind serving ``[[rules]]`` entries (one detector per channel) subclasses
:class:`ChannelKind` and gives its facet, its parameter row for a rule (None:
the rule asks for none), its initial state row, and its kernel ``step``
with the signature of :func:`gateway.detect.shift.shift_step`: every reading
``k`` of the batch advances slot ``slot[k]``, code changes go to ``ev`` rows
``(k, slot, old, new)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from gateway.config.rules import ThresholdRule
from gateway.detect.kind import KindEvent, StateRows
from gateway.detect.layout import Subject, rule_subject

_Route = tuple[npt.NDArray[np.int32], npt.NDArray[np.intp]]


def channel_kind_subject(rule: ThresholdRule, facet: str, label: str) -> Subject:
    """A rule's detector of one kind, named after the rule and the kind's facet."""
    base = rule_subject(rule)
    return Subject(
        key=f"{base.key}/{facet}",
        fingerprint=base.fingerprint,
        device=base.device,
        channel=base.channel,
        category=base.category,
        severity="normal",
        fault_severity="normal",
        hysteresis=0.0,
        hold_s=0.0,
        label=f"{rule.device}/{rule.channel} {label}",
        code=rule.code,
    )


class ChannelKind(StateRows):
    """One detector per ``[[rules]]`` entry that asks for this kind."""

    facet: str
    label: str
    n_params: int
    reports_value = True
    step: ClassVar[Callable[..., int]]

    @staticmethod
    def params_of(rule: ThresholdRule) -> list[float] | None:
        raise NotImplementedError

    @staticmethod
    def initial_state() -> list[float]:
        raise NotImplementedError

    def subject_of(self, rule: ThresholdRule) -> Subject:
        return channel_kind_subject(rule, self.facet, self.label)

    def __init__(self, rules: Sequence[ThresholdRule]) -> None:
        served = [(rule, row) for rule in rules if (row := self.params_of(rule)) is not None]
        self.subjects = tuple(self.subject_of(rule) for rule, _ in served)
        rows: dict[tuple[float, ...], int] = {}  # rules with equal settings share a row
        self.param_row = np.array(
            [rows.setdefault(tuple(row), len(rows)) for _, row in served], dtype=np.int32
        )
        self.params = np.array(list(rows), dtype=np.float64).reshape(len(rows), self.n_params)
        width = len(self.initial_state())
        self.state = np.array([self.initial_state() for _ in served], dtype=np.float64).reshape(
            len(served), width
        )
        self._by_channel: dict[tuple[str, str], list[int]] = {}
        for i, (rule, _) in enumerate(served):
            self._by_channel.setdefault((rule.device, rule.channel), []).append(i)
        self._routes: dict[tuple[str, tuple[str, ...]], _Route] = {}

    def evaluate(
        self,
        device: str,
        channels: tuple[str, ...],
        values: npt.NDArray[np.float64],
        ts: npt.NDArray[np.float64],
    ) -> list[KindEvent]:
        route = self._routes.get((device, channels))
        if route is None:
            by_channel = self._by_channel
            pairs = [(i, col) for col, ch in enumerate(channels) for i in by_channel.get((device, ch), ())]
            route = (
                np.array([i for i, _ in pairs], dtype=np.int32),
                np.array([col for _, col in pairs], dtype=np.intp),
            )
            self._routes[(device, channels)] = route
        slots, columns = route
        if not slots.size:
            return []
        ev = np.empty((slots.size, 4), dtype=np.int64)
        n = type(self).step(slots, values[columns], ts[columns], self.params, self.param_row, self.state, ev)
        return [KindEvent(int(columns[k]), i, old, new) for k, i, old, new in ev[:n].tolist()]

    def warm_up(self) -> None:
        i0, f0 = np.zeros(0, np.int32), np.zeros(0)
        width = len(self.initial_state())
        empty: Any = np.zeros((0, 4), dtype=np.int64)
        type(self).step(i0, f0, f0, np.zeros((0, self.n_params)), i0, np.zeros((0, width)), empty)
