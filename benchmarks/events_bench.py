"""Per-batch cost of the event lifecycle's channel watch (peaks, verify evidence).

Prints microseconds per batch and nanoseconds per reading for 20-channel
batches with one rule per channel, with no alarm open and with every alarm open.

    .venv/bin/python -m benchmarks.events_bench [--batches 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from contracts.readings import ReadingBatch
from gateway.config.rules import ThresholdRule
from gateway.events.watch import ChannelWatch

CHANNELS = tuple(f"ch{i:02d}" for i in range(20))


def _run(watch: ChannelWatch, batches: int) -> float:
    values = np.linspace(10.0, 200.0, len(CHANNELS)).tolist()
    prepared = [ReadingBatch.at("dev", CHANNELS, values, float(i)) for i in range(batches)]
    started = time.perf_counter()
    for batch in prepared:
        watch.update(batch)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20_000)
    args = parser.parse_args()
    rules = [ThresholdRule(device="dev", channel=c, high=150.0, hysteresis=5.0) for c in CHANNELS]
    for label, open_alarms in (("no alarm open", False), ("every alarm open", True)):
        watch = ChannelWatch(rules, samples=16, max_gap_s=60.0)
        if open_alarms:
            for slot in range(len(rules)):
                watch.open(slot, "high", 150.0, 160.0, 0.1)
        _run(watch, 200)  # routes cached, numpy warmed
        seconds = _run(watch, args.batches)
        per_batch = seconds / args.batches
        print(
            f"{label}: {per_batch * 1e6:.1f} µs per 20-reading batch, "
            f"{per_batch / len(CHANNELS) * 1e9:.0f} ns per reading "
            f"({args.batches * len(CHANNELS) / seconds:,.0f} readings/s on one core)"
        )


if __name__ == "__main__":
    main()
