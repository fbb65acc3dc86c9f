"""Nonces of accepted signed requests, kept on disk so a captured request cannot be replayed.

A request is accepted only while its ``ts`` is within ``max_skew_s`` of now,
so a nonce needs remembering only that long; older ones are forgotten. The
memory lives in the outbox's key-value table, and survives a restart.
"""

from __future__ import annotations

import logging
from typing import Protocol

from contracts.errors import OutboxError

log = logging.getLogger(__name__)

NONCE_KEY = "commands/nonce/"  # + key id + "/" + nonce = the request's ts


class KeyValueStore(Protocol):
    def kv_set(self, values: dict[str, str | None]) -> None: ...
    def kv_items(self, prefix: str) -> dict[str, str]: ...


class NonceMemory:
    """Which (key, nonce) pairs were used, with their request's ``ts``."""

    def __init__(self, store: KeyValueStore | None, *, keep_s: float) -> None:
        self._store = store
        self._keep_s = keep_s
        self._seen: dict[str, int] = {}
        if store is not None:
            for key, value in store.kv_items(NONCE_KEY).items():
                self._seen[key] = int(value)

    def use(self, key_id: str, nonce: str, ts: int, now: float) -> bool:
        """Record the pair; False if it was used before (a replay)."""
        entry = f"{NONCE_KEY}{key_id}/{nonce}"
        if entry in self._seen:
            return False
        stale = [k for k, used in self._seen.items() if used < now - self._keep_s]
        changes: dict[str, str | None] = dict.fromkeys(stale)
        for k in stale:
            del self._seen[k]
        self._seen[entry] = ts
        changes[entry] = str(ts)
        if self._store is not None:
            try:
                self._store.kv_set(changes)
            except OutboxError as exc:  # still refused until restart: memory holds it
                log.warning("commands: nonce not stored (%s); a restart could let it be replayed", exc)
        return True
