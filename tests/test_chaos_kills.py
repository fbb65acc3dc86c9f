"""kill -9 at random moments under alarm load: every alarm that was due arrives, none differs twice.

The test schedules the exceedances itself. An exceedance is due when it
began and ended while a gateway process was up (from its birth reaching the
command center to the kill); each due one must end with its raised and its
cleared event, whatever happened around it. Seq holes are listed by cause.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

from drivers.simulators.modbus_device import SimulatedModbusDevice
from tests.chaos_tools import AlarmSchedule, assert_redeliveries_identical, tally
from tests.test_chaos import ALARMING, _config, daemon
from tests.uplink_peers import DurableSubscriber, persistent_broker

KILLS = int(os.environ.get("GRIDGATE_CHAOS_KILLS", "6"))


def _births(cc: DurableSubscriber) -> int:
    return sum(1 for t, p in cc.received if t.endswith("/state") and p["state"] == "online")


async def test_random_kills_under_alarm_load_lose_no_due_alarm(
    tmp_path: Path, dust_monitor: SimulatedModbusDevice, topic_prefix: str
) -> None:
    rng = random.Random(12)
    root = f"{topic_prefix}/gw-test-01"
    names = tuple(f"dust-{n:02d}" for n in range(1, ALARMING + 1))
    schedule = AlarmSchedule(dust_monitor, names=names, high_s=0.7, low_s=0.7)
    up: list[tuple[float, float]] = []  # when a gateway process was running
    with persistent_broker(tmp_path / "broker-db") as broker:
        config = tmp_path / "site.toml"
        config.write_text(_config(broker, dust_monitor.port, tmp_path / "state", topic_prefix))
        log = tmp_path / "gateway.log"
        async with DurableSubscriber(broker.port, f"{root}/#") as cc, schedule.running():
            for n in range(KILLS + 1):
                with daemon(config, log) as gateway:
                    await cc.wait_until(lambda n=n: _births(cc) > n, timeout=60)
                    began = time.time()
                    await asyncio.sleep(rng.uniform(1.0, 6.0) if n < KILLS else 5.0)
                    if n < KILLS:
                        gateway.send_signal(signal.SIGKILL)
                        gateway.wait()
                        up.append((began, time.time()))
                        continue
                    due = _due(schedule, up)
                    await cc.wait_until(lambda due=due: _delivered(cc, schedule, due), timeout=60)
                    up.append((began, time.time()))
            await cc.wait_until(lambda: _said(cc, "shutdown"), timeout=30)
    result = tally(cc.received, [_only(schedule, _due(schedule, up[:-1]))])
    print(f"\n{KILLS} kill -9 at random moments: {result.line()}; holes {_explain(cc, result.holes)}")
    assert result.raised == result.due == result.cleared, result.unmatched
    assert_redeliveries_identical(cc.received)


def _due(schedule: AlarmSchedule, up: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Exceedances wholly inside a run, with time for their polls and the clears' flap windows.

    A run that starts during a low phase with the last run's alarm still open clears it only
    once the flap window (0.2 s) has passed: a high that comes sooner is that alarm flapping,
    not a new one, so an exceedance is due from 0.4 s after the run's birth.
    """
    return [
        (start, end)
        for start, end in schedule.phases
        if any(began + 0.4 <= start and end + 0.6 <= killed for began, killed in up)
    ]


def _only(schedule: AlarmSchedule, phases: list[tuple[float, float]]) -> AlarmSchedule:
    return AlarmSchedule(schedule.device, names=schedule.names, phases=list(phases))


def _delivered(cc: DurableSubscriber, schedule: AlarmSchedule, due: list[tuple[float, float]]) -> bool:
    result = tally(cc.received, [_only(schedule, due)])
    return result.cleared == result.due


def _said(cc: DurableSubscriber, reason: str) -> bool:
    return any(t.endswith("/state") and p.get("reason") == reason for t, p in cc.received)


def _explain(cc: DurableSubscriber, holes: list[int]) -> list[str]:
    """Each hole with the topics of the messages either side of it."""
    by_seq = {p["seq"]: t.rsplit("/", 1)[-1] for t, p in cc.received}
    return [f"{h} (between {by_seq.get(h - 1)} and {by_seq.get(h + 1)})" for h in holes]
