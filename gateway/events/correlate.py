"""Correlation: events of one grid cell that together, within a window, raise the event that completed them.

A smoke alarm and a camera trigger, a manhole's tilt and its water level
rising: each alone may be a fault or a passing truck; together in one cell
within ``within_s`` they are likelier real. When an event opens and, with it,
every member of a ``[[correlations]]`` rule has an event in its grid cell in
the window, that event is published again as ``updated`` with the rule's
severity (never lowered), ``correlation`` listing the contributing events,
and their pictures added to its evidence.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.config.correlation import CorrelationRule
from gateway.config.models import GatewayConfig
from gateway.events.alarms import AlarmBook, Slot
from gateway.timestamps import iso_utc

log = logging.getLogger(__name__)

_RANK = {"normal": 0, "important": 1, "urgent": 2}
_REMEMBERED = 4096  # events kept for the window, at most


@dataclass(frozen=True, slots=True)
class _Opened:
    slot: Slot
    event_id: str
    device: str
    category: str
    cell: str
    at: float


class Correlator:
    """Watches events as they open (``AlarmBook.on_open``) and raises the ones that complete a rule."""

    def __init__(
        self,
        rules: Sequence[CorrelationRule],
        book: AlarmBook,
        *,
        cells: Mapping[str, str],
        default_cell: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rules = tuple(rules)
        self._book = book
        self._cells = cells
        self._default_cell = default_cell
        self._clock = clock
        self._window_s = max((r.within_s for r in rules), default=0.0)
        self._recent: deque[_Opened] = deque(maxlen=_REMEMBERED)
        if rules:
            book.on_open.append(self.opened)

    def opened(self, slot: Slot, event: Mapping[str, Any]) -> None:
        now = self._clock()
        while self._recent and self._recent[0].at < now - self._window_s:
            self._recent.popleft()
        cell = self._cells.get(event["device"], self._default_cell)
        this = _Opened(slot, event["event_id"], event["device"], event["category"], cell, now)
        self._recent.append(this)
        for rule in self._rules:
            if not any(m.matches(this.device, this.category) for m in rule.members):
                continue
            window = [o for o in self._recent if o.cell == cell and o.at >= now - rule.within_s]
            chosen = _cover(rule, window, this)
            if chosen is not None:
                self._raise(rule, this, chosen)

    def _raise(self, rule: CorrelationRule, this: _Opened, contributors: list[_Opened]) -> None:
        event = self._book.event(this.slot)
        if event is None:
            return
        severity = max(event["severity"], rule.severity, key=lambda s: _RANK.get(s, 0))
        evidence = list(event["evidence"])
        known = {e.get("evidence_id") for e in evidence}
        listed = []
        for other in contributors:
            current = self._book.event(other.slot)
            if current is not None and current["event_id"] == other.event_id:
                for item in current["evidence"]:
                    if item.get("kind") == "snapshot" and item.get("evidence_id") not in known:
                        evidence.append(item)
                        known.add(item.get("evidence_id"))
            listed.append(
                {
                    "event_id": other.event_id,
                    "device": other.device,
                    "category": other.category,
                    "raised_at": iso_utc(other.at),
                }
            )
        correlation = {"rule": rule.name, "within_s": rule.within_s, "events": listed}
        self._book.publish(
            this.slot, "updated", self._clock(), severity=severity, correlation=correlation, evidence=evidence
        )
        log.warning(
            "correlation %s: %s raised to %s with %d event(s)",
            rule.name,
            this.event_id,
            severity,
            len(listed),
        )


def _cover(rule: CorrelationRule, window: list[_Opened], this: _Opened) -> list[_Opened] | None:
    """The other events that, with ``this`` in its first matching member, give every member one; else None."""
    mine = next(i for i, m in enumerate(rule.members) if m.matches(this.device, this.category))
    chosen: list[_Opened] = []
    for i, member in enumerate(rule.members):
        if i == mine:
            continue
        newest = next(
            (
                o
                for o in reversed(window)
                if o.event_id != this.event_id and o not in chosen and member.matches(o.device, o.category)
            ),
            None,
        )
        if newest is None:
            return None
        chosen.append(newest)
    return chosen


def cells_of(config: GatewayConfig) -> dict[str, str]:
    """Each device's grid cell: its own `grid_cell` where its entry has one (a camera), else the gateway's."""
    return {d.id: getattr(d, "grid_cell", None) or config.gateway.grid_cell for d in config.devices}
