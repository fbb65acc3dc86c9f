"""The one event model: every event — detection alarm, fault, anomaly, comms — is raised and acked here.

:class:`Raised` holds what differs between kinds of event when one opens;
:func:`payload` turns it into the message every kind shares
(docs/schemas/event.json), with the gateway's identity and the lifecycle
fields. :func:`acknowledged` and :func:`ack_reply` are the one way an open
event is marked as seen. Later states are the open payload with changes.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config.models import GatewayIdentity
from gateway.timestamps import iso_utc


@dataclass(frozen=True, slots=True)
class Raised:
    """What a new event says about itself; the lifecycle fields are filled in by :func:`payload`."""

    event_class: str  # alarm, fault or anomaly
    severity: str
    category: str
    device: str
    channel: str | None
    unit: str
    facet: str
    level: str | None
    condition: str
    direction: str | None
    value: float | None
    limit: float | None
    hysteresis: float
    hold_s: float
    rule: str
    evidence: tuple[Mapping[str, Any], ...] = ()
    code: str | None = None
    detail: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def payload(identity: GatewayIdentity, raised: Raised, ts: float) -> dict[str, Any]:
    """The ``raised`` message of a new event, with a fresh event id."""
    seen = iso_utc(ts)
    event: dict[str, Any] = {
        "ts": seen,
        "event_id": str(uuid.uuid4()),
        "state": "raised",
        "class": raised.event_class,
        "severity": raised.severity,
        "category": raised.category,
        "device": raised.device,
        "channel": raised.channel,
        "unit": raised.unit,
        "site": identity.site,
        "grid_cell": identity.grid_cell,
        "facet": raised.facet,
        "level": raised.level,
        "condition": raised.condition,
        "direction": raised.direction,
        "value": number(raised.value),
        "limit": number(raised.limit),
        "hysteresis": raised.hysteresis,
        "hold_s": raised.hold_s,
        "raised_at": seen,
        "first_seen": seen,
        "last_seen": seen,
        "peak": number(raised.value),
        "count": 1,
        "rule": raised.rule,
        "evidence": [{**e, "ts": seen} for e in raised.evidence],
    }
    if raised.code is not None:
        event["code"] = raised.code
    if raised.detail is not None:
        event["detail"] = raised.detail
    if identity.location is not None:
        event["location"] = identity.location.model_dump()
    event.update(raised.extra)
    return event


def acknowledged(event: Mapping[str, Any], operator: str, now: float) -> dict[str, Any] | None:
    """The changes that mark ``event`` as seen by ``operator``; None if someone already did."""
    if event.get("acknowledged_by"):
        return None
    return {"acknowledged_by": operator, "acknowledged_at": iso_utc(now)}


def ack_reply(event: Mapping[str, Any]) -> dict[str, Any]:
    """What an acknowledge command is answered with, for an open event."""
    return {
        "event_id": event["event_id"],
        "state": "open",
        "acknowledged_by": event["acknowledged_by"],
        "acknowledged_at": event["acknowledged_at"],
    }


def number(value: float | None) -> float | None:
    """NaN (no trustworthy reading) is published as null: JSON has no NaN."""
    return None if value is None or math.isnan(value) else value
