"""Every detection kernel equals its pure-Python twin on random streams.

Streams include NaN, repeated values (flat lines), values outside the
physical range, time gaps of days, clocks that step backwards, and restarts
(the kernel's state goes through a save and load mid-stream).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.rules import Clause, CrossRule, MultivariateRule
from gateway.detect import adaptive, changepoint, recent, shift, spike
from gateway.detect import codes as c
from gateway.detect.adaptive import AdaptiveTwin, adaptive_step
from gateway.detect.changepoint import ChangePointTwin, changepoint_step
from gateway.detect.channel import channel_step
from gateway.detect.cross import cross_step
from gateway.detect.crossrule import CrossKind
from gateway.detect.hotelling import HotellingKind
from gateway.detect.kind import DetectorKind
from gateway.detect.multivariate import MAX_DIMS, hotelling_step
from gateway.detect.reference import ChannelLimits, ChannelTwin, CrossTwin, HotellingTwin
from gateway.detect.shift import ShiftTwin, shift_step
from gateway.detect.spike import SpikeTwin, spike_step

NAN = math.nan
maybe = st.one_of(st.just(NAN), st.floats(-50, 250, allow_nan=False))
value = st.one_of(
    st.floats(-50, 250, allow_nan=False),
    st.just(NAN),
    st.sampled_from([150.0, 80.0, 20.0, 0.0, 999.0]),
)
# Mostly forward steps, some zero, some backwards (clock jumps), some gaps of hours or days.
step = st.one_of(st.floats(0, 400), st.just(0.0), st.floats(-3_000, 0), st.floats(3_600, 200_000))
limits = st.builds(
    ChannelLimits,
    high=st.tuples(st.just(100.0), maybe.map(lambda v: NAN if math.isnan(v) else 150.0), st.just(NAN)),
    low=st.tuples(st.just(NAN), st.sampled_from([NAN, 10.0]), st.sampled_from([NAN, -20.0])),
    hysteresis=st.floats(0, 20),
    hold_s=st.sampled_from([0.0, 30.0, 600.0]),
    clear_hold_s=st.sampled_from([0.0, 120.0]),
    phys_min=st.sampled_from([NAN, -40.0]),
    phys_max=st.sampled_from([NAN, 500.0]),
    stuck_s=st.sampled_from([0.0, 900.0]),
    stuck_tol=st.sampled_from([0.0, 0.5]),
    missing_s=st.sampled_from([0.0, 300.0]),
    bucket_s=st.sampled_from([0.0, 300.0, 3_600.0, 86_400.0]),
    window_high=st.sampled_from([NAN, 80.0]),
    window_hysteresis=st.sampled_from([0.0, 5.0]),
    daily_limit=st.sampled_from([NAN, 60.0]),
    daily_max=st.sampled_from([0.0, 2.0]),
    min_samples=st.sampled_from([1.0, 3.0]),
    rate_rise=st.sampled_from([NAN, 5.0]),
    rate_fall=st.sampled_from([NAN, 5.0]),
    rate_span_s=st.sampled_from([1.0, 60.0]),
)


def _params(lim: ChannelLimits) -> list[float]:
    p = [NAN] * c.N_PARAMS
    p[c.P_WARN_HI : c.P_CRIT_HI + 1] = lim.high
    p[c.P_WARN_LO : c.P_CRIT_LO + 1] = lim.low
    for column, attr in [
        (c.P_HYST, "hysteresis"),
        (c.P_HOLD, "hold_s"),
        (c.P_CLEAR_HOLD, "clear_hold_s"),
        (c.P_PHYS_MIN, "phys_min"),
        (c.P_PHYS_MAX, "phys_max"),
        (c.P_STUCK_S, "stuck_s"),
        (c.P_STUCK_TOL, "stuck_tol"),
        (c.P_MISSING_S, "missing_s"),
        (c.P_BUCKET_S, "bucket_s"),
        (c.P_WIN_HI, "window_high"),
        (c.P_WIN_HYST, "window_hysteresis"),
        (c.P_DAY_LIMIT, "daily_limit"),
        (c.P_DAY_MAX, "daily_max"),
        (c.P_MIN_SAMPLES, "min_samples"),
        (c.P_RATE_RISE, "rate_rise"),
        (c.P_RATE_FALL, "rate_fall"),
        (c.P_RATE_SPAN, "rate_span_s"),
    ]:
        p[column] = getattr(lim, attr)
    return p


def _reload(array: np.ndarray) -> np.ndarray:
    """A restart: the state goes through the JSON the gateway saves it as."""
    return np.array(json.loads(json.dumps(array.tolist())), dtype=array.dtype).reshape(array.shape)


@settings(max_examples=250, deadline=None)
@given(
    slots=st.lists(limits, min_size=1, max_size=3),
    stream=st.lists(st.tuples(st.integers(0, 2), value, step), max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=3),
    tz_hours=st.sampled_from([0.0, 8.0, -5.0]),
)
def test_channel_kernel_agrees_with_its_twin(slots, stream, cuts, tz_hours) -> None:  # type: ignore[no-untyped-def]
    n = len(slots)
    twins = [ChannelTwin(limits=lim) for lim in slots]
    params = np.array([_params(lim) for lim in slots])
    state = np.array([c.initial_state_row() for _ in slots])
    offset = tz_hours * 3600.0
    t = 1_700_000_000.0
    readings: list[tuple[int, float, float]] = []
    for which, v, dt in stream:
        t += dt
        readings.append((which % n, v, t))
    boundaries = sorted({0, len(readings), *(min(x, len(readings)) for x in cuts)})
    for start, end in itertools.pairwise(boundaries):
        batch = readings[start:end]
        expected, judged = [], []
        for k, (slot, v, ts) in enumerate(batch):
            expected += [(k, slot, *change) for change in twins[slot].step(v, ts, offset)]
            judged.append(not math.isnan(v) and twins[slot].fault == 0)
        ev = np.zeros((len(batch) * c.N_FACETS, 5), np.int64)
        trusted = np.zeros(len(batch), np.bool_)
        got = channel_step(
            np.array([b[0] for b in batch], np.int32),
            np.array([b[1] for b in batch]),
            np.array([b[2] for b in batch]),
            offset,
            params,
            np.arange(n, dtype=np.int32),
            state,
            trusted,
            ev,
        )
        assert [tuple(row) for row in ev[:got].tolist()] == expected
        assert trusted.tolist() == judged  # what the statistical kinds may learn from
        state = _reload(state)
    for i, twin in enumerate(twins):
        assert state[i, c.S_LEVEL] == twin.level
        assert state[i, c.S_FAULT] == twin.fault
        assert state[i, c.S_DAY_COUNT] == twin.day_count


clause = st.tuples(
    st.integers(0, 2), st.sampled_from([1, -1]), st.one_of(st.integers(0, 2), st.floats(-5, 5))
)


@settings(max_examples=200, deadline=None)
@given(
    rules=st.lists(
        st.tuples(st.lists(clause, min_size=1, max_size=3), st.sampled_from([0.0, 10.0])),
        min_size=1,
        max_size=3,
    ),
    stream=st.lists(
        st.tuples(st.integers(0, 2), st.one_of(st.floats(-5, 5), st.just(NAN)), step), max_size=120
    ),
)
def test_cross_kernel_agrees_with_its_twin(rules, stream) -> None:  # type: ignore[no-untyped-def]
    names = ["a", "b", "c"]
    twins = [
        CrossTwin([(names[a], op, names[b] if isinstance(b, int) else b) for a, op, b in clauses], hold)
        for clauses, hold in rules
    ]
    first, ops, a_idx, b_idx, const = [0], [], [], [], []
    for clauses, _ in rules:
        for a, op, b in clauses:
            ops.append(op)
            a_idx.append(a)
            b_idx.append(b if isinstance(b, int) else -1)
            const.append(NAN if isinstance(b, int) else b)
        first.append(len(ops))
    active, pending = np.zeros(len(rules), np.int8), np.full(len(rules), NAN)
    latest = np.full(3, NAN)
    t = 1_700_000_000.0
    for channel, v, dt in stream:
        t += dt
        latest[channel] = v
        by_name = dict(zip(names, latest.tolist(), strict=True))
        expected = [(0, r, *change) for r, twin in enumerate(twins) for change in twin.check(by_name, t)]
        ev = np.zeros((len(rules), 5), np.int64)
        got = cross_step(
            np.arange(len(rules), dtype=np.int32),
            t,
            latest,
            np.array(first, np.int32),
            np.array(ops, np.int8),
            np.array(a_idx, np.int32),
            np.array(b_idx, np.int32),
            np.array(const),
            np.array([h for _, h in rules]),
            active,
            pending,
            ev,
        )
        assert [tuple(row) for row in ev[:got].tolist()] == expected


@settings(max_examples=100, deadline=None)
@given(
    dims=st.integers(2, 4),
    learn=st.integers(10, 40),
    limit=st.sampled_from([5.0, 15.0]),
    samples=st.lists(
        st.lists(st.one_of(st.floats(-10, 10), st.just(NAN)), min_size=4, max_size=4), max_size=120
    ),
)
def test_hotelling_kernel_agrees_with_its_twin(dims, learn, limit, samples) -> None:  # type: ignore[no-untyped-def]
    twin = HotellingTwin(dims=dims, learn_n=float(learn), limit=limit)
    channels = np.zeros((1, MAX_DIMS), np.int32)
    channels[0, :dims] = np.arange(dims)
    count, mean = np.zeros(1), np.zeros((1, MAX_DIMS))
    comoment, inverse = np.zeros((1, MAX_DIMS**2)), np.zeros((1, MAX_DIMS**2))
    active = np.zeros(1, np.int8)
    for sample in samples:
        x = sample[:dims]
        expected = [(0, 0, *change) for change in twin.step(x)]
        ev = np.zeros((1, 5), np.int64)
        got = hotelling_step(
            np.zeros(1, np.int32),
            np.array(x),
            channels,
            np.array([dims], np.int32),
            np.array([float(learn)]),
            np.array([limit]),
            np.array([0.01]),
            count,
            mean,
            comoment,
            inverse,
            active,
            ev,
        )
        assert [tuple(row) for row in ev[:got].tolist()] == expected
    assert count[0] == twin.count


# Time constants, warm-up, hold, clear and re-baselining short enough to be crossed in a stream.
timing = st.tuples(
    st.sampled_from([60.0, 3_600.0]),
    st.sampled_from([5.0, 60.0]),
    st.sampled_from([0.0, 100.0]),
    st.sampled_from([0.0, 10.0]),
    st.sampled_from([0.0, 60.0]),
    st.sampled_from([30.0, 900.0]),
)


@settings(max_examples=100, deadline=None)
@given(
    dims=st.integers(2, 4),
    timing=timing,
    limit=st.sampled_from([1.5, 4.0]),
    sustain=st.sampled_from([0.0, 5.0, 60.0]),
    rows=st.lists(
        st.tuples(
            st.lists(st.one_of(st.floats(-10, 10), st.floats(50, 60), st.just(NAN)), min_size=4, max_size=4),
            step,
        ),
        max_size=300,
    ),
)
def test_adaptive_kernel_agrees_with_its_twin(dims, timing, limit, sustain, rows) -> None:  # type: ignore[no-untyped-def]
    base, fast, warm, hold, clear, rebase = timing
    row = [float(dims), base, fast, warm, limit, hold, clear, rebase, sustain]
    twin = AdaptiveTwin(params=list(row))
    channels = np.zeros((1, MAX_DIMS), np.int32)
    channels[0, :dims] = np.arange(dims)
    state = np.array([adaptive.initial_state()])
    latest = np.full(dims, NAN)
    t = 1_700_000_000.0
    for x, dt in rows:
        t += max(dt, 0.001)  # one row per timestamp: the kernel judges when the timestamp changes
        expected = [(dims - 1, 0, *change) for change in twin.step(x[:dims], t)]
        ev = np.zeros((1, 4), np.int64)
        got = adaptive_step(
            np.arange(dims, dtype=np.intp),
            np.array(x[:dims]),
            np.full(dims, t),
            latest,
            np.zeros(1, np.int32),
            channels,
            np.array([row]),
            state,
            ev,
        )
        assert [tuple(r) for r in ev[:got].tolist()] == expected
    assert state[0].tolist() == pytest.approx(twin.state, nan_ok=True, rel=0, abs=0)


shift_params = st.builds(
    lambda t, limit, vlimit: [t[0], t[1], t[2], limit, vlimit, t[3], t[4], t[5]],
    timing,
    st.sampled_from([1.0, 4.0]),
    st.sampled_from([1.5, 9.0]),
)
# Levels that jump and spread that changes, so shifts are raised, held, cleared and re-baselined.
shift_value = st.one_of(st.floats(-1, 1), st.floats(20, 30), st.sampled_from([0.0, 0.5, 100.0]), st.just(NAN))


@settings(max_examples=150, deadline=None)
@given(
    slots=st.lists(shift_params, min_size=1, max_size=3),
    stream=st.lists(st.tuples(st.integers(0, 2), shift_value, step), max_size=400),
    cuts=st.lists(st.integers(0, 400), max_size=3),
)
def test_shift_kernel_agrees_with_its_twin(slots, stream, cuts) -> None:  # type: ignore[no-untyped-def]
    twins = [ShiftTwin(params=list(p)) for p in slots]
    state = _per_channel_kernel_as_twins(shift_step, shift.initial_state, slots, twins, stream, cuts)
    for i, twin in enumerate(twins):
        assert state[i].tolist() == pytest.approx(twin.state, nan_ok=True, rel=0, abs=0)


def _per_channel_kernel_as_twins(
    step_: Callable[..., int],
    initial: Callable[[], list[float]],
    slots: Sequence[Sequence[float]],
    twins: Sequence[Any],
    stream: Sequence[tuple[int, float, float]],
    cuts: Sequence[int],
) -> np.ndarray:
    """Feed ``stream`` to a per-channel kind's kernel in batches cut at ``cuts`` (a restart between
    batches) and to each channel's twin; every code change must agree. Returns the kernel's state."""
    n = len(slots)
    params = np.array(slots, dtype=np.float64)
    state = np.array([initial() for _ in slots])
    t = 1_700_000_000.0
    readings: list[tuple[int, float, float]] = []
    for which, v, dt in stream:
        t += dt
        readings.append((which % n, v, t))
    boundaries = sorted({0, len(readings), *(min(x, len(readings)) for x in cuts)})
    for start, end in itertools.pairwise(boundaries):
        batch = readings[start:end]
        expected = [(k, i, *change) for k, (i, v, ts) in enumerate(batch) for change in twins[i].step(v, ts)]
        ev = np.zeros((len(batch), 4), np.int64)
        got = step_(
            np.array([b[0] for b in batch], np.int32),
            np.array([b[1] for b in batch]),
            np.array([b[2] for b in batch]),
            params,
            np.arange(n, dtype=np.int32),
            state,
            ev,
        )
        assert [tuple(row) for row in ev[:got].tolist()] == expected
        state = _reload(state)
    return state


def _batches(rows: list[tuple[str, float, float]], cuts: list[int]) -> list[list[tuple[str, float, float]]]:
    bounds = sorted({0, len(rows), *(min(x, len(rows)) for x in cuts)})
    return [rows[a:b] for a, b in itertools.pairwise(bounds)]


def _feed(kind: DetectorKind, batch: list[tuple[str, float, float]]) -> list[tuple[int, int, int, int]]:
    got = kind.evaluate(
        "d",
        tuple(ch for ch, _, _ in batch),
        np.array([v for _, v, _ in batch]),
        np.array([t for _, _, t in batch]),
    )
    return [(e.k, e.subject, e.old, e.new) for e in got]


@settings(max_examples=100, deadline=None)
@given(
    rules=st.lists(
        st.tuples(st.lists(clause, min_size=1, max_size=3), st.sampled_from([0.0, 10.0])),
        min_size=1,
        max_size=3,
    ),
    stream=st.lists(
        st.tuples(st.integers(0, 2), st.one_of(st.floats(-5, 5), st.just(NAN)), st.floats(0.001, 30)),
        max_size=120,
    ),
    cuts=st.lists(st.integers(0, 120), max_size=3),
)
def test_cross_kind_judges_every_reading_of_a_batch_as_its_twin(rules, stream, cuts) -> None:  # type: ignore[no-untyped-def]
    names = ["a", "b", "c"]
    twins = [
        CrossTwin([(names[a], op, names[b] if isinstance(b, int) else b) for a, op, b in clauses], hold)
        for clauses, hold in rules
    ]
    kind = CrossKind(
        [
            CrossRule(
                device="d",
                category="test.cross",
                hold_s=hold,
                all=tuple(
                    Clause(channel=names[a], op=">" if op > 0 else "<", **_other(names, b))
                    for a, op, b in clauses
                ),
            )
            for clauses, hold in rules
        ]
    )
    t, latest = 1_700_000_000.0, dict.fromkeys(names, NAN)
    rows = []
    for channel, v, dt in stream:
        t += dt
        rows.append((names[channel], v, t))
    for batch in _batches(rows, cuts):
        expected = []
        for k, (channel, v, ts) in enumerate(batch):
            latest[channel] = v
            expected += [
                (k, r, old, new) for r, twin in enumerate(twins) for _, old, new in twin.check(latest, ts)
            ]
        assert _feed(kind, batch) == expected


def _other(names: list[str], b: int | float) -> dict[str, Any]:
    return {"than": names[b]} if isinstance(b, int) else {"value": b}


@settings(max_examples=60, deadline=None)
@given(
    dims=st.integers(2, 4),
    learn=st.integers(10, 40),
    limit=st.sampled_from([5.0, 15.0]),
    samples=st.lists(
        st.lists(st.one_of(st.floats(-10, 10), st.just(NAN)), min_size=4, max_size=4), max_size=120
    ),
    cuts=st.lists(st.integers(0, 480), max_size=3),
)
def test_hotelling_kind_judges_every_row_of_a_backlog_as_its_twin(dims, learn, limit, samples, cuts) -> None:  # type: ignore[no-untyped-def]
    names = ["a", "b", "c", "d"][:dims]
    twin = HotellingTwin(dims=dims, learn_n=float(learn), limit=limit)
    rule = MultivariateRule(
        device="d", channels=tuple(names), method="hotelling", learn_samples=learn, limit=limit, ridge=0.01
    )
    kind = HotellingKind([rule])
    rows = [(names[j], x[j], 1_700_000_000.0 + r) for r, x in enumerate(samples) for j in range(dims)]
    latest = dict.fromkeys(names, NAN)
    for batch in _batches(rows, [c_ * dims for c_ in cuts]):
        expected = []
        for k, (channel, v, _) in enumerate(batch):
            latest[channel] = v
            if channel == names[-1]:  # the row is complete: the kind judges it
                expected += [(k, 0, old, new) for _, old, new in twin.step([latest[n] for n in names])]
        assert _feed(kind, batch) == expected


changepoint_params = st.builds(
    lambda t, k, h: [t[0], t[1], t[2], k, h, t[3], t[4], t[5]],
    timing,
    st.sampled_from([0.0, 0.5]),
    st.sampled_from([2.0, 8.0]),
)


@settings(max_examples=150, deadline=None)
@given(
    slots=st.lists(changepoint_params, min_size=1, max_size=3),
    stream=st.lists(st.tuples(st.integers(0, 2), shift_value, step), max_size=400),
    cuts=st.lists(st.integers(0, 400), max_size=3),
)
def test_changepoint_kernel_agrees_with_its_twin(slots, stream, cuts) -> None:  # type: ignore[no-untyped-def]
    twins = [ChangePointTwin(params=list(p)) for p in slots]
    state = _per_channel_kernel_as_twins(
        changepoint_step, changepoint.initial_state, slots, twins, stream, cuts
    )
    for i, twin in enumerate(twins):
        assert state[i].tolist() == pytest.approx(twin.state, nan_ok=True, rel=0, abs=0)


spike_params = st.builds(
    lambda alpha, z, k, h, hampel, warmup, clear: [alpha, z, k, h, hampel, warmup, clear],
    st.sampled_from([0.05, 0.3]),
    st.sampled_from([NAN, 2.0, 4.0]),
    st.sampled_from([0.0, 0.5]),
    st.sampled_from([NAN, 3.0]),
    st.sampled_from([NAN, 2.0]),
    st.sampled_from([8.0, 20.0]),
    st.sampled_from([0.0, 10.0]),
)


def _spike_twins_agree(state: np.ndarray, twins: list[SpikeTwin]) -> None:
    for i, twin in enumerate(twins):
        row = state[i]
        assert row[spike.S_CODE] == twin.code
        assert (row[spike.S_N], row[spike.S_MEAN], row[spike.S_VAR]) == (twin.samples, twin.mean, twin.var)
        assert (row[spike.S_UP], row[spike.S_DOWN]) == (twin.cusum_pos, twin.cusum_neg)


@settings(max_examples=250, deadline=None)
@given(
    slots=st.lists(spike_params, min_size=1, max_size=3),
    stream=st.lists(st.tuples(st.integers(0, 2), value, step), max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=3),
)
def test_spike_kernel_agrees_with_its_twin(slots, stream, cuts) -> None:  # type: ignore[no-untyped-def]
    twins = [SpikeTwin(params=list(p)) for p in slots]
    _spike_twins_agree(
        _per_channel_kernel_as_twins(spike_step, spike.initial_state, slots, twins, stream, cuts), twins
    )


@settings(max_examples=100, deadline=None)
@given(
    k=st.sampled_from([1.0, 4.0]),
    clear=st.sampled_from([0.0, 10.0]),
    # quantised readings that mostly repeat (a MAD of 0), now and then a step or a spike
    stream=st.lists(st.sampled_from([0] * 12 + [1, -1, 2, 30, -30, None]), min_size=40, max_size=200),
    cuts=st.lists(st.integers(0, 200), max_size=3),
)
def test_hampel_floored_at_the_resolution_agrees_with_its_twin(k, clear, stream, cuts) -> None:  # type: ignore[no-untyped-def]
    p = [0.01, NAN, 0.5, NAN, k, 8.0, clear]
    twins = [SpikeTwin(params=p)]
    readings = [(0, NAN if x is None else 20.0 + 0.1 * x, 1.0) for x in stream]
    _spike_twins_agree(
        _per_channel_kernel_as_twins(spike_step, spike.initial_state, [p], twins, readings, cuts), twins
    )


recent_slot = st.tuples(
    st.sampled_from([math.inf, 100.0]),  # high
    st.sampled_from([-math.inf, 10.0]),  # low
    st.sampled_from([0.0, 1.0, -1.0]),  # an open alarm: high, low, or none
    st.sampled_from([0.0, 5.0]),  # its step
)


@settings(max_examples=150, deadline=None)
@given(
    slots=st.lists(recent_slot, min_size=1, max_size=3),
    stream=st.lists(st.tuples(st.integers(0, 2), value, st.sampled_from([0, 0, 0, 2]), step), max_size=200),
    cuts=st.lists(st.integers(0, 200), max_size=3),
)
def test_recent_kernel_agrees_with_its_twin(slots, stream, cuts) -> None:  # type: ignore[no-untyped-def]
    n, ring = len(slots), 4
    state = np.array([recent.initial_row(high, low) for high, low, _, _ in slots])
    for i, (_, _, sign, step_) in enumerate(slots):
        state[i, recent.SIGN], state[i, recent.STEP] = sign, step_
        state[i, recent.PEAK] = state[i, recent.PUBLISHED] = 50.0 * sign
    twins = [recent.RecentTwin(state[i].tolist(), [NAN] * ring, [NAN] * ring) for i in range(n)]
    ring_value, ring_ts = np.full((n, ring), NAN), np.full((n, ring), NAN)
    t = 1_700_000_000.0
    readings: list[tuple[int, float, int, float]] = []
    for which, v, flag, dt in stream:
        t += dt
        readings.append((which % n, v, flag, t))
    bounds = sorted({0, len(readings), *(min(x, len(readings)) for x in cuts)})
    for batch in (readings[a:b] for a, b in itertools.pairwise(bounds)):
        expected: list[int] = []
        for i, v, flag, ts in batch:
            if twins[i].step(v, flag, ts, 30.0) and i not in expected:
                expected.append(i)
        moved = np.zeros(n, np.intp)
        got = recent.recent_step(
            np.array([b[0] for b in batch], np.intp),
            np.arange(len(batch), dtype=np.intp),
            np.array([b[1] for b in batch]),
            np.array([b[2] for b in batch], np.uint8),
            np.array([b[3] for b in batch]),
            30.0,
            state,
            ring_value,
            ring_ts,
            moved,
        )
        assert moved[:got].tolist() == expected
        for twin in twins:  # the events layer publishes the new peaks it was told of
            if (
                twin.row[recent.SIGN] != 0
                and twin.row[recent.PEAK] >= twin.row[recent.PUBLISHED] + twin.row[recent.STEP]
            ):
                twin.row[recent.PUBLISHED] = twin.row[recent.PEAK]
        for i in expected:
            state[i, recent.PUBLISHED] = state[i, recent.PEAK]
    for i, twin in enumerate(twins):
        assert state[i].tolist() == pytest.approx(twin.row, nan_ok=True, rel=0, abs=0)
        assert ring_value[i].tolist() == pytest.approx(twin.ring_value, nan_ok=True, rel=0, abs=0)
        assert ring_ts[i].tolist() == pytest.approx(twin.ring_ts, nan_ok=True, rel=0, abs=0)
