"""The outbox stays bounded, survives a damaged file and a full disk, and says what it dropped."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.outbox import NOTICES_TOPIC, Outbox, Priority
from gateway.outbox.store import ROW_OVERHEAD

PADDING = "x" * 1000


def _notices(box: Outbox) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in box.peek(10_000) if m.topic == NOTICES_TOPIC]


def test_full_buffer_sheds_oldest_telemetry_keeps_events_reports_gap(tmp_path: Path) -> None:
    box = Outbox(tmp_path, "gw-1", max_bytes=64 * 1024)
    event_seqs = [box.enqueue(Priority.EVENT, "events", {"n": 0})]
    for n in range(200):
        box.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": n, "pad": PADDING})
        if n % 50 == 0:
            event_seqs.append(box.enqueue(Priority.EVENT, "events", {"n": n}))
    assert box.bytes_used <= 64 * 1024

    queued = [json.loads(m.payload) for m in box.peek(10_000)]
    assert [p["seq"] for p in queued if "pad" not in p and "notice" not in p] == event_seqs
    kept = [p["n"] for p in queued if "pad" in p]
    assert kept == list(range(200 - len(kept), 200)), "the newest telemetry is kept, in order"
    gaps = [p for p in queued if p.get("notice") == "gap"]
    assert sum(g["dropped"] for g in gaps) == 200 - len(kept)
    assert {g["kind"] for g in gaps} == {"telemetry"}
    assert {g["reason"] for g in gaps} == {"buffer full"}
    assert all(g["topics"] == {"telemetry/d": g["dropped"]} and g["from"] <= g["to"] for g in gaps)
    box.close()


def test_byte_count_follows_acks_and_restarts(tmp_path: Path) -> None:
    box = Outbox(tmp_path, "gw-1")
    for n in range(10):
        box.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": n})
    used = box.bytes_used
    box.ack_many(m.id for m in box.peek(4))
    assert box.pending() == 6 and len(box.peek(100)) == 6, "acknowledged: never sent again"
    box.write_back()  # the deletes wait for the next commit or this once-a-second call
    assert 0 < box.bytes_used < used
    left = box.bytes_used
    box.close()
    box = Outbox(tmp_path, "gw-1")
    assert box.bytes_used == left and box.pending() == 6
    box.ack_many(m.id for m in box.peek(3))
    box.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": 10})  # deletes ride on this commit
    assert box.pending() == 4 and box.bytes_used < left
    box.ack_many(m.id for m in box.peek(100))
    box.close()  # a clean stop deletes what the broker has
    box = Outbox(tmp_path, "gw-1")
    assert box.bytes_used == 0 and box.pending() == 0 and ROW_OVERHEAD > 0
    box.close()


def test_an_unreadable_database_is_moved_aside_and_the_reset_reported(tmp_path: Path) -> None:
    box = Outbox(tmp_path, "gw-1")
    last = box.enqueue(Priority.EVENT, "events", {"n": 1})
    box.close()
    (tmp_path / "outbox.sqlite3").write_bytes(b"this is no SQLite database" * 200)

    box = Outbox(tmp_path, "gw-1")
    [notice] = _notices(box)
    assert notice["notice"] == "outbox_reset"
    assert "not a database" in str(notice["reason"])
    moved = tmp_path / str(notice["moved_to"])
    assert moved.exists() and moved.read_bytes().startswith(b"this is no SQLite")
    assert int(str(notice["seq"])) > last, "a new message never reuses an old seq"
    assert box.enqueue(Priority.EVENT, "events", {"n": 2}) > int(str(notice["seq"]))
    box.close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs; skips where mounting is not permitted (needs root)."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    where = tmp_path / f"tiny-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_sheds_telemetry_holds_events_and_reports_it(tiny_disk: Path) -> None:
    box = Outbox(tiny_disk, "gw-1", max_bytes=512 * 1024 * 1024)
    for n in range(5000):
        box.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": n, "pad": PADDING})
        if box.peek(1)[0].topic == NOTICES_TOPIC:
            break
    else:
        pytest.fail("the 1 MiB disk never filled up")
    [full] = _notices(box)
    assert full["notice"] == "storage_full"

    event_seq = box.enqueue(Priority.EVENT, "events", {"state": "raised"})
    queued = box.peek(10_000)
    assert [json.loads(m.payload)["seq"] for m in queued[:2]] == [full["seq"], event_seq]
    assert box.pending() >= 2

    published = []
    while box.pending() > 0:  # the broker takes everything: rows are deleted, pages freed
        sent = box.peek(500)
        published += [json.loads(m.payload) for m in sent]
        box.ack_many(m.id for m in sent)
    box.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": -1})
    published += [json.loads(m.payload) for m in box.peek(10_000)]
    assert event_seq in [p["seq"] for p in published]
    gaps = [p for p in published if p.get("notice") == "gap"]
    assert gaps and {(g["reason"], g["kind"]) for g in gaps} == {("disk full", "telemetry")}
    sent_telemetry = {p["n"] for p in published if "n" in p and p["n"] >= 0}
    assert sum(int(g["dropped"]) for g in gaps) == n + 1 - len(sent_telemetry), "every loss counted"
    box.close()
