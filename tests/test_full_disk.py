"""A full disk is a state the gateway lives through (no root needed: SQLite's max_page_count).

The disk is made to refuse the outbox's writes while alarms the test schedules
keep coming; events must reach the command center all the same (held in
memory), health must say so, and when space returns the gateway recovers by
itself and reports what it shed. The real small filesystem is in
tests/test_chaos_disk.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from drivers.simulators.modbus_device import SimulatedModbusDevice
from gateway.detect.engine import DetectionEngine
from gateway.detect.persist import STATE_FILE, save_state
from gateway.outbox import Outbox, Priority
from tests.chaos_tools import (
    AlarmSchedule,
    assert_redeliveries_identical,
    dropped_in_gaps,
    explain_losses,
    losses,
    tally,
)
from tests.helpers import running_gateway
from tests.uplink_peers import DurableSubscriber, persistent_broker

UNLIMITED = 1_073_741_823


def _fill(box: Outbox) -> None:
    """From now on the database may not grow: only pages freed by acknowledged rows are reused."""
    db = box._db
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    db.execute(f"PRAGMA max_page_count = {pages}")


def _fill_until_refused(box: Outbox, priority: Priority, topic: str) -> None:
    """Messages of ``priority`` until the outbox's disk refuses one."""
    box.enqueue(priority, topic, {"pad": "x" * 5000})
    _fill(box)
    for _ in range(200):  # until the pages are gone
        box.enqueue(priority, topic, {"pad": "x" * 2000})
        if box.disk_full:
            return
    raise AssertionError("the disk never refused a write")


def _make_room(box: Outbox) -> None:
    box._db.execute(f"PRAGMA max_page_count = {UNLIMITED}")


