"""Detection figures: kernel throughput vs. the Python twin, per-batch overhead,
compile and cache-load times, and anomaly-detection quality on NAB data.

    python benchmarks/detect_bench.py [--channels 10000] [--nab ../shared/data/nab]

Prints figures; asserts nothing. Throughput is per core: the kernel runs in
one thread and CPU time of that thread is what is divided by.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts.readings import ReadingBatch  # noqa: E402
from gateway.config.rules import (  # noqa: E402
    AnomalyCheck,
    AnomalyMethod,
    HealthCheck,
    MultivariateRule,
    RateCheck,
    ThresholdRule,
    WindowCheck,
)
from gateway.detect import codes as c  # noqa: E402
from gateway.detect import spike  # noqa: E402
from gateway.detect.adaptive import AdaptiveKind, AdaptiveTwin, adaptive_step  # noqa: E402
from gateway.detect.changepoint import ChangePointKind, ChangePointTwin  # noqa: E402
from gateway.detect.channel import channel_step  # noqa: E402
from gateway.detect.engine import DetectionEngine  # noqa: E402
from gateway.detect.layout import channel_params  # noqa: E402
from gateway.detect.perchannel import ChannelKind  # noqa: E402
from gateway.detect.reference import ChannelLimits, ChannelTwin  # noqa: E402
from gateway.detect.shift import ShiftKind, ShiftTwin  # noqa: E402
from gateway.detect.spike import SpikeKind, SpikeTwin  # noqa: E402

T0 = 1_763_800_000.0


def full_rule(device: str, channel: str, variant: int = 0) -> ThresholdRule:
    """Every per-channel check switched on, as a dust PM10 channel would have them."""
    return ThresholdRule(
        device=device,
        channel=channel,
        warning_high=100,
        high=150 + variant,
        critical_high=300,
        low=-1,
        hysteresis=10,
        hold_s=5,
        clear_hold_s=5,
        window=WindowCheck(bucket_s=3600, high=150, daily_limit=80, daily_max=2),
        rate=RateCheck(rise_per_min=50, fall_per_min=50, span_s=60),
        health=HealthCheck(min=0, max=1000, stuck_s=3600, stuck_tolerance=0.01, missing_s=600),
        anomaly=AnomalyCheck(z_limit=6, cusum_h=12, hampel_k=6, warmup=30),
    )


def twin_of(rule: ThresholdRule) -> ChannelTwin:
    p = channel_params(rule)
    lim = ChannelLimits(
        high=(p[c.P_WARN_HI], p[c.P_ALARM_HI], p[c.P_CRIT_HI]),
        low=(p[c.P_WARN_LO], p[c.P_ALARM_LO], p[c.P_CRIT_LO]),
        hysteresis=p[c.P_HYST],
        hold_s=p[c.P_HOLD],
        clear_hold_s=p[c.P_CLEAR_HOLD],
        phys_min=p[c.P_PHYS_MIN],
        phys_max=p[c.P_PHYS_MAX],
        stuck_s=p[c.P_STUCK_S],
        stuck_tol=p[c.P_STUCK_TOL],
        missing_s=p[c.P_MISSING_S],
        bucket_s=p[c.P_BUCKET_S],
        window_high=p[c.P_WIN_HI],
        window_hysteresis=p[c.P_WIN_HYST],
        daily_limit=p[c.P_DAY_LIMIT],
        daily_max=p[c.P_DAY_MAX],
        min_samples=p[c.P_MIN_SAMPLES],
        rate_rise=p[c.P_RATE_RISE],
        rate_fall=p[c.P_RATE_FALL],
        rate_span_s=p[c.P_RATE_SPAN],
    )
    return ChannelTwin(limits=lim)


def throughput(n_channels: int, twin_share: float = 1.0) -> None:
    # 100 distinct rule settings, as 100 profiles would give: rules share parameter rows.
    rules = [full_rule("bench", f"ch{i}", i % 100) for i in range(n_channels)]
    engine = DetectionEngine(rules)
    engine.warm_up()
    rng = np.random.default_rng(1)
    slots = np.arange(n_channels, dtype=np.int32)
    ev = np.empty((n_channels * c.N_FACETS, 5), dtype=np.int64)
    rounds = 200
    values = 60 + rng.normal(0, 5, (rounds, n_channels))
    values[rng.random((rounds, n_channels)) < 0.01] = math.nan
    values[rng.random((rounds, n_channels)) < 0.002] = 400.0
    ts = np.empty(n_channels)
    trusted = np.empty(n_channels, dtype=np.bool_)
    events = 0
    cpu = time.thread_time()
    for r in range(rounds):
        ts.fill(T0 + r * 10.0)
        events += channel_step(
            slots,
            values[r],
            ts,
            28_800.0,
            engine.params,
            engine.param_row,
            engine.state,
            trusted,
            ev,
        )
    kernel_cpu = time.thread_time() - cpu
    kernel_rate = rounds * n_channels / kernel_cpu

    # The twin runs the same stream on the same channels (all rounds, so its detectors
    # warm up too); --twin-share runs it on a fraction of them when time is short.
    n_twins = max(1, int(n_channels * twin_share))
    twins = [twin_of(rule) for rule in rules[:n_twins]]
    cpu = time.thread_time()
    for r in range(rounds):
        t = T0 + r * 10.0
        row = values[r].tolist()
        for i, twin in enumerate(twins):
            twin.step(row[i], t, 28_800.0)
    twin_cpu = time.thread_time() - cpu
    twin_rate = rounds * n_twins / twin_cpu
    print(
        f"rule kernel, {n_channels:,} channels, every limit and health check"
        f" ({rounds} batches, {events:,} changes):"
    )
    print(f"  numba kernel : {kernel_rate / 1e6:8.2f} M channel-updates/s per core")
    print(f"  python twin  : {twin_rate / 1e6:8.4f} M channel-updates/s per core")
    print(f"  ratio        : {kernel_rate / twin_rate:8.0f} x")


def _channel_kind(
    name: str,
    kind: ChannelKind,
    twin: Callable[[list[float]], Any],
    values: np.ndarray,
    twin_share: float,
    warm: tuple[int, float] = (2, 0.0),
) -> None:
    """One per-channel kind's kernel over every channel, one batch of all channels per round.

    ``warm``: the column of its warm-up parameter and a value that lets it judge within the run.
    """
    rounds, n_channels = values.shape
    kind.params[:, warm[0]] = warm[1]
    kind.warm_up()
    slots = np.arange(n_channels, dtype=np.int32)
    ev = np.empty((n_channels, 4), dtype=np.int64)
    ts = np.empty(n_channels)
    events = 0
    step = type(kind).step
    cpu = time.thread_time()
    for r in range(rounds):
        ts.fill(T0 + r * 10.0)
        events += step(slots, values[r], ts, kind.params, kind.param_row, kind.state, ev)
    rate = rounds * n_channels / (time.thread_time() - cpu)
    n_twins = max(1, int(n_channels * twin_share))
    twins = [twin(kind.params[0].tolist()) for _ in range(n_twins)]
    cpu = time.thread_time()
    for r in range(rounds):
        row = values[r].tolist()
        for i, one in enumerate(twins):
            one.step(row[i], T0 + r * 10.0)
    twin_rate = rounds * n_twins / (time.thread_time() - cpu)
    print(f"{name} kernel, {n_channels:,} channels ({rounds} batches, {events:,} changes):")
    print(f"  numba kernel : {rate / 1e6:8.2f} M channel-updates/s per core")
    print(f"  python twin  : {twin_rate / 1e6:8.4f} M channel-updates/s per core")
    print(f"  ratio        : {rate / twin_rate:8.0f} x")


def kind_throughput(n_channels: int, twin_share: float = 1.0) -> None:
    """The registered kinds' kernels: per-channel ones on every channel, adaptive over devices of 4."""
    rng = np.random.default_rng(2)
    rounds = 200
    values = 60 + rng.normal(0, 5, (rounds, n_channels))
    values[rng.random((rounds, n_channels)) < 0.01] = math.nan
    values[:, : n_channels // 10] += np.linspace(0, 40, rounds)[:, None]  # some channels shift
    every: tuple[AnomalyMethod, ...] = ("spike", "shift", "changepoint")
    rules = [
        ThresholdRule(device="bench", channel=f"ch{i}", anomaly=AnomalyCheck(method=every))
        for i in range(n_channels)
    ]
    _channel_kind("shift", ShiftKind(rules), lambda p: ShiftTwin(params=p), values, twin_share)
    _channel_kind(
        "change-point", ChangePointKind(rules), lambda p: ChangePointTwin(params=p), values, twin_share
    )
    spiky = [full_rule("bench", f"ch{i}") for i in range(n_channels)]  # z-score, Hampel and CUSUM
    _channel_kind(
        "spike", SpikeKind(spiky), lambda p: SpikeTwin(params=p), values, twin_share, (spike.P_WARMUP, 30.0)
    )

    p = 4
    devices = n_channels // p
    detectors = [
        MultivariateRule(device=f"d{d}", channels=tuple(f"c{j}" for j in range(p))) for d in range(devices)
    ]
    adaptive = AdaptiveKind(detectors)
    adaptive.warm_up()
    at = np.arange(devices * p, dtype=np.intp)
    chosen = np.arange(devices, dtype=np.int32)
    ev = np.empty((devices, 4), dtype=np.int64)
    # One batch of every device's row per round: the kernel judges each detector once a row.
    cpu = time.thread_time()
    for r in range(rounds):
        adaptive_step(
            at,
            values[r, : devices * p],
            np.full(devices * p, T0 + r * 10.0),
            adaptive.latest,
            chosen,
            adaptive.channels,
            adaptive.params,
            adaptive.state,
            ev,
        )
    rate = rounds * devices * p / (time.thread_time() - cpu)
    twins_a = [
        AdaptiveTwin(params=adaptive.params[0].tolist()) for _ in range(max(1, int(devices * twin_share)))
    ]
    cpu = time.thread_time()
    for r in range(rounds):
        row = values[r].tolist()
        for d, twin_a in enumerate(twins_a):
            twin_a.step(row[d * p : d * p + p], T0 + r * 10.0)
    twin_rate = rounds * len(twins_a) * p / (time.thread_time() - cpu)
    print(f"adaptive multivariate kernel, {devices:,} detectors of {p} channels:")
    print(f"  numba kernel : {rate / 1e6:8.2f} M channel-updates/s per core")
    print(f"  python twin  : {twin_rate / 1e6:8.4f} M channel-updates/s per core")
    print(f"  ratio        : {rate / twin_rate:8.0f} x")


def overhead() -> None:
    print("per-batch overhead (engine.evaluate minus the kernel call alone), median of many:")
    for size in (1, 1_000):
        rules = [full_rule("bench", f"ch{i}") for i in range(size)]
        engine = DetectionEngine(rules)
        engine.warm_up()
        channels = tuple(f"ch{i}" for i in range(size))
        whole, kernel = [], []
        ev = np.empty((size * c.N_FACETS, 5), dtype=np.int64)
        trusted = np.empty(size, dtype=np.bool_)
        slots = np.arange(size, dtype=np.int32)
        for r in range(2_000 if size == 1 else 300):
            batch = ReadingBatch.at("bench", channels, [60.0 + (r % 7)] * size, T0 + r)
            started = time.perf_counter_ns()
            engine.evaluate(batch)
            whole.append(time.perf_counter_ns() - started)
            started = time.perf_counter_ns()
            channel_step(
                slots,
                batch.values,
                batch.ts,
                28_800.0,
                engine.params,
                engine.param_row,
                engine.state,
                trusted,
                ev,
            )
            kernel.append(time.perf_counter_ns() - started)
        w, k = float(np.median(whole)), float(np.median(kernel))
        print(
            f"  batch of {size:>5}: evaluate {w / 1e3:7.1f} µs, kernel {k / 1e3:7.1f} µs,"
            f" overhead {(w - k) / 1e3:6.1f} µs"
        )


_WARM_UP = (
    "import time; t = time.perf_counter(); "
    "from gateway.detect.engine import DetectionEngine; "
    "i = time.perf_counter(); w = DetectionEngine([]).warm_up(); "
    "print(f'{i - t:.3f} {w:.3f}')"
)


def compile_times() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        figures = []
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", _WARM_UP],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            figures.append([float(x) for x in out.stdout.split()])
    (imp_cold, cold), (imp_warm, warm) = figures
    print("kernel compile (all kernels, fresh process):")
    print(f"  cold (empty NUMBA_CACHE_DIR): {cold:6.2f} s  (+ import {imp_cold:.2f} s)")
    print(f"  warm cache                  : {warm:6.2f} s  (+ import {imp_warm:.2f} s)")


def _parse(ts: str) -> float:
    return datetime.fromisoformat(ts.split(".")[0]).replace(tzinfo=timezone.utc).timestamp()


def nab_quality(folder: Path, anomaly: AnomalyCheck | None = None) -> None:
    windows_file = folder / "windows.json"
    if not windows_file.exists():
        print(f"NAB detection quality: no data at {folder} (skipped)")
        return
    windows = json.loads(windows_file.read_text())
    anomaly = anomaly or AnomalyCheck()
    print(f"NAB detection quality with anomaly settings ({anomaly.model_dump()}),")
    print("  first 15 % of each file is learning only; a detection inside a window counts once per window:")
    print(f"  {'file':<42} {'windows':>8} {'found':>6} {'delay (first, h)':>18} {'FP':>5} {'FP/day':>7}")
    totals = [0, 0, 0, 0.0]
    for name, spans in sorted(windows.items()):
        with open(folder / name, newline="") as handle:
            rows = [(_parse(r["timestamp"]), float(r["value"])) for r in csv.DictReader(handle)]
        engine = DetectionEngine([ThresholdRule(device="nab", channel="value", anomaly=anomaly)])
        learn_until = rows[int(len(rows) * 0.15)][0]
        bounds = [(_parse(a), _parse(b)) for a, b in spans]
        found: dict[int, float] = {}
        false_positives = 0
        for t, v in rows:
            for transition in engine.evaluate(ReadingBatch.at("nab", ("value",), [v], t)):
                if not transition.raised or t < learn_until:
                    continue
                inside = [j for j, (a, b) in enumerate(bounds) if a <= t <= b]
                if inside:
                    found.setdefault(inside[0], (t - bounds[inside[0]][0]) / 3600)
                else:
                    false_positives += 1
        days = (rows[-1][0] - learn_until) / 86_400
        delays = ", ".join(f"{found[j]:.1f}" for j in sorted(found)) or "-"
        print(
            f"  {name:<42} {len(bounds):>8} {len(found):>6} {delays:>18} {false_positives:>5}"
            f" {false_positives / days:>7.2f}"
        )
        totals[0] += len(bounds)
        totals[1] += len(found)
        totals[2] += false_positives
        totals[3] += days
    print(
        f"  {'all':<42} {totals[0]:>8} {totals[1]:>6} {'':>18} {totals[2]:>5} {totals[2] / totals[3]:>7.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--twin-share", type=float, default=1.0, help="fraction of channels the twin runs")
    parser.add_argument("--nab", type=Path, default=ROOT.parent / "shared" / "data" / "nab")
    parser.add_argument("--kernels-only", action="store_true", help="throughput only: no compile or NAB runs")
    args = parser.parse_args()
    throughput(args.channels, args.twin_share)
    kind_throughput(args.channels, args.twin_share)
    if args.kernels_only:
        return
    overhead()
    compile_times()
    nab_quality(args.nab)


if __name__ == "__main__":
    main()
