"""SQLite (WAL) outbox: a message is on disk before it is published.

Rows leave the outbox only when the broker has acknowledged them (QoS 1), in
priority order (events, then state, then telemetry) and, within a priority,
in the order they were accepted. Every message gets the next value of a
per-gateway ``seq`` that is stored in the same transaction, so it survives
restarts and a subscriber can see gaps.

The same transaction may update small ``kv`` entries (open alarms), so what
was published and what the gateway remembers never disagree after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from gateway.errors import OutboxError

_SCHEMA = """
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


class Priority(IntEnum):
    """Lower drains first."""

    EVENT = 0
    STATE = 1
    TELEMETRY = 2


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    topic: str
    payload: bytes
    retain: bool


class Outbox:
    """The durable queue. ``topic`` is relative to the gateway's topic root."""

    def __init__(self, directory: Path, gateway_id: str) -> None:
        self.path = Path(directory) / "outbox.sqlite3"
        self.gateway_id = gateway_id
        self.wakeup = asyncio.Event()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._seq = int(self._kv_get("seq") or 0)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open the outbox at {self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def enqueue(
        self,
        priority: Priority,
        topic: str,
        body: Mapping[str, Any],
        *,
        retain: bool = False,
        kv: Mapping[str, str | None] | None = None,
    ) -> int:
        """Commit one message (and ``kv`` changes, None deletes) durably; return its seq."""
        return self.enqueue_many([(priority, topic, body, retain)], kv=kv)[0]

    def enqueue_many(
        self,
        items: Iterable[tuple[Priority, str, Mapping[str, Any], bool]],
        *,
        kv: Mapping[str, str | None] | None = None,
    ) -> list[int]:
        """Commit several messages in one transaction; return their seqs."""
        now = time.time()
        seqs: list[int] = []
        try:
            with self._transaction():
                seq = self._seq
                for priority, topic, body, retain in items:
                    seq += 1
                    payload = self.envelope(body, seq)
                    self._db.execute(
                        "INSERT INTO messages (priority, topic, payload, retain, created)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (int(priority), topic, payload, int(retain), now),
                    )
                    seqs.append(seq)
                self._kv_put("seq", str(seq))
                for key, value in (kv or {}).items():
                    self._kv_put(key, value)
            self._seq = seq
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot store {topic!r} in {self.path}: {exc}") from exc
        self.wakeup.set()
        return seqs

    def reserve_seq(self) -> int:
        """A seq for a message that bypasses the queue (birth, Last Will), stored durably."""
        try:
            with self._transaction():
                self._kv_put("seq", str(self._seq + 1))
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot store the sequence number in {self.path}: {exc}") from exc
        self._seq += 1
        return self._seq

    def envelope(self, body: Mapping[str, Any], seq: int) -> bytes:
        """The JSON payload: the gateway id and seq first, then the body."""
        message = {"gateway": self.gateway_id, "seq": seq, **body}
        return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()

    def peek(self, limit: int, *, skip: Iterable[int] = ()) -> list[OutboxMessage]:
        """The next messages to send, highest priority and oldest first."""
        skipped = tuple(skip)
        marks = ",".join("?" * len(skipped))
        rows = self._db.execute(
            f"SELECT id, topic, payload, retain FROM messages WHERE id NOT IN ({marks})"
            " ORDER BY priority, id LIMIT ?",
            (*skipped, limit),
        ).fetchall()
        return [OutboxMessage(row[0], row[1], bytes(row[2]), bool(row[3])) for row in rows]

    def ack(self, message_id: int) -> None:
        """The broker has the message: forget it."""
        try:
            self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot delete message {message_id} from {self.path}: {exc}") from exc

    def pending(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM messages").fetchone()[0])

    def kv_items(self, prefix: str) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT key, value FROM kv WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
        ).fetchall()
        return {key: value for key, value in rows}

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _kv_get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _kv_put(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM kv WHERE key = ?", (key,))
        else:
            self._db.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

