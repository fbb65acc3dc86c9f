"""Device availability as the command center sees it: retained status, and comms events.

Each polled device has a retained ``devices/{id}/status`` message: online,
offline or faulty, since when and why, with its poll and wire counters. It is
published when the availability changes and refreshed every ``REFRESH_S`` so
the counters stay current. Going down raises a comms event; coming back clears it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from drivers.modbus.device import ModbusBusDriver
from gateway.config.models import GatewayIdentity
from gateway.events.devices import DeviceEvents
from gateway.outbox import Outbox, Priority
from gateway.poll import DevicePoller
from gateway.poll.poller import ONLINE
from gateway.service.supervisor import Supervisor
from gateway.timestamps import iso_utc

REFRESH_S = 60.0


def status_topic(device: str) -> str:
    return f"devices/{device}/status"


class DeviceStates:
    """Publishes what the pollers know about their devices."""

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

    def changed(self, poller: DevicePoller) -> None:
        """A poller's availability changed: publish it, and raise or clear its comms event."""
        if poller.state == ONLINE:
            self.events.clear(poller.device, ts=poller.since)
        elif poller.state is not None:
            hold_s = poller.offline_after * poller.interval
            self.events.raise_event(
                poller.device, poller.state, poller.reason, ts=poller.since, hold_s=hold_s
            )
        self.publish(poller)

    def publish(self, poller: DevicePoller) -> None:
        message = body(poller, batch_errors=self._supervisor.batch_errors[poller.device])
        self._outbox.enqueue(Priority.STATE, status_topic(poller.device), message, retain=True)

    def publish_all(self, pollers: Sequence[DevicePoller]) -> None:
        """Every known status at once (on a connection: the broker may have lost them)."""
        for poller in pollers:
            if poller.state is not None:
                self.publish(poller)

    async def refresh(self, pollers: Sequence[DevicePoller], every_s: float = REFRESH_S) -> None:
        """Republish every known status now and then, so counters on the broker stay fresh."""
        while True:
            await asyncio.sleep(every_s)
            self.publish_all(pollers)


def body(poller: DevicePoller, *, batch_errors: int = 0) -> dict[str, Any]:
    """The status message of one device (docs/schemas/device-status.json)."""
    driver = poller.driver
    message: dict[str, Any] = {
        "ts": iso_utc(time.time()),
        "device": poller.device,
        "driver": driver.config.driver,
        "state": poller.state,
        "since": iso_utc(poller.since),
        "reason": poller.reason,
        "poll_interval_s": poller.interval,
        "polls": poller.polls,
        "failures": poller.failures,
        "failed_in_row": poller.failed_in_row,
        "last_ok": None if poller.last_ok is None else iso_utc(poller.last_ok),
        "batch_errors": batch_errors,
        "bus": None,
        "counters": None,
    }
    if isinstance(driver, ModbusBusDriver):
        message["bus"] = driver.bus.id
        message["counters"] = driver.counters.as_dict()
    return message
