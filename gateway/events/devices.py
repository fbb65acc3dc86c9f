"""Comms events: a device that stops answering (or answers garbage) is an event of its own.

Devices that fail silently and are never repaired are a known weakness of
street-cabinet networks, so losing a device is published like any fault: a
``raised`` event when it goes offline or faulty, a ``cleared`` one with the same
id when it answers again. Open comms events are kept in the outbox's key-value
table, so a restart neither forgets nor repeats them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from gateway.config.models import GatewayIdentity
from gateway.events.alarms import publish_clear, publish_open, publish_recovered
from gateway.events.model import Raised, ack_reply, acknowledged, payload
from gateway.events.open_list import DEVICE_KEYS
from gateway.outbox import Outbox
from gateway.timestamps import iso_utc

log = logging.getLogger(__name__)

_KV_PREFIX = DEVICE_KEYS


class DeviceEvents:
    """Raises and clears the comms event of each device."""

    def __init__(self, identity: GatewayIdentity, outbox: Outbox, devices: Iterable[str]) -> None:
        self._identity = identity
        self._outbox = outbox
        self._open: dict[str, dict[str, Any]] = {}
        known = set(devices)
        for key, text in outbox.kv_items(_KV_PREFIX).items():
            event = json.loads(text)
            if event["device"] in known:
                if outbox.recovered:  # the command center may have lost it with the outbox
                    event = publish_recovered(outbox, key, event)
                self._open[event["device"]] = event
            else:
                log.warning("device %s is gone from the config; clearing its comms event", event["device"])
                self._clear(event, ts=time.time(), reason="rule removed")

    @property
    def open_events(self) -> list[dict[str, Any]]:
        return list(self._open.values())

    def raise_event(self, device: str, state: str, reason: str, *, ts: float, hold_s: float) -> None:
        """Open (or, from offline to faulty, update) the comms event of ``device``."""
        seen = iso_utc(ts)
        opened = self._open.get(device)
        if opened is not None:
            if opened["condition"] == state:
                return
            event = {
                **opened,
                "ts": seen,
                "state": "updated",
                "condition": state,
                "last_seen": seen,
                "detail": reason,
            }
        else:
            event = self._raised(device, state, reason, ts, hold_s)
        self._open[device] = event
        publish_open(self._outbox, _KV_PREFIX + device, event)

    def acknowledge(self, event_id: str, operator: str) -> dict[str, Any] | None:
        """Mark the open comms event ``event_id`` as seen; None if it is not one."""
        device = next((d for d, e in self._open.items() if e["event_id"] == event_id), None)
        if device is None:
            return None
        event = self._open[device]
        now = time.time()
        changes = acknowledged(event, operator, now)
        if changes is not None:
            event = {**event, **changes, "ts": iso_utc(now), "state": "acknowledged"}
            self._open[device] = event
            publish_open(self._outbox, _KV_PREFIX + device, event)
        return ack_reply(event)

    def clear(self, device: str, *, ts: float) -> None:
        opened = self._open.pop(device, None)
        if opened is not None:
            self._clear(opened, ts=ts, reason="back to normal")

    def forget(self, device: str, *, ts: float) -> None:
        """``device`` left the config: its comms event, if open, clears (it cannot clear by itself)."""
        opened = self._open.pop(device, None)
        if opened is not None:
            self._clear(opened, ts=ts, reason="device removed")

    def _raised(self, device: str, state: str, reason: str, ts: float, hold_s: float) -> dict[str, Any]:
        raised = Raised(
            event_class="fault",
            severity="important",
            category="device.comms",
            device=device,
            channel=None,
            unit="",
            facet="comms",
            level=None,
            condition=state,
            direction=None,
            value=None,
            limit=None,
            hysteresis=0,
            hold_s=hold_s,
            rule=f"{device} comms",
            evidence=({"kind": "device_status", "topic": f"devices/{device}/status"},),
            detail=reason,
        )
        return payload(self._identity, raised, ts)

    def _clear(self, event: dict[str, Any], *, ts: float, reason: str) -> None:
        publish_clear(self._outbox, _KV_PREFIX + event["device"], event, value=None, ts=ts, reason=reason)
