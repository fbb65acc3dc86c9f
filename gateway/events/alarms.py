"""Events: raised → (updated, acknowledged, escalated) → cleared, one stable event id throughout.

Three classes share this lifecycle: regulatory ``alarm``s, sensor ``fault``s
and statistical ``anomaly`` findings (lower severity; see docs/mqtt-api.md).
Each facet of a detection subject (its level, window mean, daily count, rate,
fault, anomaly) is its own event; an event's slot is (subject, facet).

An open event is stored in the outbox's key-value table in the same
transaction as the message that opened or changed it, so after a crash or
restart the gateway still knows it and the clear carries the same event id.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway.config.models import GatewayIdentity
from gateway.detect.engine import Transition
from gateway.detect.layout import Subject
from gateway.events.model import Raised, number, payload
from gateway.events.open_list import ALARM_KEYS, publish_with_list
from gateway.outbox import Outbox
from gateway.timestamps import iso_utc

log = logging.getLogger(__name__)

EVENTS_TOPIC = "events"
_KV_PREFIX = ALARM_KEYS

Slot = tuple[int, str]
"""An event slot: (detection subject index, facet)."""


def alarm_key(subject: Subject, facet: str) -> str:
    """Names an event slot by what it checks, so a reordered config still finds its alarms.

    The level facet keeps the key threshold alarms always had.
    """
    suffix = "" if facet == "level" else f"/{facet}"
    return f"{_KV_PREFIX}{subject.key}{suffix}"


_LEVEL_SEVERITY: dict[str | None, str] = {"warning": "normal", "critical": "urgent"}


class AlarmBook:
    """Open events of this gateway, and the messages that open, change and close them."""

    def __init__(
        self,
        identity: GatewayIdentity,
        subjects: Sequence[Subject],
        facets: Sequence[Sequence[str]],
        units: Mapping[tuple[str, str], str],
        outbox: Outbox,
    ) -> None:
        """``facets[i]`` names the facets subject ``i`` can raise."""
        self._identity = identity
        self._subjects = tuple(subjects)
        self._units = units
        self._outbox = outbox
        self._keys = {
            (i, facet): alarm_key(subject, facet)
            for i, subject in enumerate(self._subjects)
            for facet in facets[i]
        }
        self._open: dict[Slot, dict[str, Any]] = {}
        # The pictures at hand when a device's event opens (gateway.evidence), and who hears that
        # it opened (evidence fetches snapshots, correlation raises it).
        self.evidence_at_hand: Callable[[str, float], tuple[Mapping[str, Any], ...]] = lambda device, ts: ()
        self.on_open: list[Callable[[Slot, dict[str, Any]], None]] = []
        self.on_close: list[Callable[[Slot, dict[str, Any]], None]] = []  # e.g. a rule's relay goes off

    def restore(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Reload open events; return (subject, facet, event) for the detection engine.

        An event whose rule is no longer configured cannot clear by itself, so it
        is cleared now, saying why. After the outbox started afresh (damaged), each
        event still open is published again, flagged ``recovered``: what the command
        center had of it may have been in the lost file.
        """
        slots = {key: slot for slot, key in self._keys.items()}
        restored: list[tuple[int, str, dict[str, Any]]] = []
        for key, text in self._outbox.kv_items(_KV_PREFIX).items():
            event = json.loads(text)
            slot = slots.get(key)
            if slot is None:
                log.warning("alarm %s: its rule is gone from the config; clearing it", event["event_id"])
                publish_clear(self._outbox, key, event, value=None, ts=time.time(), reason="rule removed")
                continue
            if self._outbox.recovered:
                event = publish_recovered(self._outbox, key, event)
            self._open[slot] = event
            restored.append((slot[0], slot[1], event))
        return restored

    @property
    def open_alarms(self) -> list[dict[str, Any]]:
        return list(self._open.values())

    def subject(self, slot: Slot) -> Subject:
        return self._subjects[slot[0]]

    def slot_of(self, event_id: str) -> Slot | None:
        """The slot of the open event ``event_id``, if it is open."""
        return next((slot for slot, e in self._open.items() if e["event_id"] == event_id), None)

    def event(self, slot: Slot) -> dict[str, Any] | None:
        return self._open.get(slot)

    def open(self, transition: Transition) -> dict[str, Any]:
        """Publish a raised event for a detection transition; return it."""
        subject = self._subjects[transition.rule]
        slot = (transition.rule, transition.facet)
        event = self._raised(subject, transition)
        self._open[slot] = event
        publish_open(self._outbox, self._keys[slot], event)
        for hook in self.on_open:
            hook(slot, event)
        log.warning(
            "%s raised: %s %s %s/%s = %s",
            event["class"],
            event["category"],
            event["condition"],
            subject.device,
            subject.channel,
            event["value"],
        )
        return event

    def publish(self, slot: Slot, state: str, ts: float, **changes: Any) -> dict[str, Any]:
        """Publish the open event of ``slot`` again as ``state`` (updated, escalated, ...)."""
        event = {**self._open[slot], **changes, "ts": iso_utc(ts), "state": state}
        self._open[slot] = event
        publish_open(self._outbox, self._keys[slot], event)
        return event

    def change_level(self, transition: Transition, **changes: Any) -> dict[str, Any]:
        """Publish the open event of the transition's slot as `updated` to the transition's level."""
        slot = (transition.rule, transition.facet)
        subject = self._subjects[transition.rule]
        event = self.publish(
            slot,
            "updated",
            transition.ts,
            level=transition.level,
            limit=number(transition.limit),
            severity=_severity(subject, transition),
            condition=transition.condition,
            direction=transition.direction or None,
            value=number(transition.value),
            **changes,
        )
        log.warning(
            "%s %s/%s now at level %s (%s)",
            event["category"],
            subject.device,
            subject.channel,
            transition.level,
            event["severity"],
        )
        return event

    def close(self, slot: Slot, *, value: float | None, ts: float, **changes: Any) -> dict[str, Any] | None:
        """Publish the clear of the open event of ``slot``; return the event it closed."""
        opened = self._open.pop(slot, None)
        if opened is None:
            return None
        subject = self._subjects[slot[0]]
        publish_clear(
            self._outbox, self._keys[slot], {**opened, **changes}, value=value, ts=ts, reason="back to normal"
        )
        log.warning(
            "%s cleared: %s %s/%s", opened["class"], opened["category"], subject.device, subject.channel
        )
        for hook in self.on_close:
            hook(slot, opened)
        return opened

    def _raised(self, subject: Subject, transition: Transition) -> dict[str, Any]:
        raised = Raised(
            event_class=transition.event_class,
            severity=_severity(subject, transition),
            category=subject.category,
            device=subject.device,
            channel=subject.channel,
            unit=self._units.get((subject.device, subject.channel), ""),
            facet=transition.facet,
            level=transition.level,
            condition=transition.condition,
            direction=transition.direction or None,
            value=transition.value,
            limit=transition.limit,
            hysteresis=subject.hysteresis,
            hold_s=subject.hold_s,
            rule=subject.label,
            evidence=(
                {"kind": "telemetry", "topic": f"telemetry/{subject.device}"},
                *self.evidence_at_hand(subject.device, transition.ts),
            ),
            code=subject.code,
        )
        return payload(self._identity, raised, transition.ts)


