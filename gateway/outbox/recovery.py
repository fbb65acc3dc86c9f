"""Opening the outbox database, and moving an unreadable one aside.

A gateway in a street cabinet loses power at any moment and runs on cheap SD
cards, so a damaged database file is a matter of when, not if. The daemon must
keep running. Every kind of damage takes one path: an unreadable file, an empty
one, a missing one, or one that lost its ``seq`` while the floor says messages
were sent. The file (if any) is kept for a technician, a fresh one is started
with ``seq`` above anything ever published (the floor, see ``anchor``), the
last copy of the key-value table (open events, bd_seq) is put back, and the
caller tells the command center.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.outbox.anchor import Anchor
from gateway.outbox.notices import outbox_reset

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    priority INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_order ON messages (priority, id);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_SIDE_FILES = ("", "-wal", "-shm")
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
SEQ_KEY = "seq"
BD_SEQ_KEY = "uplink/bd_seq"
EVENT_PREFIXES = ("alarm/", "device/")


@dataclass
class Opened:
    """An outbox database ready for use, and what happened on the way."""

    db: sqlite3.Connection
    seq: int
    reset: dict[str, Any] | None = None  # the outbox_reset notice, when it had to start afresh


def open_or_recover(path: Path, anchor: Anchor) -> Opened:
    """Open the database at ``path``; if it is damaged, empty or lost, start a fresh one (see above)."""
    size = path.stat().st_size if path.exists() else None
    moved: Path | None = None
    if size is None and anchor.exists:
        reason = "outbox file is missing"
    elif size == 0 and anchor.exists:
        reason, moved = "outbox file is empty", move_aside(path)
    else:
        try:
            db = connect(path)
            try:  # every row, as the outbox reads them at start: a damaged page anywhere shows here
                db.execute("SELECT sum(length(payload) + length(topic)) FROM messages").fetchone()
            except sqlite3.DatabaseError:
                db.close()
                raise
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc):
                raise
            reason, moved = str(exc), move_aside(path)
        else:
            stored = _kv_get(db, SEQ_KEY)
            if stored is not None or not anchor.exists:
                return Opened(db, int(stored or 0))
            db.close()
            reason, moved = "outbox lost its sequence number", move_aside(path)
    log.error("outbox: %s (%s); starting a fresh one", path, reason)
    db = connect(path)
    # Continue above any seq ever used: the floor, or for an outbox from before
    # the floor existed the time in ms, which no counter can have reached.
    seq = anchor.seq_floor if anchor.exists else int(time.time() * 1000)
    saved = anchor.read_kv()
    saved.pop(SEQ_KEY, None)
    bd_seq = max(int(saved.get(BD_SEQ_KEY, 0)), anchor.bd_seq)
    rows = [*saved.items(), (SEQ_KEY, str(seq)), (BD_SEQ_KEY, str(bd_seq))]
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", rows)
    db.execute("COMMIT")
    events = sum(1 for key in saved if key.startswith(EVENT_PREFIXES))
    notice = outbox_reset(reason, None if moved is None else moved.name, open_events=events)
    return Opened(db, seq, notice)


def is_corrupt(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return (int(code) & 0xFF) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    return not isinstance(exc, sqlite3.OperationalError)


def _kv_get(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def connect(path: Path) -> sqlite3.Connection:
    """Open (or create) the database and prove it readable; sqlite3.DatabaseError if not."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
        # Touch both tables and the index: a damaged page shows up here, at start,
        # rather than in the middle of an outage.
        db.execute("SELECT count(*) FROM kv").fetchone()
        db.execute("SELECT priority, id FROM messages ORDER BY priority, id LIMIT 1").fetchone()
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def move_aside(path: Path) -> Path:
    """Rename the database and its WAL files to ``<name>.corrupt-<time>``; return the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in _SIDE_FILES:
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(Path(f"{target}{suffix}"))
    log.warning("outbox: kept the damaged %s as %s for a technician", path, target)
    return target