async def _until(done, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_events_health_and_notices_get_through_a_full_disk_and_it_recovers_by_itself(
    tmp_path: Path, dust_monitor: SimulatedModbusDevice, make_config
) -> None:  # type: ignore[no-untyped-def]
    with persistent_broker(tmp_path / "broker") as broker:
        config = make_config(broker.port, dust_monitor.port, extra="[detection]\nstate_save_s = 1\n")
        root = f"{config.uplink.topic_prefix}/{config.gateway.id}"
        async with DurableSubscriber(broker.port, f"{root}/#") as cc:
            async with running_gateway(config) as daemon:
                box = daemon.outbox
                assert box is not None
                await cc.wait_until(lambda: cc.seqs("/telemetry/dust-01"), timeout=60)
                broker.stop()
                schedule = AlarmSchedule(dust_monitor)
                async with schedule.running():
                    await asyncio.sleep(1.0)  # some backlog on disk first
                    _fill(box)
                    await _until(lambda: box.disk_full)
                    await _until(lambda: len(schedule.phases) >= 4)
                    broker.start()  # the disk is still full: what is held in memory goes out
                    await cc.wait_until(lambda: _health(cc, "full"), timeout=60)
                    await cc.wait_until(lambda: _notices(cc, "storage_full"), timeout=30)
                    await _until(lambda: len(schedule.phases) >= 7)
                # Either still full, or the freed pages took what was held and it all went out.
                await _until(lambda: box.disk_full or box.pending() == 0)
                _fill(box)  # freed pages were reused meanwhile: make sure it is still full
                space_back = time.monotonic()
                _make_room(box)
                await cc.wait_until(
                    lambda: tally(cc.received, [schedule]).cleared == len(schedule.phases), timeout=60
                )
                await cc.wait_until(lambda: _notices(cc, "gap"), timeout=30)
                delivered = time.monotonic() - space_back
                await cc.wait_until(lambda: _health(cc, "ok", after=space_back), timeout=30)
                assert not box.disk_full
                await _until(lambda: box.pending() == 0)  # the telemetry backlog too
                await cc.wait_until(
                    lambda: len(losses(cc.received)) == dropped_in_gaps(cc.received),
                    why=explain_losses,
                    timeout=30,
                )
            # After a graceful stop even the will of the last connection is published:
            await cc.wait_until(
                lambda: len(tally(cc.received, []).holes) == dropped_in_gaps(cc.received), why=explain_losses
            )
        result = tally(cc.received, [schedule])
        print(f"\nfull disk (max_page_count): {result.line()}; delivered {delivered:.2f} s after space back")
        assert result.raised == result.due == result.cleared, result.unmatched
        assert_redeliveries_identical(cc.received)
        gaps = [p for t, p in cc.received if t.endswith("/notices") and p["notice"] == "gap"]
        assert {g["reason"] for g in gaps} == {"disk full"}
        assert {g["kind"] for g in gaps} <= {"telemetry", "state"}, "no event is ever dropped"
        print(f"seq holes {len(result.holes)}, each a message reported dropped in a gap notice")


def _health(cc: DurableSubscriber, storage: str, after: float = 0.0) -> bool:
    wall_after = time.time() - (time.monotonic() - after) if after else 0.0
    return any(
        t.endswith("/health") and p["storage"] == storage and _ts(p["ts"]) >= wall_after
        for t, p in cc.received
    )


def _ts(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _notices(cc: DurableSubscriber, kind: str) -> list[dict[str, object]]:
    return [p for t, p in cc.received if t.endswith("/notices") and p["notice"] == kind]


def test_a_state_save_on_a_full_disk_keeps_the_last_copy_and_leaves_nothing_half_written(
    tmp_path: Path,
) -> None:
    engine = DetectionEngine([], [], [])
    assert save_state(tmp_path, engine) is None
    saved = (tmp_path / STATE_FILE).read_text()
    (tmp_path / "detection-state.tmp").symlink_to("/dev/full")  # every write: ENOSPC, no root needed
    error = save_state(tmp_path, engine)
    assert error is not None and error.errno == 28
    assert (tmp_path / STATE_FILE).read_text() == saved
    assert not (tmp_path / "detection-state.tmp").exists()
    json.loads(saved)


def test_held_kv_changes_reach_the_disk_with_write_back(tmp_path: Path) -> None:
    box = Outbox(tmp_path, "gw-1")
    _fill_until_refused(box, Priority.TELEMETRY, "telemetry/d")
    box.enqueue(Priority.EVENT, "events", {"state": "raised"}, kv={"alarm/x": '{"event_id": "x"}'})
    assert box.kv_items("alarm/") == {"alarm/x": '{"event_id": "x"}'}, "held, and seen as stored"
    _make_room(box)
    box.write_back()
    assert not box.disk_full
    box.close()
    again = Outbox(tmp_path, "gw-1")
    assert again.kv_items("alarm/") == {"alarm/x": '{"event_id": "x"}'}
    assert any(json.loads(m.payload).get("state") == "raised" for m in again.peek(1000))
    again.close()


def test_a_held_state_superseded_while_in_flight_is_not_reported_lost(tmp_path: Path) -> None:
    """Only the latest retained state of a topic is held on a full disk; the one it replaces is a
    gap, unless the broker already had it (seen once in CI: a delivered health counted as dropped)."""
    box = Outbox(tmp_path, "gw-1")
    _fill_until_refused(box, Priority.EVENT, "events")  # no telemetry to shed: the disk stays full
    box.enqueue(Priority.STATE, "health", {"n": 1}, retain=True)
    in_flight = [m for m in box.peek(1000) if m.topic == "health"]  # handed to the broker
    box.enqueue(Priority.STATE, "status/d", {"n": 1}, retain=True)
    box.enqueue(Priority.STATE, "health", {"n": 2}, retain=True)
    box.enqueue(Priority.STATE, "status/d", {"n": 2}, retain=True)  # the first never left: a gap
    box.ack_many(m.id for m in in_flight)
    _make_room(box)
    box.write_back()
    waiting = [json.loads(m.payload) for m in box.peek(1000)]
    assert [p["n"] for p in waiting if "n" in p] == [2, 2], "the latest of each topic"
    state_gaps = [p for p in waiting if p.get("notice") == "gap" and p["kind"] == "state"]
    assert [g["topics"] for g in state_gaps] == [{"status/d": 1}]
    box.close()


def test_telemetry_in_flight_when_the_buffer_overflows_is_kept_not_reported_lost(tmp_path: Path) -> None:
    """Shedding takes the oldest telemetry, which is what the uplink sends first: a row already sent
    may reach the broker, so it is kept until its PUBACK, and a gap counts only what never leaves."""
    box = Outbox(tmp_path, "gw-1", max_bytes=30_000)
    seqs = [box.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": 0, "pad": "x" * 1000})]
    in_flight = box.peek(1)
    for n in range(1, 80):
        seqs.append(box.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": n, "pad": "x" * 1000}))
    box.ack_many(m.id for m in in_flight)
    waiting = [json.loads(m.payload) for m in box.peek(10_000)]
    delivered = {json.loads(m.payload)["seq"] for m in in_flight} | {p["seq"] for p in waiting}
    dropped = sum(p["dropped"] for p in waiting if p.get("notice") == "gap")
    assert dropped > 0, "the buffer overflowed"
    assert seqs[0] in delivered
    assert dropped == len(set(seqs) - delivered)
    box.close()
