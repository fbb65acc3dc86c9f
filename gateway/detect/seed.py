"""Seed learned baselines from known-good history (``gridgate baseline seed --from FILE.csv``).

The history is a CSV file with a header and one reading per line:

    timestamp,device,channel,value
    2026-11-30T08:00:00+08:00,skid,discharge_bar,4.02

``timestamp`` is ISO 8601 (a time without an offset is UTC) or Unix seconds;
each device's lines are in time order. The readings go through the engine as
the daemon would feed them (every detector learns from them, nothing is
published), and the state is saved where the daemon restores it from.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from contracts.errors import ConfigError
from contracts.readings import ReadingBatch
from gateway.detect.engine import DetectionEngine

COLUMNS = ("timestamp", "device", "channel", "value")
BATCH_ROWS = 1_000  # readings of one device per batch: one kernel call each, as a replayed backlog


@dataclass
class Seeded:
    """What a seeding run fed the engine."""

    readings: int = 0
    channels: set[tuple[str, str]] = field(default_factory=set)
    unknown: set[tuple[str, str]] = field(default_factory=set)  # not a channel of the config: skipped
    first: float = math.inf
    last: float = -math.inf


def _timestamp(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def read_history(path: Path, known: set[tuple[str, str]], seeded: Seeded) -> Iterator[ReadingBatch]:
    """Batches of ``path``'s readings, one device at a time, in file order.

    A line that cannot be read raises :class:`ConfigError` naming the file and
    line; ``known`` are the configured (device, channel) pairs.
    """
    source = str(path)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle)
        header = tuple(cell.strip() for cell in next(rows, ()))
        if header[:4] != COLUMNS:
            raise ConfigError(
                source, [f"line 1: the header must be {','.join(COLUMNS)}, not {','.join(header)}"]
            )
        pending: dict[str, list[tuple[str, float, float]]] = {}
        latest: dict[str, tuple[float, int]] = {}
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) < len(COLUMNS):
                raise ConfigError(source, [f"line {line}: {len(row)} column(s), not {','.join(COLUMNS)}"])
            try:
                ts, device, channel, value = _timestamp(row[0]), row[1], row[2], float(row[3])
            except ValueError as exc:
                raise ConfigError(source, [f"line {line}: {exc}"]) from exc
            before = latest.get(device)
            if before is not None and ts < before[0]:
                raise ConfigError(source, [f"line {line}: {device} goes back in time from line {before[1]}"])
            latest[device] = (ts, line)
            if (device, channel) not in known:
                seeded.unknown.add((device, channel))
                continue
            seeded.readings += 1
            seeded.channels.add((device, channel))
            seeded.first, seeded.last = min(seeded.first, ts), max(seeded.last, ts)
            rows_of = pending.setdefault(device, [])
            rows_of.append((channel, value, ts))
            if len(rows_of) >= BATCH_ROWS:
                yield _batch(device, pending.pop(device))
        for device, rows_of in pending.items():
            yield _batch(device, rows_of)


def _batch(device: str, rows: list[tuple[str, float, float]]) -> ReadingBatch:
    return ReadingBatch(
        device=device,
        channels=tuple(r[0] for r in rows),
        values=np.array([r[1] for r in rows], dtype=np.float64),
        ts=np.array([r[2] for r in rows], dtype=np.float64),
        quality=np.zeros(len(rows), dtype=np.uint8),
    )


def seed(engine: DetectionEngine, path: Path, known: set[tuple[str, str]]) -> Seeded:
    """Feed the history in ``path`` through ``engine``; what it raised is forgotten, what it learned kept."""
    seeded = Seeded()
    for batch in read_history(path, known, seeded):
        engine.evaluate(batch)
    engine.restore(())  # which events are open comes from the event store at start, never from history
    return seeded
