"""Opening the outbox database, and moving an unreadable one aside.

A gateway in a street cabinet loses power at any moment and runs on cheap SD
cards, so a damaged database file is a matter of when, not if. The daemon must
keep running: the damaged file is kept for a technician, a fresh one is
started, and the caller tells the command center.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

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
    log.error("outbox: %s is unreadable; moved it to %s and started a fresh one", path, target)
    return target
