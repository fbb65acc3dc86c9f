"""Events: raised → cleared, one stable event id for both, remembered across restarts.

Three classes share this lifecycle: regulatory ``alarm``s, sensor ``fault``s
and statistical ``anomaly`` findings (lower severity; see docs/mqtt-api.md).
Each facet of a detection subject (its level, window mean, daily count, rate,
fault, anomaly) is its own event.

An open alarm is stored in the outbox's key-value table in the same
transaction as the event that opened it, so after a crash or restart the
gateway still knows it and the clear carries the same event id.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.config.models import GatewayIdentity
from gateway.detect.engine import Transition
from gateway.detect.layout import Subject
from gateway.outbox import Outbox, Priority
from gateway.timestamps import iso_utc

log = logging.getLogger(__name__)

EVENTS_TOPIC = "events"
_KV_PREFIX = "alarm/"


def alarm_key(subject: Subject, facet: str) -> str:
    """Names an event slot by what it checks, so a reordered config still finds its alarms.

    The level facet keeps the key threshold alarms always had.
    """
    suffix = "" if facet == "level" else f"/{facet}"
    return f"{_KV_PREFIX}{subject.key}{suffix}"


_LEVEL_SEVERITY: dict[str | None, str] = {"warning": "normal", "critical": "urgent"}


class AlarmBook:
    """Open alarms of this gateway, and the events that open and close them."""

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
        self._open: dict[tuple[int, str], dict[str, Any]] = {}

    def restore(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Reload open events; return (subject, facet, event) for the detection engine.

        An alarm whose rule is no longer configured cannot clear by itself, so it
        is cleared now, saying why.
        """
        slots = {key: slot for slot, key in self._keys.items()}
        restored: list[tuple[int, str, dict[str, Any]]] = []
        for key, text in self._outbox.kv_items(_KV_PREFIX).items():
            event = json.loads(text)
            rule = slots.get(key)
            if rule is None:
                log.warning("alarm %s: its rule is gone from the config; clearing it", event["event_id"])
                self._publish_clear(key, event, value=None, ts=time.time(), reason="rule removed")
                continue
            self._open[rule] = event
            restored.append((rule[0], rule[1], event))
        return restored

    @property
    def open_alarms(self) -> list[dict[str, Any]]:
        return list(self._open.values())

    def handle(self, transition: Transition) -> None:
        """Publish the event a detection transition stands for."""
        subject = self._subjects[transition.rule]
        slot = (transition.rule, transition.facet)
        key = self._keys[slot]
        if transition.raised:
            event = self._raised(subject, transition)
            self._open[slot] = event
            self._outbox.enqueue(Priority.EVENT, EVENTS_TOPIC, event, kv={key: json.dumps(event)})
            log.warning(
                "%s raised: %s %s %s/%s = %s",
                event["class"], event["category"], event["condition"], subject.device,
                subject.channel, event["value"],
            )
            return
        if slot not in self._open:
            return
        event = self._open.pop(slot)
        self._publish_clear(
            key, event, value=transition.value, ts=transition.ts, reason="back to normal"
        )
        log.warning(
            "%s cleared: %s %s/%s",
            event["class"], event["category"], subject.device, subject.channel,
        )

    def _raised(self, subject: Subject, transition: Transition) -> dict[str, Any]:
        identity = self._identity
        event: dict[str, Any] = {
            "ts": iso_utc(transition.ts),
            "event_id": str(uuid.uuid4()),
            "state": "raised",
            "class": transition.event_class,
            "severity": _severity(subject, transition),
            "category": subject.category,
            "device": subject.device,
            "channel": subject.channel,
            "unit": self._units.get((subject.device, subject.channel), ""),
            "site": identity.site,
            "grid_cell": identity.grid_cell,
            "facet": transition.facet,
            "level": transition.level,
            "condition": transition.condition,
            "direction": transition.direction or None,
            "value": _number(transition.value),
            "limit": _number(transition.limit),
            "hysteresis": subject.hysteresis,
            "hold_s": subject.hold_s,
            "raised_at": iso_utc(transition.ts),
        }
        if identity.location is not None:
            event["location"] = identity.location.model_dump()
        return event

    def _publish_clear(
        self, key: str, event: Mapping[str, Any], *, value: float | None, ts: float, reason: str
    ) -> None:
        cleared = {
            **event,
            "ts": iso_utc(ts),
            "state": "cleared",
            "value": _number(value),
            "cleared_at": iso_utc(ts),
            "reason": reason,
        }
        self._outbox.enqueue(Priority.EVENT, EVENTS_TOPIC, cleared, kv={key: None})


def _severity(subject: Subject, transition: Transition) -> str:
    """Faults and anomalies rank below regulatory alarms; alarm levels set their own."""
    if transition.event_class == "anomaly":
        return "normal"
    if transition.event_class == "fault":
        return subject.fault_severity
    return _LEVEL_SEVERITY.get(transition.level, subject.severity)


def _number(value: float | None) -> float | None:
    """NaN (no trustworthy reading) is published as null: JSON has no NaN."""
    return None if value is None or math.isnan(value) else value
