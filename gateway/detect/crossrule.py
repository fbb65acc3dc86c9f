"""Cross-channel rule kind: ``[[cross_rules]]``, channels of one device in a forbidden combination.

The kernel is :func:`gateway.detect.cross.cross_step`; its twin
:class:`gateway.detect.reference.CrossTwin`. Every timestamp of a batch is
judged in order (:class:`gateway.detect.latest.LatestValues`), a reading of any
of the device's channels included, so a hold runs on the device's clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.config.rules import CrossRule
from gateway.detect.cross import cross_step
from gateway.detect.kind import Description, KindEvent
from gateway.detect.latest import LatestValues
from gateway.detect.layout import cross_subject

FACET = "cross"


class CrossKind:
    """Every ``[[cross_rules]]`` entry."""

    facet = FACET
    reports_value = False

    def __init__(self, rules: Sequence[CrossRule]) -> None:
        self.rules = tuple(rules)
        self.subjects = tuple(cross_subject(r) for r in self.rules)
        self.latest = LatestValues()
        first, ops, a_idx, b_idx, const = [0], [], [], [], []
        self._by_device: dict[str, list[int]] = {}
        for r, rule in enumerate(self.rules):
            self._by_device.setdefault(rule.device, []).append(r)
            for clause in rule.all:
                ops.append(1 if clause.op == ">" else -1)
                a_idx.append(self.latest.slot(rule.device, clause.channel))
                b_idx.append(-1 if clause.than is None else self.latest.slot(rule.device, clause.than))
                const.append(math.nan if clause.value is None else clause.value)
            first.append(len(ops))
        self.latest.seal()
        self.first = np.array(first, dtype=np.int32)
        self.op = np.array(ops, dtype=np.int8)
        self.a = np.array(a_idx, dtype=np.int32)
        self.b = np.array(b_idx, dtype=np.int32)
        self.const = np.array(const, dtype=np.float64)
        self.hold = np.array([r.hold_s for r in self.rules], dtype=np.float64)
        self.active = np.zeros(len(self.rules), dtype=np.int8)
        self.pending = np.full(len(self.rules), math.nan)

    def evaluate(
        self,
        device: str,
        channels: tuple[str, ...],
        values: npt.NDArray[np.float64],
        ts: npt.NDArray[np.float64],
    ) -> list[KindEvent]:
        rules = self._by_device.get(device)
        if not rules:
            return []
        chosen = np.array(rules, np.int32)
        out: list[KindEvent] = []
        ev = np.empty((len(rules), 5), dtype=np.int64)
        for k, t in self.latest.rows(device, channels, values, ts, any_channel=True):
            n = cross_step(
                chosen,
                t,
                self.latest.values,
                self.first,
                self.op,
                self.a,
                self.b,
                self.const,
                self.hold,
                self.active,
                self.pending,
                ev,
            )
            out += [KindEvent(k, r, old, new) for _, r, _, old, new in ev[:n].tolist()]
        return out

    def describe(self, subject: int, code: int) -> Description:
        kind = self.rules[subject].kind
        return Description(kind, "", "alarm" if kind == "alarm" else None, "cross_channel", None)

    def code_of(self, direction: str, condition: str) -> int:
        return 1

    def set_open(self, codes: Sequence[int]) -> None:
        self.active[:] = [1 if code else 0 for code in codes]

    def snapshot(self, subject: int) -> dict[str, Any]:
        return {"pending_since": float(self.pending[subject])}

    def load(self, subject: int, entry: dict[str, Any]) -> bool:
        self.pending[subject] = entry["pending_since"]
        return True

    def warm_up(self) -> None:
        i0, f0, i8 = np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.int8)
        ev = np.zeros((0, 5), dtype=np.int64)
        cross_step(i0, 0.0, f0, np.zeros(1, np.int32), i8, i0, i0, f0, f0, i8, f0, ev)
