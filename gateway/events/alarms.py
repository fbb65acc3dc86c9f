"""Alarms: raised → (updated, acknowledged, escalated) → cleared, one stable event id throughout.

An open alarm is stored in the outbox's key-value table in the same
transaction as the event that opened it, so after a crash or restart the
gateway still knows it and the clear carries the same event id.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.config.models import GatewayIdentity, ThresholdRule
from gateway.detect.engine import Transition
from gateway.outbox import Outbox, Priority
from gateway.timestamps import iso_utc

log = logging.getLogger(__name__)

EVENTS_TOPIC = "events"
_KV_PREFIX = "alarm/"


def rule_key(rule: ThresholdRule) -> str:
    """Names a rule by what it checks, so a reordered config still finds its alarms."""
    return f"{_KV_PREFIX}{rule.device}/{rule.channel}/{rule.category}/{rule.high}/{rule.low}"


def rule_id(rule: ThresholdRule) -> str:
    """How an event names the rule that raised it, e.g. ``dust-01/pm10 > 150``."""
    limits = [f"> {rule.high:g}"] if rule.high is not None else []
    limits += [f"< {rule.low:g}"] if rule.low is not None else []
    return f"{rule.device}/{rule.channel} {' or '.join(limits)}"


class AlarmBook:
    """Open alarms of this gateway, and the events that open and close them."""

    def __init__(
        self,
        identity: GatewayIdentity,
        rules: Sequence[ThresholdRule],
        units: Mapping[tuple[str, str], str],
        outbox: Outbox,
    ) -> None:
        self._identity = identity
        self._rules = tuple(rules)
        self._units = units
        self._outbox = outbox
        self._keys = [rule_key(rule) for rule in self._rules]
        self._open: dict[int, dict[str, Any]] = {}

    def restore(self) -> list[tuple[int, str]]:
        """Reload open alarms; return (rule, direction) pairs for the detection engine.

        An alarm whose rule is no longer configured cannot clear by itself, so it
        is cleared now, saying why.
        """
        slots = {key: i for i, key in enumerate(self._keys)}
        restored: list[tuple[int, str]] = []
        for key, text in self._outbox.kv_items(_KV_PREFIX).items():
            event = json.loads(text)
            rule = slots.get(key)
            if rule is None:
                log.warning("alarm %s: its rule is gone from the config; clearing it", event["event_id"])
                self._publish_clear(key, event, value=None, ts=time.time(), reason="rule removed")
                continue
            self._open[rule] = event
            restored.append((rule, event["direction"]))
        return restored

    @property
    def open_alarms(self) -> list[dict[str, Any]]:
        return list(self._open.values())

    def slot_of(self, event_id: str) -> int | None:
        """The rule slot of the open event ``event_id``, if it is open."""
        return next((slot for slot, e in self._open.items() if e["event_id"] == event_id), None)

    def event(self, slot: int) -> dict[str, Any] | None:
        return self._open.get(slot)

    def open(self, transition: Transition) -> dict[str, Any]:
        """Publish a raised event for a detection transition; return it."""
        rule = self._rules[transition.rule]
        event = self._raised(rule, transition)
        self._open[transition.rule] = event
        self._outbox.enqueue(
            Priority.EVENT, EVENTS_TOPIC, event, kv={self._keys[transition.rule]: json.dumps(event)}
        )
        log.warning(
            "alarm raised: %s %s/%s = %g (limit %g)",
            event["category"], rule.device, rule.channel, transition.value, event["limit"],
        )
        return event

    def publish(self, slot: int, state: str, ts: float, **changes: Any) -> dict[str, Any]:
        """Publish the open event of ``slot`` again as ``state`` (updated, escalated, ...)."""
        event = {**self._open[slot], **changes, "ts": iso_utc(ts), "state": state}
        self._open[slot] = event
        self._outbox.enqueue(Priority.EVENT, EVENTS_TOPIC, event, kv={self._keys[slot]: json.dumps(event)})
        return event

    def close(self, slot: int, *, value: float | None, ts: float, **changes: Any) -> dict[str, Any] | None:
        """Publish the clear of the open event of ``slot``; return the event it closed."""
        opened = self._open.pop(slot, None)
        if opened is None:
            return None
        rule = self._rules[slot]
        self._publish_clear(self._keys[slot], {**opened, **changes}, value=value, ts=ts, reason="back to normal")
        log.warning("alarm cleared: %s %s/%s = %s", opened["category"], rule.device, rule.channel, value)
        return opened

    def _raised(self, rule: ThresholdRule, transition: Transition) -> dict[str, Any]:
        limit = rule.high if transition.direction == "high" else rule.low
        identity = self._identity
        event: dict[str, Any] = {
            "ts": iso_utc(transition.ts),
            "event_id": str(uuid.uuid4()),
            "state": "raised",
            "severity": rule.severity,
            "category": rule.category,
            "device": rule.device,
            "channel": rule.channel,
            "unit": self._units.get((rule.device, rule.channel), ""),
            "site": identity.site,
            "grid_cell": identity.grid_cell,
            "direction": transition.direction,
            "value": transition.value,
            "limit": limit,
            "hysteresis": rule.hysteresis,
            "hold_s": rule.hold_s,
            "raised_at": iso_utc(transition.ts),
            "first_seen": iso_utc(transition.ts),
            "last_seen": iso_utc(transition.ts),
            "peak": transition.value,
            "count": 1,
            "rule": rule_id(rule),
            "evidence": [{"kind": "telemetry", "topic": f"telemetry/{rule.device}", "ts": iso_utc(transition.ts)}],
        }
        if rule.code is not None:
            event["code"] = rule.code
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
            "value": value,
            "cleared_at": iso_utc(ts),
            "reason": reason,
        }
        self._outbox.enqueue(Priority.EVENT, EVENTS_TOPIC, cleared, kv={key: None})
