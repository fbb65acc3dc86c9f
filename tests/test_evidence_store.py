"""The evidence store keeps pictures within its byte bound and retention, and across a restart."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path

import pytest

from drivers.simulators.jpeg import jpeg
from gateway.evidence.chunks import EvidenceUnavailable, evidence_chunk
from gateway.evidence.store import EvidenceStore


def test_the_oldest_pictures_go_first_when_the_bound_is_reached(tmp_path: Path) -> None:
    pictures = [jpeg(64, 64, seed=i) for i in range(20)]
    bound = sum(len(p) for p in pictures[:5])
    store = EvidenceStore(tmp_path, max_bytes=bound, retention_s=1e9, clock=lambda: 1000.0)
    kept = [store.put("cam-01", 900.0 + i, data) for i, data in enumerate(pictures)]
    assert store.bytes <= bound
    assert sum(f.stat().st_size for f in tmp_path.glob("*.jpg")) == store.bytes
    assert store.get(kept[0].id) is None and store.get(kept[-1].id) is not None
    assert store.dropped == len(pictures) - len(store)


def test_pictures_past_their_retention_are_deleted_and_a_restart_finds_the_rest(tmp_path: Path) -> None:
    now = [1000.0]
    store = EvidenceStore(tmp_path, max_bytes=10**7, retention_s=100.0, clock=lambda: now[0])
    old = store.put("cam-01", 950.0, jpeg(seed=1))
    new = store.put("cam-02", 999.0, jpeg(seed=2))
    (tmp_path / "0000000000999-cam-02-0000000000000000.part").write_bytes(b"cut short")
    now[0] = 1060.0
    store.prune()
    assert store.get(old.id) is None and store.get(new.id) == new
    again = EvidenceStore(tmp_path, max_bytes=10**7, retention_s=100.0, clock=lambda: now[0])
    assert again.get(new.id) == new and len(again) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{new.id}.jpg"]
    assert again.latest("cam-02", since=990.0) == new and again.latest("cam-02", since=999.5) is None


def test_a_picture_is_handed_out_in_chunks_that_add_up_to_its_digest(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, max_bytes=10**7, retention_s=1e9)
    data = jpeg(256, 256, seed=3)
    picture = store.put("cam-01", time.time(), data)
    got, offset = b"", 0
    while offset is not None:
        chunk = evidence_chunk(store, {"evidence_id": picture.id, "offset": offset}, chunk_bytes=1024)
        assert len(base64.b64decode(chunk["data"])) <= 1024
        got += base64.b64decode(chunk["data"])
        offset = chunk["next_offset"]
    assert hashlib.sha256(got).hexdigest() == picture.sha256 and got == data
    with pytest.raises(EvidenceUnavailable, match="no picture"):
        evidence_chunk(store, {"evidence_id": "nope"}, chunk_bytes=1024)
    with pytest.raises(EvidenceUnavailable, match="past the picture"):
        evidence_chunk(store, {"evidence_id": picture.id, "offset": len(data) + 1}, chunk_bytes=1024)