def publish_open(outbox: Outbox, key: str, event: Mapping[str, Any]) -> None:
    """Publish a raised or changed event, stored under ``key`` in the same transaction."""
    publish_with_list(outbox, EVENTS_TOPIC, event, {key: json.dumps(event)})


def publish_recovered(outbox: Outbox, key: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """Publish an open event again after an outbox reset, flagged; return it as kept."""
    kept = {**event, "ts": iso_utc(time.time()), "state": "updated"}
    publish_with_list(outbox, EVENTS_TOPIC, {**kept, "recovered": True}, {key: json.dumps(kept)})
    return kept


def publish_clear(
    outbox: Outbox, key: str, event: Mapping[str, Any], *, value: float | None, ts: float, reason: str
) -> None:
    """Publish the clear of ``event`` and forget it under ``key``, in one transaction."""
    cleared = {
        **event,
        "ts": iso_utc(ts),
        "state": "cleared",
        "value": number(value),
        "cleared_at": iso_utc(ts),
        "reason": reason,
    }
    publish_with_list(outbox, EVENTS_TOPIC, cleared, {key: None})


def _severity(subject: Subject, transition: Transition) -> str:
    """Faults and anomalies rank below regulatory alarms; alarm levels set their own."""
    if transition.event_class == "anomaly":
        return "normal"
    if transition.event_class == "fault":
        return subject.fault_severity
    return _LEVEL_SEVERITY.get(transition.level, subject.severity)
