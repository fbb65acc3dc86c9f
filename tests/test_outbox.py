"""The outbox keeps order, priority and seq across restarts."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.outbox import Outbox, Priority


def test_seq_survives_a_restart_and_rows_drain_by_priority(tmp_path: Path) -> None:
    box = Outbox(tmp_path, "gw-1")
    box.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": 1})
    box.enqueue(Priority.EVENT, "events", {"n": 2})
    assert box.reserve_seq() == 3
    box.close()

    box = Outbox(tmp_path, "gw-1")
    box.enqueue(Priority.STATE, "devices/d", {"n": 4})
    queued = box.peek(10)
    assert [m.topic for m in queued] == ["events", "devices/d", "telemetry/d"]
    payloads = [json.loads(m.payload) for m in queued]
    expected = [(2, 2, "gw-1"), (4, 4, "gw-1"), (1, 1, "gw-1")]
    assert [(p["seq"], p["n"], p["gateway"]) for p in payloads] == expected
    box.ack(queued[0].id)
    assert box.pending() == 2
    box.close()


def test_key_values_change_in_the_same_transaction_as_the_message(tmp_path: Path) -> None:
    box = Outbox(tmp_path, "gw-1")
    box.enqueue(Priority.EVENT, "events", {"state": "raised"}, kv={"alarm/a": "open"})
    assert box.kv_items("alarm/") == {"alarm/a": "open"}
    box.enqueue(Priority.EVENT, "events", {"state": "cleared"}, kv={"alarm/a": None})
    assert box.kv_items("alarm/") == {}
    box.close()


def test_nan_is_refused_rather_than_published_as_invalid_json(tmp_path: Path) -> None:
    box = Outbox(tmp_path, "gw-1")
    try:
        box.enqueue(Priority.TELEMETRY, "telemetry/d", {"v": float("nan")})
    except ValueError:
        pass
    else:
        raise AssertionError("NaN must not reach the wire")
    assert box.pending() == 0
    box.close()
