"""The event lifecycle around the alarm book: updates, flap control, escalation, ack, verify.

    raised ─┬─ updated (the peak moved a whole step) ─┬─ cleared
            ├─ acknowledged (command center, `ack`)   │
            └─ escalated (urgent, not acknowledged)  ─┘

A clear is held back for ``flap_window_s``: if the condition comes back inside
the window the event stays open and counts one more occurrence instead of
publishing a clear and a new raise (a storm). An urgent event not
acknowledged ``escalate_after_s`` after it was raised is published again as
``escalated``, every ``escalate_every_s``, until it is acknowledged or clears.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from contracts.compat import wait_set
from contracts.readings import ReadingBatch
from gateway.config.events import EventPolicy
from gateway.config.rules import ThresholdRule
from gateway.detect.engine import Transition
from gateway.events.alarms import AlarmBook, Slot
from gateway.events.model import ack_reply, acknowledged
from gateway.events.verify import verify_slots
from gateway.events.watch import ChannelWatch
from gateway.timestamps import iso_utc

_CLOSED_REMEMBERED = 1024


class EventDesk:
    """Owns every open event's lifecycle; the pipeline feeds it, commands query it."""

    def __init__(
        self,
        book: AlarmBook,
        rules: Sequence[ThresholdRule],
        policy: EventPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._book = book
        self._rules = tuple(rules)
        self._policy = policy
        self._clock = clock
        self.watch = ChannelWatch(rules, samples=policy.evidence_samples, max_gap_s=policy.verify_max_gap_s)
        self._pending_clear: dict[Slot, tuple[float, float, float]] = {}  # slot: value, ts, due
        self._escalation: dict[Slot, tuple[float, int]] = {}  # slot: due, escalations so far
        self._closed: OrderedDict[str, Slot] = OrderedDict()  # event id: slot, for `verify`

    def restore(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Reload open events (see :meth:`AlarmBook.restore`) and resume their timers."""
        restored = self._book.restore()
        for subject, facet, event in restored:
            if self._watched((subject, facet)) and event.get("limit") is not None:
                peak = event.get("peak")
                self.watch.open(
                    subject,
                    event["direction"],
                    event["limit"],
                    event["value"] if peak is None else peak,
                    self._policy.peak_step,
                )
            if not event.get("acknowledged_by"):
                self._arm_escalation((subject, facet), self._clock())
        return restored

    def handle_all(self, transitions: Sequence[Transition]) -> None:
        """One batch's transitions; a clear and a raise of another level on one slot: a level change."""
        raises = {(t.rule, t.facet): t for t in transitions if t.raised}
        changes = {
            (t.rule, t.facet)
            for t in transitions
            if not t.raised
            and (t.rule, t.facet) in raises
            and raises[(t.rule, t.facet)].level != t.level
            and self._book.event((t.rule, t.facet)) is not None
        }
        for transition in transitions:
            if (transition.rule, transition.facet) not in changes:
                self.handle(transition)
            elif transition.raised:
                self._change_level(transition)

    def handle(self, transition: Transition) -> None:
        """A detection transition: open an event, re-open a flapping one, or schedule a clear."""
        slot = (transition.rule, transition.facet)
        if transition.raised:
            if self._pending_clear.pop(slot, None) is not None:
                event = self._book.event(slot)
                assert event is not None
                if event.get("level") != transition.level:
                    self._change_level(transition)
                    return
                event["count"] = event.get("count", 1) + 1
                return
            event = self._book.open(transition)
            if self._watched(slot) and event["limit"] is not None:
                self.watch.open(
                    transition.rule,
                    transition.direction,
                    event["limit"],
                    transition.value,
                    self._policy.peak_step,
                )
            self._arm_escalation(slot, self._clock())
            return
        if self._book.event(slot) is None:
            return
        if self._policy.flap_window_s > 0:
            due = self._clock() + self._policy.flap_window_s
            self._pending_clear[slot] = (transition.value, transition.ts, due)
        else:
            self._close(slot, transition.value, transition.ts)

    def _change_level(self, transition: Transition) -> None:
        """An open event moved to another level (warning ↔ alarm ↔ critical): one event, `updated`."""
        slot = (transition.rule, transition.facet)
        self._pending_clear.pop(slot, None)
        opened = self._book.event(slot)
        assert opened is not None
        if self._watched(slot) and transition.limit is not None:
            peak = opened.get("peak")
            furthest = (
                transition.value
                if peak is None
                else (
                    max(peak, transition.value)
                    if transition.direction == "high"
                    else min(peak, transition.value)
                )
            )
            self.watch.open(
                transition.rule, transition.direction, transition.limit, furthest, self._policy.peak_step
            )
        event = self._book.change_level(transition, **self._seen(slot))
        if event["severity"] != "urgent":
            self._escalation.pop(slot, None)  # only urgent events escalate
        elif not event.get("acknowledged_by") and slot not in self._escalation:
            self._arm_escalation(slot, self._clock())

    def observe(self, batch: ReadingBatch) -> None:
        """Record a batch; publish `updated` for open events whose peak moved a whole step."""
        for subject in self.watch.update(batch):
            slot = (subject, "level")
            if slot in self._pending_clear or self._book.event(slot) is None:
                continue
            value = float(self.watch.last_value[subject])
            self._book.publish(
                slot, "updated", float(self.watch.last_seen[subject]), value=value, **self._seen(slot)
            )
            self.watch.mark_published(subject)

    def tick(self) -> None:
        """Publish the clears whose flap window has passed and the escalations that are due."""
        now = self._clock()
        for slot, (value, ts, due) in list(self._pending_clear.items()):
            if due <= now:
                del self._pending_clear[slot]
                self._close(slot, value, ts)
        for slot, (due, done) in list(self._escalation.items()):
            if due > now or slot in self._pending_clear:
                continue
            event = self._book.event(slot)
            if event is None or event.get("acknowledged_by"):
                del self._escalation[slot]
                continue
            self._book.publish(slot, "escalated", now, escalation=done + 1, **self._seen(slot))
            self._escalation[slot] = (now + self._policy.escalate_every_s, done + 1)

    def acknowledge(self, event_id: str, operator: str) -> dict[str, Any] | None:
        """Mark an event as seen by ``operator``; None if the gateway does not know it."""
        slot = self._book.slot_of(event_id)
        if slot is None:
            return {"event_id": event_id, "state": "cleared"} if event_id in self._closed else None
        event = self._book.event(slot)
        assert event is not None
        now = self._clock()
        changes = acknowledged(event, operator, now)
        if changes is not None:
            event = self._book.publish(slot, "acknowledged", now, **changes, **self._seen(slot))
            self._escalation.pop(slot, None)
        return ack_reply(event)

    def verify(
        self, *, event_id: str | None = None, device: str | None = None, category: str | None = None
    ) -> dict[str, Any] | None:
        """Whether the condition stayed cleared long enough; None if nothing matches."""
        if event_id is not None:
            slot = self._book.slot_of(event_id)
            if slot is None:
                slot = self._closed.get(event_id)
            if slot is None:
                return None
            subject = self._book.subject(slot)
            device, category = subject.device, subject.category
        slots = [i for i, r in enumerate(self._rules) if r.device == device and r.category == category]
        if not slots:
            return None
        assert category is not None
        answer = verify_slots(
            self.watch, slots, hold_s=self._policy.verify_hold_for(category), now=self._clock()
        )
        head: dict[str, Any] = {"device": device, "category": category}
        if event_id is not None:
            head["event_id"] = event_id
        return {**head, **answer}

    async def run(self, stopping: asyncio.Event) -> None:
        """Tick until ``stopping`` is set, often enough for the shortest configured timer."""
        policy = self._policy
        timers = [policy.escalate_after_s, policy.escalate_every_s]
        timers += [c.escalate_after_s for c in policy.categories.values() if c.escalate_after_s]
        if policy.flap_window_s > 0:
            timers.append(policy.flap_window_s)
        period = min(1.0, max(0.02, min(timers) / 4))
        while not stopping.is_set():
            self.tick()
            await wait_set(stopping, period)

    def _close(self, slot: Slot, value: float, ts: float) -> None:
        self._escalation.pop(slot, None)
        closed = self._book.close(slot, value=value, ts=ts, **self._seen(slot))
        if self._watched(slot):
            self.watch.close(slot[0])
        if closed is not None:
            self._closed[closed["event_id"]] = slot
            while len(self._closed) > _CLOSED_REMEMBERED:
                self._closed.popitem(last=False)

    def _watched(self, slot: Slot) -> bool:
        """Level events of threshold rules have their peak and evidence kept by the watch."""
        return slot[1] == "level" and slot[0] < len(self._rules)

    def _arm_escalation(self, slot: Slot, now: float) -> None:
        event = self._book.event(slot)
        if event is not None and event["severity"] == "urgent":
            self._escalation[slot] = (now + self._policy.escalate_after_for(event["category"]), 0)

    def _seen(self, slot: Slot) -> dict[str, Any]:
        """The fields every later message of an event refreshes: peak, last seen."""
        if not self._watched(slot):
            return {}
        seen: dict[str, Any] = {"peak": self.watch.peak_value(slot[0])}
        last_beyond = float(self.watch.last_beyond[slot[0]])
        if math.isfinite(last_beyond):
            seen["last_seen"] = iso_utc(last_beyond)
        return seen
