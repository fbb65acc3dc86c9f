"""The threshold kernel: behaviour operators rely on, and agreement with its Python twin."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.models import ThresholdRule
from gateway.detect.engine import DetectionEngine
from gateway.detect.reference import ThresholdChannel
from gateway.detect.threshold import threshold_step
from gateway.readings import Quality, ReadingBatch


def _engine(**rule: float) -> DetectionEngine:
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


values = st.one_of(st.floats(-50, 250, allow_nan=False), st.just(math.nan), st.sampled_from([150.0, 140.0, 20.0]))
steps = st.tuples(values, st.floats(-30, 30, allow_nan=False))  # time step may go backwards: clock jumps
limits = st.tuples(
    st.one_of(st.just(math.nan), st.floats(100, 200)),
    st.one_of(st.just(math.nan), st.floats(-10, 50)),
    st.floats(0, 20),
    st.one_of(st.just(0.0), st.floats(0, 40)),
)


@settings(max_examples=300, deadline=None)
@given(channels=st.lists(limits, min_size=1, max_size=4), stream=st.lists(st.tuples(st.integers(0, 3), steps), max_size=200))
def test_kernel_agrees_with_its_python_twin(channels, stream) -> None:  # type: ignore[no-untyped-def]
    twins = [ThresholdChannel(high=h, low=lo, hysteresis=hy, hold_s=hold) for h, lo, hy, hold in channels]
    n = len(channels)
    high, low, hyst, hold = (np.array(col, dtype=np.float64) for col in zip(*channels))
    state, pending_kind, pending_since = np.zeros(n, np.int8), np.zeros(n, np.int8), np.zeros(n)
    slots, vals, times, expected = [], [], [], []
    t = 1_700_000_000.0
    for which, (value, dt) in stream:
        slot = which % n
        t += dt
        slots.append(slot)
        vals.append(value)
        times.append(t)
        expected.append(twins[slot].step(value, t))
    out = np.zeros(len(slots), np.int8)
    threshold_step(
        np.array(slots, np.int32), np.array(vals), np.array(times), high, low, hyst, hold,
        state, pending_kind, pending_since, out,
    )
    assert out.tolist() == expected
    assert state.tolist() == [twin.state for twin in twins]
