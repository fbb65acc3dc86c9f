"""Verify (核查) decides from what the channel watch saw.

A gap restarts the clock; no data is no proof."""

from __future__ import annotations

import numpy as np

from contracts.readings import ReadingBatch
from gateway.config.rules import ThresholdRule
from gateway.events.verify import verify_slots
from gateway.events.watch import ChannelWatch

RULE = ThresholdRule(device="fume-03", channel="fume", high=2.0, hysteresis=0.2, category="env.oil_fume")


def _watch(readings: list[tuple[float, float]]) -> ChannelWatch:
    watch = ChannelWatch([RULE], samples=4, max_gap_s=10.0)
    for ts, value in readings:
        watch.update(ReadingBatch.at("fume-03", ("fume", "fan"), [value, 1.0], ts))
    return watch


def test_cleared_for_the_hold_is_verified_and_shows_the_latest_readings() -> None:
    watch = _watch([(t, 2.5 if t < 100 else 1.0) for t in range(0, 200, 5)])
    answer = verify_slots(watch, [0], hold_s=60, now=200)
    assert answer["verified"] is True and answer["condition"] == "cleared"
    check = answer["checks"][0]
    assert check["clear_for_s"] == 105  # last reading past the limit at t=95
    assert [r["value"] for r in check["recent"]] == [1.0] * 4


def test_not_cleared_long_enough_says_for_how_long() -> None:
    answer = verify_slots(_watch([(0, 2.5), (5, 1.0), (10, 1.0)]), [0], hold_s=60, now=12)
    assert answer["verified"] is False and answer["checks"][0]["condition"] == "not_long_enough"
    assert answer["checks"][0]["clear_for_s"] == 12


def test_still_present_says_by_how_much() -> None:
    answer = verify_slots(_watch([(0, 1.0), (5, 2.46)]), [0], hold_s=60, now=6)
    check = answer["checks"][0]
    assert answer["condition"] == "present" and check["excess"] == 0.46 and check["value"] == 2.46


def test_a_silent_gap_restarts_the_clock_and_silence_now_is_no_data() -> None:
    gap = _watch([(0, 1.0), (5, 1.0), (100, 1.0), (105, 1.0)])  # 95 s without a reading
    assert verify_slots(gap, [0], hold_s=60, now=106)["condition"] == "not_long_enough"
    assert verify_slots(gap, [0], hold_s=60, now=200)["condition"] == "no_data"
    assert verify_slots(_watch([]), [0], hold_s=0, now=1)["condition"] == "no_data"


def test_bad_quality_readings_are_no_evidence() -> None:
    watch = _watch([(0, 1.0)])
    batch = ReadingBatch.at("fume-03", ("fume",), [1.0], 50.0)
    batch.quality[0] = 1  # device fault
    watch.update(batch)
    assert verify_slots(watch, [0], hold_s=0, now=50)["condition"] == "no_data"


def test_a_backlog_of_several_rows_is_recorded_row_by_row() -> None:
    """A replayed backlog holds several readings of one channel: each goes into the ring, the
    open alarm's peak is the highest of them (not the last), and it says so once."""
    watch = ChannelWatch([RULE], samples=4, max_gap_s=10.0)
    watch.open(0, "high", RULE.high or 0.0, 2.5, step=0.1)
    rows = [(1.0, 3.4), (2.0, 2.6), (3.0, 2.2)]  # the peak is in the middle of the batch
    backlog = ReadingBatch(
        device="fume-03",
        channels=("fume",) * 3,
        values=np.array([v for _, v in rows]),
        ts=np.array([t for t, _ in rows]),
        quality=np.zeros(3, dtype=np.uint8),
    )
    assert watch.update(backlog) == [0]
    assert watch.peak_value(0) == 3.4
    assert [r[1] for r in watch.recent(0)] == [3.4, 2.6, 2.2]
    assert float(watch.last_value[0]) == 2.2 and float(watch.last_seen[0]) == 3.0
