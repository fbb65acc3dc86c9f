"""Plain thresholds (the first rule kind): behaviour operators rely on."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from contracts.readings import Quality, ReadingBatch
from gateway.config.rules import ThresholdRule
from gateway.detect.engine import DetectionEngine


def _engine(**rule: Any) -> DetectionEngine:
    return DetectionEngine([ThresholdRule(device="d", channel="c", category="env.dust.pm10", **rule)])


def _feed(engine: DetectionEngine, value: float, ts: float, quality: Quality = Quality.OK) -> list[str]:
    batch = ReadingBatch("d", ("c",), np.array([value], float), np.array([ts]), np.array([quality], np.uint8))
    return [("raised " + t.direction) if t.raised else "cleared" for t in engine.evaluate(batch)]


def test_alarm_waits_for_the_hold_time_then_clears_past_the_hysteresis() -> None:
    engine = _engine(high=150, hysteresis=10, hold_s=5)
    assert _feed(engine, 160, 0.0) == []
    assert _feed(engine, 170, 4.9) == []
    assert _feed(engine, 165, 5.0) == ["raised high"]
    assert _feed(engine, 145, 6.0) == []  # inside the hysteresis band
    assert _feed(engine, 140, 7.0) == ["cleared"]


def test_a_dip_under_the_limit_restarts_the_hold_time() -> None:
    engine = _engine(high=150, hold_s=5)
    _feed(engine, 160, 0.0)
    _feed(engine, 100, 3.0)
    assert _feed(engine, 160, 6.0) == []
    assert _feed(engine, 160, 11.0) == ["raised high"]


def test_low_limit_and_missing_or_faulty_readings() -> None:
    engine = _engine(low=10, hysteresis=2)
    assert _feed(engine, math.nan, 0.0) == []
    assert _feed(engine, 5, 1.0, Quality.DEVICE_FAULT) == []  # a faulty sensor is not an alarm
    assert _feed(engine, 5, 2.0) == ["raised low"]
    assert _feed(engine, 11, 3.0) == []
    assert _feed(engine, 12, 4.0) == ["cleared"]


def test_readings_of_other_channels_are_ignored() -> None:
    engine = _engine(high=1)
    batch = ReadingBatch.at("d", ("other", "c"), [100.0, 0.0], 0.0)
    assert engine.evaluate(batch) == []
