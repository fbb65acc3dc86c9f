"""Device availability as the command center sees it: retained status, and comms events.

Each device has a retained ``devices/{id}/status`` message: online, offline
or faulty, since when and why, with its poll (or message) counters and what
its driver adds (wire counters). Polled and pushed devices alike (see
gateway.poll.availability); it is
published when the availability changes and refreshed every ``REFRESH_S`` so
the counters stay current. Going down raises a comms event; coming back clears it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from gateway.config.models import GatewayIdentity
from gateway.events.devices import DeviceEvents
from gateway.outbox import Outbox, Priority
from gateway.poll.availability import ONLINE, Availability
from gateway.service.supervisor import Supervisor
from gateway.timestamps import iso_utc

REFRESH_S = 60.0
REMOVED = "removed"  # the last state of a device taken out of the config


def status_topic(device: str) -> str:
    return f"devices/{device}/status"


class DeviceStates:
    """Publishes what the pollers and heartbeat watches know about their devices."""

    def __init__(
        self,
        identity: GatewayIdentity,
        outbox: Outbox,
        devices: Sequence[str],
        supervisor: Supervisor | None = None,
    ) -> None:
        self._outbox = outbox
        self._supervisor = supervisor or Supervisor()
        self.events = DeviceEvents(identity, outbox, devices)

    def changed(self, device: Availability) -> None:
        """A device's availability changed: publish it, and raise or clear its comms event."""
        if device.state == ONLINE:
            self.events.clear(device.device, ts=device.since)
        elif device.state is not None:
            hold_s = device.offline_after * (device.interval or 0.0)
            self.events.raise_event(
                device.device, device.state, device.reason, ts=device.since, hold_s=hold_s
            )
        self.publish(device)

    def publish(self, device: Availability) -> None:
        message = body(device, batch_errors=self._supervisor.batch_errors[device.device])
        self._outbox.enqueue(Priority.STATE, status_topic(device.device), message, retain=True)

    def removed(self, device: Availability) -> None:
        """``device`` left the config: its last status, retained, says so; its comms event clears."""
        now = time.time()
        self.events.forget(device.device, ts=now)
        message = body(device, batch_errors=self._supervisor.batch_errors[device.device])
        message.update(state=REMOVED, since=iso_utc(now), reason="removed from the config")
        self._outbox.enqueue(Priority.STATE, status_topic(device.device), message, retain=True)

    def publish_all(self, devices: Sequence[Availability]) -> None:
        """Every known status at once (on a connection: the broker may have lost them)."""
        for device in devices:
            if device.state is not None:
                self.publish(device)

    async def refresh(self, devices: Sequence[Availability], every_s: float = REFRESH_S) -> None:
        """Republish every known status now and then, so counters on the broker stay fresh."""
        while True:
            await asyncio.sleep(every_s)
            self.publish_all(devices)


def body(device: Availability, *, batch_errors: int = 0) -> dict[str, Any]:
    """The status message of one device (docs/schemas/device-status.json)."""
    message: dict[str, Any] = {
        "ts": iso_utc(time.time()),
        "device": device.device,
        "driver": device.driver_name,
        "mode": device.mode,
        "state": device.state,
        "since": iso_utc(device.since),
        "reason": device.reason,
        "poll_interval_s": device.interval,
        "polls": device.polls,
        "failures": device.failures,
        "failed_in_row": device.failed_in_row,
        "last_ok": None if device.last_ok is None else iso_utc(device.last_ok),
        "batch_errors": batch_errors,
        "bus": None,
        "counters": None,
    }
    message.update(device.status_fields())
    return message
