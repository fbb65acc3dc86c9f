"""Hotelling multivariate kind: ``[[multivariate]]`` with ``method = "hotelling"``.

A baseline learned over the first ``learn_samples`` complete rows and then
frozen, each variance raised by ``ridge`` of itself so units do not matter.
The adaptive kind supersedes it for equipment that drifts or changes
operating point; it stays for processes known to be stationary. The kernel
is :func:`gateway.detect.multivariate.hotelling_step`; its twin
:class:`gateway.detect.reference.HotellingTwin`. Every timestamp of a batch
is judged in order (:class:`gateway.detect.latest.LatestValues`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.config.rules import MultivariateRule
from gateway.detect.kind import Description, KindEvent
from gateway.detect.latest import LatestValues
from gateway.detect.layout import multivariate_subject
from gateway.detect.multivariate import MAX_DIMS, hotelling_step

FACET = "multivariate"


class HotellingKind:
    """Every ``[[multivariate]]`` block with ``method = "hotelling"``."""

    facet = FACET
    reports_value = False

    def __init__(self, rules: Sequence[MultivariateRule]) -> None:
        self.rules = tuple(r for r in rules if r.method == "hotelling")
        self.subjects = tuple(multivariate_subject(r) for r in self.rules)
        m = len(self.rules)
        self.latest = LatestValues()
        self._by_device: dict[str, list[int]] = {}
        self.channels = np.zeros((m, MAX_DIMS), dtype=np.int32)
        for d, rule in enumerate(self.rules):
            self._by_device.setdefault(rule.device, []).append(d)
            for j, channel in enumerate(rule.channels):
                self.channels[d, j] = self.latest.slot(rule.device, channel)
        self.latest.seal()
        self.dims = np.array([len(r.channels) for r in self.rules], dtype=np.int32)
        self.learn = np.array([r.learn_samples for r in self.rules], dtype=np.float64)
        self.limit = np.array([r.limit for r in self.rules], dtype=np.float64)
        self.ridge = np.array([r.ridge for r in self.rules], dtype=np.float64)
        self.count = np.zeros(m)
        self.mean = np.zeros((m, MAX_DIMS))
        self.comoment = np.zeros((m, MAX_DIMS * MAX_DIMS))
        self.inverse = np.zeros((m, MAX_DIMS * MAX_DIMS))
        self.active = np.zeros(m, dtype=np.int8)

    def evaluate(
        self,
        device: str,
        channels: tuple[str, ...],
        values: npt.NDArray[np.float64],
        ts: npt.NDArray[np.float64],
    ) -> list[KindEvent]:
        detectors = self._by_device.get(device)
        if not detectors:
            return []
        chosen = np.array(detectors, np.int32)
        out: list[KindEvent] = []
        ev = np.empty((len(detectors), 5), dtype=np.int64)
        for k, _ in self.latest.rows(device, channels, values, ts):
            n = hotelling_step(
                chosen,
                self.latest.values,
                self.channels,
                self.dims,
                self.learn,
                self.limit,
                self.ridge,
                self.count,
                self.mean,
                self.comoment,
                self.inverse,
                self.active,
                ev,
            )
            out += [KindEvent(k, d, old, new) for _, d, _, old, new in ev[:n].tolist()]
        return out

    def describe(self, subject: int, code: int) -> Description:
        return Description("anomaly", "", None, "hotelling_t2", self.rules[subject].limit)

    def code_of(self, direction: str, condition: str) -> int:
        return 1

    def set_open(self, codes: Sequence[int]) -> None:
        self.active[:] = [1 if code else 0 for code in codes]

    def snapshot(self, subject: int) -> dict[str, Any]:
        return {
            "count": float(self.count[subject]),
            "mean": self.mean[subject].tolist(),
            "comoment": self.comoment[subject].tolist(),
            "inverse": self.inverse[subject].tolist(),
        }

    def load(self, subject: int, entry: dict[str, Any]) -> bool:
        self.count[subject] = entry["count"]
        self.mean[subject] = entry["mean"]
        self.comoment[subject] = entry["comoment"]
        self.inverse[subject] = entry["inverse"]
        return True

    def warm_up(self) -> None:
        i0, f0, i8 = np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.int8)
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
            np.zeros((0, 5), dtype=np.int64),
        )
