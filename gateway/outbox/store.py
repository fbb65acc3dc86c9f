"""SQLite (WAL) outbox: a message is on disk before it is published.

Rows leave the outbox only when the broker has acknowledged them (QoS 1), in
priority order (events, then state, then telemetry) and, within a priority,
in the order they were accepted. Every message gets the next value of a
per-gateway ``seq`` that is stored in the same transaction, so it survives
restarts and a subscriber can see gaps.

The same transaction may update small ``kv`` entries (open alarms), so what
was published and what the gateway remembers never disagree after a crash.
The seq floor, bd_seq and a copy of ``kv`` are also kept outside the database
file (``anchor``), so a damaged outbox neither sends seq backwards nor forgets
the open events.

The outbox is bounded in bytes: past ``max_bytes`` the oldest telemetry is
shed first, then state, events last of all, and every shed is reported on the
``notices`` topic as a gap. When the disk itself refuses writes, telemetry and
state are shed and events are held in memory until the disk takes them again
or the broker has them; ``kv`` changes are held likewise. :meth:`write_back`
(called every second by the daemon) writes them as soon as the disk takes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from contracts.errors import OutboxError
from gateway.outbox import recovery
from gateway.outbox.anchor import Anchor
from gateway.outbox.notices import NOTICES_TOPIC, GapLedger, storage_full
from gateway.outbox.recovery import BD_SEQ_KEY, SEQ_KEY

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
ROW_OVERHEAD = 64  # what a row costs beyond topic and payload: ids, index entry, page slack
SHED_TO = 0.9  # shed down to this share of max_bytes, so shedding is not done on every insert
MAX_HELD_EVENTS = 10_000  # events kept in memory while the disk is full
DELETE_BATCH = 256  # acknowledged messages waiting for a commit before they are deleted on their own
_SQLITE_FULL = 13

_Row = tuple[int, str, bytes, int, float]  # priority, topic, payload, retain, created


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
    priority: Priority = Priority.TELEMETRY
    created: float = 0.0


# One encoder for every payload: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class Outbox:
    """The durable queue. ``topic`` is relative to the gateway's topic root."""

    def __init__(self, directory: Path, gateway_id: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(directory) / "outbox.sqlite3"
        self.gateway_id = gateway_id
        self.max_bytes = max_bytes
        self.wakeup = asyncio.Event()
        # Set by the uplink while everything committed is sent or in flight: a commit now goes out at once.
        self.wire_idle = asyncio.Event()
        self._held: list[OutboxMessage] = []  # events (and the latest retained states) the full disk refused
        self._held_kv: dict[str, str | None] = {}  # kv changes the full disk refused
        # What peek has handed to the uplink and no PUBACK has answered yet: maybe delivered, so
        # never shed, replaced or dropped as a gap (a gap would report a delivered seq as lost).
        self._sent: set[int] = set()
        self._kv_dirty = False  # kv changed since its copy outside the database was written
        self._held_id = 0
        self._refused: dict[int, GapLedger] = {}  # telemetry/state the full disk refused
        self._disk_full = False
        # Acknowledged by the broker, not yet deleted: peek skips them. They are deleted in the
        # next commit's transaction (no fsync of their own), once DELETE_BATCH of them wait, or
        # by write_back; a crash before that sends them again, with the same seq.
        self._acked: set[int] = set()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._anchor = Anchor(self.path.parent)
            opened = recovery.open_or_recover(self.path, self._anchor)
            self._db = opened.db
            self._seq = opened.seq
            self._bytes = self._stored_bytes()
            self.backlog_until = self.last_id()
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open the outbox at {self.path}: {exc}") from exc
        self.recovered = opened.reset is not None  # started afresh: open events came from the copy
        if opened.reset is not None:
            self._kv_dirty = True
            self.enqueue(Priority.EVENT, NOTICES_TOPIC, opened.reset)

    def close(self) -> None:
        if self._acked:
            with contextlib.suppress(OutboxError):  # a full disk: sent again after the restart
                self._delete_acked()
        if self._kv_dirty:
            self._anchor.write_kv(self._kv_snapshot())
        self._db.close()

    @property
    def disk_full(self) -> bool:
        """The disk refused the last write: telemetry is being shed, events held in memory."""
        return self._disk_full

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
        first = self._seq + 1
        rows: list[_Row] = []
        for priority, topic, body, retain in items:
            rows.append((int(priority), topic, self.envelope(body, first + len(rows)), int(retain), now))
        if not rows:
            return []
        seq = first + len(rows) - 1
        self._anchor.claim(seq)
        try:
            gaps = self._commit_or_make_room(rows, seq, kv)
        except sqlite3.Error as exc:
            if not _is_full(exc):
                raise OutboxError(f"cannot store {rows[0][1]!r} in {self.path}: {exc}") from exc
            self._seq = seq
            self._hold(rows, exc, kv)
        else:
            self._seq = seq
            self._kv_dirty = self._kv_dirty or bool(kv)
            for gap in gaps:
                self.enqueue(Priority.EVENT, NOTICES_TOPIC, gap.body())
        self.wire_idle.clear()
        self.wakeup.set()
        return list(range(first, seq + 1))

    def reserve_seq(self, kv: Mapping[str, str | None] | None = None) -> int:
        """A seq for a message that bypasses the queue (birth, Last Will), stored durably with ``kv``."""
        self._seq += 1
        self._anchor.claim(self._seq)
        self.kv_set({**(kv or {}), SEQ_KEY: str(self._seq)})  # on a full disk: the next commit
        return self._seq

    def kv_set(self, values: Mapping[str, str | None]) -> None:
        """Store ``kv`` changes (None deletes) on their own; held in memory while the disk is full."""
        try:
            with self._transaction():
                for key, value in values.items():
                    self._kv_put(key, value)
        except sqlite3.Error as exc:
            if not _is_full(exc):
                raise OutboxError(f"cannot store {', '.join(values)} in {self.path}: {exc}") from exc
            self._held_kv.update(values)
            return
        self._kv_dirty = True

    def next_bd_seq(self) -> int:
        """The next birth/death sequence number, stored durably (in the floor file even on a full disk)."""
        value = max(int(self.kv_get(BD_SEQ_KEY) or 0), self._anchor.bd_seq) + 1
        self._anchor.set_bd_seq(value)
        self.kv_set({BD_SEQ_KEY: str(value)})
        return value

    def kv_get(self, key: str) -> str | None:
        """One ``kv`` entry, including a change a full disk still holds in memory."""
        if key in self._held_kv:
            return self._held_kv[key]
        return self._kv_get(key)

    def write_back(self) -> None:
        """Write what a full disk refused (events, kv changes, deletes) and refresh the kv copy.

        Called every second: when space comes back, held events reach the disk and
        the gap reports go out without waiting for the next message.
        """
        if self._acked:  # first: on a full disk the pages they free make room for what is held
            self._delete_acked()
        if self._disk_full or self._held or self._held_kv:
            try:
                gaps = self._commit([], self._seq, None)
            except sqlite3.Error as exc:
                if not _is_full(exc):
                    raise OutboxError(f"cannot write back to {self.path}: {exc}") from exc
            else:
                for gap in gaps:
                    self.enqueue(Priority.EVENT, NOTICES_TOPIC, gap.body())
                self.wakeup.set()
        if self._kv_dirty:
            self._kv_dirty = not self._anchor.write_kv(self._kv_snapshot())

    def envelope(self, body: Mapping[str, Any], seq: int) -> bytes:
        """The JSON payload: the gateway id and seq first, then the body."""
        message = {"gateway": self.gateway_id, "seq": seq, **body}
        return _ENCODER.encode(message).encode()

    def peek(
        self, limit: int, *, skip: Iterable[int] = (), skip_topics: Collection[str] = ()
    ) -> list[OutboxMessage]:
        """The next messages to send, highest priority and oldest first (held ones count as sent);
        none of ``skip`` and none on ``skip_topics``."""
        skipped = (*skip, *self._acked)
        marks = ",".join("?" * len(skipped))
        but = f" AND topic NOT IN ({','.join('?' * len(skip_topics))})" if skip_topics else ""
        rows = self._db.execute(
            "SELECT id, topic, payload, retain, priority, created FROM messages"
            f" WHERE id NOT IN ({marks}){but} ORDER BY priority, id LIMIT ?",
            (*skipped, *skip_topics, limit),
        ).fetchall()
        stored = [
            OutboxMessage(row[0], row[1], bytes(row[2]), bool(row[3]), Priority(row[4]), row[5])
            for row in rows
        ]
        if self._held:
            events = [m for m in stored if m.priority == Priority.EVENT]
            rest = [m for m in stored if m.priority != Priority.EVENT]
            held = sorted(
                (m for m in self._held if m.id not in skipped and m.topic not in skip_topics),
                key=lambda m: m.priority,
            )
            stored = (events + held + rest)[:limit]
        self._sent.update(m.id for m in stored)
        return stored

    def ack(self, message_id: int) -> None:
        """The broker has the message: forget it."""
        self.ack_many([message_id])

    def ack_many(self, message_ids: Iterable[int]) -> None:
        """The broker has these messages: forget them (deleted with the next commit, see ``_acked``)."""
        ids = set(message_ids)
        if self._held:
            self._held = [m for m in self._held if m.id not in ids]
        self._sent -= ids
        self._acked.update(i for i in ids if i > 0)
        if len(self._acked) >= DELETE_BATCH or self._disk_full:  # a full disk needs the pages now
            self._delete_acked()

    def refused(self, message_ids: Iterable[int]) -> None:
        """The broker said it does not have these (a failure PUBACK): queued as before, not in flight,
        so a full buffer can shed them like any other queued message."""
        self._sent.difference_update(message_ids)

    def _delete_acked(self) -> None:
        """Delete the acknowledged messages in a transaction of their own."""
        try:
            with self._transaction():
                freed = self._delete_rows()
        except sqlite3.Error as exc:
            if not _is_full(exc):
                raise OutboxError(
                    f"cannot delete {len(self._acked)} message(s) from {self.path}: {exc}"
                ) from exc
            if self.pending() == len(self._held):  # skipped by peek until a delete succeeds
                self._rebuild()
            return
        self._deleted(freed)

    def _delete_rows(self) -> int:
        """Within a transaction: delete the acknowledged rows; return the bytes they counted."""
        if not self._acked:
            return 0
        ids = tuple(self._acked)
        marks = ",".join("?" * len(ids))
        size, count = self._db.execute(
            "SELECT coalesce(sum(length(payload) + length(topic)), 0), count(*)"
            f" FROM messages WHERE id IN ({marks})",
            ids,
        ).fetchone()
        self._db.execute(f"DELETE FROM messages WHERE id IN ({marks})", ids)
        return int(size) + ROW_OVERHEAD * int(count)

    def _deleted(self, freed: int) -> None:
        self._acked = set()
        self._bytes -= freed

    def pending(self) -> int:
        """Messages waiting for the broker, on disk and held in memory."""
        stored = int(self._db.execute("SELECT count(*) FROM messages").fetchone()[0])
        return stored - len(self._acked) + len(self._held)

    @property
    def bytes_used(self) -> int:
        """What the stored messages count against ``max_bytes``."""
        return self._bytes

    def last_id(self) -> int:
        """The id of the newest stored message (0 when none): messages up to it are a backlog."""
        return int(self._db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0])

    def kv_items(self, prefix: str) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT key, value FROM kv WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
        ).fetchall()
        items = {key: value for key, value in rows}
        for key, value in self._held_kv.items():
            if key.startswith(prefix):
                if value is None:
                    items.pop(key, None)
                else:
                    items[key] = value
        return items

    def _kv_snapshot(self) -> dict[str, str]:
        """The whole key-value table but ``seq`` (the floor covers it), held changes included."""
        items = self.kv_items("")
        items.pop(SEQ_KEY, None)
        return items

    def _commit_or_make_room(
        self, rows: list[_Row], seq: int, kv: Mapping[str, str | None] | None
    ) -> list[GapLedger]:
        try:
            return self._commit(rows, seq, kv)
        except sqlite3.Error as exc:
            if not _is_full(exc):
                raise
        # The disk is full. Deleted rows free pages SQLite reuses, so shedding old
        # telemetry may make room; if even the delete fails, the caller holds the rows.
        needed = sum(_size(row[1], row[2]) for row in rows)
        with self._transaction():
            gaps, freed = self._shed(max(4 * needed, self._bytes // 20), "disk full", only_telemetry=True)
        self._bytes -= freed
        try:
            return gaps + self._commit(rows, seq, kv)
        except sqlite3.Error:
            for gap in gaps:  # shed but unreported: report it with what the disk refuses
                ledger = self._refused.setdefault(gap.priority, GapLedger(gap.priority, gap.reason))
                ledger.merge(gap)
            raise

    def _commit(self, rows: list[_Row], seq: int, kv: Mapping[str, str | None] | None) -> list[GapLedger]:
        held = self._held
        with self._transaction():
            # The disk takes writes again: events held in memory go first.
            stored = [(int(m.priority), m.topic, m.payload, int(m.retain), m.created) for m in held]
            stored += rows
            self._insert(stored)
            added = sum(_size(row[1], row[2]) for row in stored)
            self._kv_put(SEQ_KEY, str(seq))
            for key, value in {**self._held_kv, **(kv or {})}.items():
                self._kv_put(key, value)
            deleted = self._delete_rows()
            used = self._bytes - deleted + added
            gaps, freed = (
                self._shed(used - int(self.max_bytes * SHED_TO), "buffer full")
                if used > self.max_bytes
                else ([], 0)
            )
        self._deleted(deleted)
        self._bytes += added - freed
        if held:
            self._held = []
            self._sent.difference_update(m.id for m in held)  # on disk now, under new ids
        if self._held_kv:
            self._held_kv = {}
            self._kv_dirty = True
        if self._disk_full:
            log.warning("outbox: %s accepts writes again", self.path)
            self._disk_full = False
            gaps += list(self._refused.values())
            self._refused = {}
        return gaps

    def _rebuild(self) -> None:
        """Start an empty file, carrying ``kv`` over, when everything stored is acknowledged.

        On a full disk the WAL cannot be checkpointed (that needs the main file to
        grow), so not even a DELETE commits and the outbox would stay full forever.
        """
        kv = self._db.execute("SELECT key, value FROM kv").fetchall()
        self._db.close()
        for suffix in ("-wal", "-shm", ""):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._db = recovery.connect(self.path)
        with self._transaction():
            for key, value in kv:
                self._kv_put(key, value)
            self._kv_put(SEQ_KEY, str(self._seq))
        self._acked = set()
        self._bytes = 0
        log.warning("outbox: %s rebuilt empty to get out of a full disk", self.path)

    def _shed(self, excess: int, reason: str, *, only_telemetry: bool = False) -> tuple[list[GapLedger], int]:
        """Delete the oldest messages, telemetry first, until ``excess`` bytes are free."""
        gaps: list[GapLedger] = []
        freed = 0
        order = (
            (Priority.TELEMETRY,) if only_telemetry else (Priority.TELEMETRY, Priority.STATE, Priority.EVENT)
        )
        for priority in order:
            if freed >= excess:
                break
            ledger = GapLedger(int(priority), reason)
            last = None
            acknowledged: list[int] = []
            in_flight: list[int] = []  # sent, no PUBACK yet: kept, the broker may have it
            cursor = self._db.execute(
                "SELECT id, topic, length(payload) + length(topic), created FROM messages"
                " WHERE priority = ? ORDER BY id",
                (int(priority),),
            )
            for message_id, topic, size, created in cursor:
                if freed >= excess:
                    break
                if message_id in self._acked:  # the broker has it: freed, but no gap
                    acknowledged.append(message_id)
                elif message_id in self._sent:
                    in_flight.append(message_id)
                    continue
                else:
                    ledger.add(topic, size + ROW_OVERHEAD, created)
                freed += size + ROW_OVERHEAD
                last = message_id
            cursor.close()
            if last is not None:
                kept = [i for i in in_flight if i < last]
                but = f" AND id NOT IN ({','.join('?' * len(kept))})" if kept else ""
                self._db.execute(
                    f"DELETE FROM messages WHERE priority = ? AND id <= ?{but}", (int(priority), last, *kept)
                )
                self._acked.difference_update(acknowledged)  # gone: pending() must not count them twice
            if ledger.dropped:
                log.warning(
                    "outbox: %s: shed %d %s message(s) (%d bytes)",
                    reason,
                    ledger.dropped,
                    priority.name.lower(),
                    ledger.size,
                )
                gaps.append(ledger)
        return gaps, freed

    def _hold(self, rows: list[_Row], exc: sqlite3.Error, kv: Mapping[str, str | None] | None) -> None:
        """The disk is full: keep events and kv changes in memory, count what is shed, say so once."""
        newly_full, self._disk_full = not self._disk_full, True
        self._held_kv.update(kv or {})
        for priority, topic, payload, retain, created in rows:
            if priority == Priority.EVENT:
                self._hold_event(
                    OutboxMessage(self._next_held_id(), topic, payload, bool(retain), Priority.EVENT, created)
                )
            elif priority == Priority.STATE and retain:
                # Retained state (health, device status): only the latest of each topic
                # matters, so one per topic is held and the one it replaces is a gap.
                self._hold_state(
                    OutboxMessage(self._next_held_id(), topic, payload, True, Priority.STATE, created)
                )
            else:
                ledger = self._refused.setdefault(priority, GapLedger(priority, "disk full"))
                ledger.add(topic, _size(topic, payload), created)
        if newly_full:
            log.error(
                "outbox: %s refuses writes (%s): shedding telemetry, holding events in memory",
                self.path,
                exc,
            )
            self._seq += 1
            self._anchor.claim(self._seq)
            notice = storage_full(str(exc), len(self._held))
            self._hold_event(
                OutboxMessage(
                    self._next_held_id(),
                    NOTICES_TOPIC,
                    self.envelope(notice, self._seq),
                    False,
                    Priority.EVENT,
                    time.time(),
                )
            )

    def _hold_event(self, message: OutboxMessage) -> None:
        if len(self._held) >= MAX_HELD_EVENTS:
            oldest = next(
                (
                    i
                    for i, m in enumerate(self._held)
                    if m.priority == Priority.EVENT and m.id not in self._sent
                ),
                None,
            )
            if oldest is not None:
                dropped = self._held.pop(oldest)
                ledger = self._refused.setdefault(Priority.EVENT, GapLedger(Priority.EVENT, "disk full"))
                ledger.add(dropped.topic, _size(dropped.topic, dropped.payload), dropped.created)
        self._held.append(message)

    def _hold_state(self, message: OutboxMessage) -> None:
        for index, held in enumerate(self._held):
            if held.priority == Priority.STATE and held.topic == message.topic and held.id not in self._sent:
                del self._held[index]
                ledger = self._refused.setdefault(Priority.STATE, GapLedger(Priority.STATE, "disk full"))
                ledger.add(held.topic, _size(held.topic, held.payload), held.created)
                break
        self._held.append(message)

    def _next_held_id(self) -> int:
        self._held_id -= 1  # negative: never the id of a stored row
        return self._held_id

    def _insert(self, rows: list[_Row]) -> None:
        self._db.executemany(
            "INSERT INTO messages (priority, topic, payload, retain, created) VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    def _stored_bytes(self) -> int:
        size, count = self._db.execute(
            "SELECT coalesce(sum(length(payload) + length(topic)), 0), count(*) FROM messages"
        ).fetchone()
        return int(size) + ROW_OVERHEAD * int(count)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # a failed COMMIT may have rolled back already
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


def _size(topic: str, payload: bytes) -> int:
    return len(topic.encode()) + len(payload) + ROW_OVERHEAD


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python ≥ 3.11
    return None if code is None else int(code) & 0xFF


def _is_full(exc: sqlite3.Error) -> bool:
    code = _code(exc)
    return code == _SQLITE_FULL if code is not None else "full" in str(exc)
