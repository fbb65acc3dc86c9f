"""The retained list of a gateway's open events, so a command center that connects late sees them.

Events are not retained (each is one step of a lifecycle), so a subscriber
that joins while an alarm is open would otherwise see nothing of it until its
next step. With every event message the gateway also publishes, in the same
transaction, the retained ``open_events`` message: a short entry for each
event still open, built from the events the outbox keeps for restarts.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from typing import Any

from gateway.outbox import Outbox, Priority

OPEN_EVENTS_TOPIC = "open_events"
ALARM_KEYS = "alarm/"
DEVICE_KEYS = "device/"
_KEY_PREFIXES = (ALARM_KEYS, DEVICE_KEYS)
_SUMMARY_FIELDS = (
    "event_id",
    "state",
    "class",
    "severity",
    "category",
    "device",
    "channel",
    "unit",
    "facet",
    "level",
    "condition",
    "value",
    "peak",
    "limit",
    "raised_at",
    "last_seen",
    "count",
    "code",
    "acknowledged_by",
    "acknowledged_at",
    "escalation",
)


def summary(event: Mapping[str, Any]) -> dict[str, Any]:
    """The entry of one open event in the list: what a board needs, not its evidence."""
    return {key: event[key] for key in _SUMMARY_FIELDS if key in event}


class _Listing:
    """Each open event's summary, kept in step with the outbox's ``kv`` by :func:`publish_with_list`."""

    def __init__(self, outbox: Outbox) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        for prefix in _KEY_PREFIXES:
            for key, text in outbox.kv_items(prefix).items():
                self.entries[key] = summary(json.loads(text))

    def body(self, change: Mapping[str, str | None], ts: str) -> dict[str, Any]:
        """The list as it will be once ``change`` (key → stored event, None: closed) is committed."""
        entries = dict(self.entries)
        for key, text in change.items():
            if text is None:
                entries.pop(key, None)
            elif key.startswith(_KEY_PREFIXES):
                entries[key] = summary(json.loads(text))
        events = sorted(entries.values(), key=lambda e: str(e.get("raised_at")))
        return {"ts": ts, "count": len(events), "events": events}


# One per outbox: parsing every stored event again for each change made a burst of
# N alarms cost N² parses. Rebuilt from kv whenever the outbox was reopened or reset.
_LISTINGS: weakref.WeakKeyDictionary[Outbox, _Listing] = weakref.WeakKeyDictionary()


def _listing(outbox: Outbox) -> _Listing:
    listing = _LISTINGS.get(outbox)
    if listing is None:
        listing = _LISTINGS[outbox] = _Listing(outbox)
    return listing


def open_events_body(outbox: Outbox, change: Mapping[str, str | None], ts: str) -> dict[str, Any]:
    """The list as it will be once ``change`` (key → stored event, None: closed) is committed."""
    return _listing(outbox).body(change, ts)


def publish_with_list(
    outbox: Outbox, topic: str, event: Mapping[str, Any], kv: Mapping[str, str | None]
) -> None:
    """Commit an event message, its stored state and the new retained list in one transaction."""
    listing = _listing(outbox)
    body = listing.body(kv, str(event["ts"]))
    outbox.enqueue_many(
        [(Priority.EVENT, topic, event, False), (Priority.EVENT, OPEN_EVENTS_TOPIC, body, True)], kv=kv
    )
    for key, text in kv.items():  # committed (or held by a full disk, which kv_items also sees)
        if text is None:
            listing.entries.pop(key, None)
        elif key.startswith(_KEY_PREFIXES):
            listing.entries[key] = summary(json.loads(text))
