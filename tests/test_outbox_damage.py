"""Every way the outbox file can be damaged takes one recovery path.

The ground truth is what the test published before the damage: seqs handed
out, bd_seq, the open event. After the damage the outbox must say so, go on
above every seq handed out, keep bd_seq going, and give the open event back.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker
from gateway.config.models import GatewayIdentity
from gateway.events.alarms import EVENTS_TOPIC
from gateway.events.devices import DeviceEvents
from gateway.outbox import NOTICES_TOPIC, Outbox, Priority
from gateway.outbox.anchor import FLOOR_FILE, Anchor
from tests.helpers import Received, Subscriber, running_gateway

DB = "outbox.sqlite3"
IDENTITY = GatewayIdentity(id="gw-1", site="Test site", grid_cell="330106001001")


def _garbage(state: Path) -> None:
    (state / DB).write_bytes(b"this is no SQLite database" * 200)


def _empty(state: Path) -> None:
    (state / DB).write_bytes(b"")


def _missing(state: Path) -> None:
    (state / DB).unlink()


def _truncated(state: Path) -> None:
    data = (state / DB).read_bytes()
    (state / DB).write_bytes(data[: len(data) // 3])


def _pages_overwritten(state: Path) -> None:
    data = bytearray((state / DB).read_bytes())
    data[4096:8192] = b"\xa5" * 4096  # a torn page in the middle of the file
    (state / DB).write_bytes(bytes(data))


def _sequence_lost(state: Path) -> None:
    db = sqlite3.connect(state / DB)
    db.execute("DELETE FROM kv")
    db.commit()
    db.close()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "garbage": _garbage,
    "empty": _empty,
    "missing": _missing,
    "truncated": _truncated,
    "page-overwritten": _pages_overwritten,
    "sequence-lost": _sequence_lost,
}


def _published_before(state: Path) -> tuple[int, int, str]:
    """An outbox that sent messages, made connections and has an open event; (last seq, bd_seq, event id)."""
    box = Outbox(state, "gw-1")
    bd_seq = 0
    for _ in range(3):
        bd_seq = box.next_bd_seq()
    events = DeviceEvents(IDENTITY, box, ["dust-01"])
    events.raise_event("dust-01", "offline", "no answer", ts=1.0e9, hold_s=3.0)
    [event] = [json.loads(m.payload) for m in box.peek(100) if m.topic == EVENTS_TOPIC]
    last = 0
    for n in range(300):  # enough rows for several pages
        last = box.enqueue(Priority.TELEMETRY, "telemetry/dust-01", {"n": n, "pad": "x" * 200})
    box.write_back()  # the periodic copy of kv outside the database
    box.close()
    return last, bd_seq, event["event_id"]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_every_damaged_outbox_is_reported_continues_seq_and_bd_seq_and_keeps_open_events(
    tmp_path: Path, damage: str
) -> None:
    last, bd_seq, event_id = _published_before(tmp_path)
    DAMAGE[damage](tmp_path)

    box = Outbox(tmp_path, "gw-1")
    queued = [json.loads(m.payload) for m in box.peek(10_000)]
    notices = [p for p in queued if p.get("notice") == "outbox_reset"]
    assert len(notices) == 1, f"{damage}: one reset notice, got {queued[:3]}"
    [notice] = notices
    assert notice["seq"] > last, "seq never goes back to a value already published"
    assert notice["open_events"] == 1
    if damage == "missing":
        assert notice["moved_to"] is None
    else:
        assert (tmp_path / notice["moved_to"]).exists(), "the damaged file is kept for a technician"
    assert box.next_bd_seq() == bd_seq + 1, "bd_seq goes on"
    DeviceEvents(IDENTITY, box, ["dust-01"])  # the gateway starting up on the fresh outbox
    [again] = [json.loads(m.payload) for m in box.peek(10_000) if m.topic == EVENTS_TOPIC]
    assert again["event_id"] == event_id and again["seq"] > notice["seq"]
    assert again["recovered"] is True and again["state"] == "updated"
    kept = box.kv_items("device/")["device/dust-01"]
    assert json.loads(kept)["event_id"] == event_id and "recovered" not in kept, "open, flag not kept"
    box.close()


def test_a_healthy_outbox_is_not_reset_and_seq_goes_on_by_one(tmp_path: Path) -> None:
    last, _, _ = _published_before(tmp_path)
    box = Outbox(tmp_path, "gw-1")
    assert not box.recovered
    assert box.enqueue(Priority.EVENT, EVENTS_TOPIC, {"n": 1}) == last + 1
    assert not [m for m in box.peek(10_000) if m.topic == NOTICES_TOPIC]
    box.close()


def test_the_floor_survives_a_torn_write_of_one_slot(tmp_path: Path) -> None:
    anchor = Anchor(tmp_path)
    anchor.claim(10)
    anchor.claim(2000)  # generation 2: the first slot (the file was made with generation 1 in both)
    floor = anchor.seq_floor
    data = bytearray((tmp_path / FLOOR_FILE).read_bytes())
    data[0:8] = b"\xff" * 8  # the newest slot is spoiled
    (tmp_path / FLOOR_FILE).write_bytes(bytes(data))
    again = Anchor(tmp_path)
    assert 10 < again.seq_floor < floor, "the older slot is used, and it still covers seq 10"


def test_twice_damaged_still_never_goes_back(tmp_path: Path) -> None:
    _published_before(tmp_path)
    _garbage(tmp_path)
    box = Outbox(tmp_path, "gw-1")
    first = max(json.loads(m.payload)["seq"] for m in box.peek(10_000))
    for n in range(2500):  # past a whole reserved block
        first = box.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": n})
    box.close()
    _empty(tmp_path)
    box = Outbox(tmp_path, "gw-1")
    [notice] = [json.loads(m.payload) for m in box.peek(10_000) if m.topic == NOTICES_TOPIC]
    assert notice["seq"] > first
    box.close()


async def test_an_open_alarm_survives_a_damaged_outbox_and_clears_with_its_id(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    config = make_config(broker.port, dust_monitor.port)
    dust_monitor.set("pm10", 300.0)
    async with running_gateway(config):
        raised = (await subscriber.wait_for(_event("raised"))).payload
    last = max(m.payload["seq"] for m in subscriber.received)
    _garbage(config.storage.directory)
    seen = len(subscriber.received)
    async with running_gateway(config):
        reset = await subscriber.wait_for(lambda m: m.payload.get("notice") == "outbox_reset", after=seen)
        again = (await subscriber.wait_for(_event("updated"), after=seen)).payload
        dust_monitor.set("pm10", 20.0)
        cleared = (await subscriber.wait_for(_event("cleared"), after=seen)).payload
    assert reset.payload["seq"] > last and reset.payload["open_events"] == 1
    assert again["event_id"] == raised["event_id"] and again["recovered"] is True
    assert cleared["event_id"] == raised["event_id"], "the command center can close the alarm it has"
    births = [
        m.payload
        for m in subscriber.received
        if m.topic.endswith("/state") and m.payload["state"] == "online"
    ]
    assert births[-1]["bd_seq"] == births[0]["bd_seq"] + 1, "bd_seq goes on across the reset"


def _event(state: str) -> Callable[[Received], bool]:
    return lambda m: m.topic.endswith("/events") and m.payload["state"] == state
