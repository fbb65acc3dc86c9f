"""Ground truth for the chaos tests: alarms the test itself schedules, and what to count on arrival.

An ``AlarmSchedule`` drives pm10 of a simulated device over the limit and back
on a fixed period and records when each exceedance began and ended, so what
was due is known without asking the gateway. ``tally`` then matches what a
command center received against it: every exceedance must have its raised
event (and, once over, its clear), none twice; seq holes are listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drivers.simulators.modbus_device import SimulatedModbusDevice

HIGH, LOW = 250.0, 20.0


@dataclass
class AlarmSchedule:
    """pm10 of ``device`` above the limit for ``high_s``, below for ``low_s``, again and again."""

    device: SimulatedModbusDevice
    names: tuple[str, ...] = ("dust-01",)  # gateway devices reading it, each with a pm10 rule
    high_s: float = 0.8
    low_s: float = 0.8
    phases: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of each exceedance

    async def _run(self) -> None:
        while True:
            start = time.time()
            self.device.set("pm10", HIGH)
            try:
                await asyncio.sleep(self.high_s)
            finally:
                self.device.set("pm10", LOW)
            self.phases.append((start, time.time()))  # only whole exceedances are due
            await asyncio.sleep(self.low_s)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AlarmSchedule]:
        task = asyncio.create_task(self._run(), name="alarm-schedule")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@dataclass
class Tally:
    due: int
    raised: int
    cleared: int
    duplicates: int
    holes: list[int]
    unmatched: list[tuple[float, float]]

    def line(self) -> str:
        return (
            f"alarms due {self.due}, raised {self.raised}, cleared {self.cleared}, "
            f"duplicates {self.duplicates}, seq holes {len(self.holes)}"
        )


def tally(
    received: Iterable[tuple[str, dict[str, Any]]],
    schedules: Iterable[AlarmSchedule],
    *,
    slack_s: float = 0.3,
) -> Tally:
    """Match received events against the exceedances the schedules drove."""
    messages = list(received)
    by_seq: dict[int, dict[str, Any]] = {}
    duplicates = 0
    for topic, payload in messages:
        seq = payload["seq"]
        if seq in by_seq and topic.endswith("/events"):
            duplicates += 1
        by_seq.setdefault(seq, payload)
    seqs = sorted(by_seq)
    holes = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs)) if seqs else []
    events = [p for t, p in messages if t.endswith("/events") and p.get("category") == "env.dust.pm10"]
    due = raised = cleared = 0
    unmatched: list[tuple[float, float]] = []
    for schedule in schedules:
        for name in schedule.names:
            mine = [e for e in events if e["device"] == name]
            raises = {e["event_id"]: _epoch(e["raised_at"]) for e in mine if e["state"] == "raised"}
            clears = {e["event_id"] for e in mine if e["state"] == "cleared"}
            for start, end in schedule.phases:
                due += 1
                ids = [i for i, at in raises.items() if start - slack_s <= at <= end + slack_s]
                if ids:
                    raised += 1
                    cleared += any(i in clears for i in ids)
                else:
                    unmatched.append((start, end))
    return Tally(due, raised, cleared, duplicates, holes, unmatched)


def dropped_in_gaps(received: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """How many messages the gateway said it dropped (gap notices, each counted once)."""
    gaps = {p["seq"]: p for t, p in received if t.endswith("/notices") and p.get("notice") == "gap"}
    return sum(int(g["dropped"]) for g in gaps.values())


def assert_redeliveries_identical(received: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """A message that arrives twice is a re-delivery: the same seq is the same message."""
    by_seq: dict[int, dict[str, Any]] = {}
    for topic, payload in received:
        body = {k: v for k, v in payload.items() if k != "historical"}
        first = by_seq.setdefault(payload["seq"], body)
        assert first == body, f"seq {payload['seq']} on {topic} is two different messages"


def losses(received: Iterable[tuple[str, dict[str, Any]]]) -> set[int]:
    """Seq holes but the Last Will of the live connection, which the latest birth names."""
    messages = list(received)
    births = [p for t, p in messages if t.endswith("/state") and p["state"] == "online"]
    holes = set(tally(messages, []).holes)
    return holes - {births[-1]["will_seq"]} if births else holes


def explain_losses(received: Iterable[tuple[str, dict[str, Any]]]) -> str:
    """Why seq holes and reported drops differ: the holes, their neighbours, the gap notices, the births."""
    messages = list(received)
    by_seq = {p["seq"]: (t.rsplit("/", 2)[-2:], p) for t, p in messages}
    holes = sorted(losses(messages))
    near = {s: by_seq[s][0] for h in holes[:20] for s in (h - 1, h + 1) if s in by_seq}
    gaps = {
        p["seq"]: (p["kind"], p["reason"], p["dropped"], p["topics"])
        for t, p in messages
        if t.endswith("/notices") and p.get("notice") == "gap"
    }
    births = [(p["seq"], p.get("will_seq")) for t, p in messages if t.endswith("/state")]
    return (
        f"{len(holes)} seq hole(s) {holes[:40]}, neighbours {near}; {dropped_in_gaps(messages)} reported"
        f" dropped in gap notices {gaps}; state messages (seq, will_seq) {births}"
    )
