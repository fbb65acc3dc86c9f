"""Events of one grid cell within a window raise the one that completed them: camera trigger + dust alarm."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from drivers.simulators.camera import CameraSimulator, hikvision_alert
from drivers.simulators.jpeg import jpeg
from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config.correlation import CorrelationMember
from tests.helpers import Received, Subscriber, running_gateway

SITE = """
[cameras]
host = "127.0.0.1"
port = {receiver}

[[devices]]
id = "cam-01"
driver = "camera"
{cell}

[[rules]]
device = "cam-01"
channel = "intrusion"
high = 0.5
hysteresis = 0.0
hold_s = 0.0
category = "security.intrusion"

[[correlations]]
name = "dust-with-intruder"
within_s = 30
members = [{{ category = "security" }}, {{ category = "env.dust" }}]
"""


def _event(device: str, state: str):  # type: ignore[no-untyped-def]
    return lambda m: (
        m.topic.endswith("/events") and m.payload["device"] == device and m.payload["state"] == state
    )


@pytest.mark.parametrize("same_cell", [True, False])
async def test_a_camera_trigger_then_a_dust_alarm_in_one_cell_raise_the_alarm_with_both_listed(
    broker: LocalBroker,
    subscriber: Subscriber,
    dust_monitor: SimulatedModbusDevice,
    make_config: Any,
    same_cell: bool,
) -> None:
    receiver = free_port()
    cell = "" if same_cell else 'grid_cell = "330106001999"'
    config = make_config(broker.port, dust_monitor.port, extra=SITE.format(receiver=receiver, cell=cell))
    async with CameraSimulator() as camera, running_gateway(config) as daemon:
        assert daemon.uplink is not None
        await asyncio.wait_for(daemon.uplink.connected.wait(), 10)
        picture = jpeg(seed=5)
        url = f"http://127.0.0.1:{receiver}/cameras/cam-01"
        assert (await camera.push(url, hikvision_alert("intrusion"), picture=picture))[0] == 200
        trigger = await subscriber.wait_for(_event("cam-01", "raised"), timeout=20)
        dust_monitor.set("pm10", 187.5)
        raised = await subscriber.wait_for(_event("dust-01", "raised"), timeout=20)
        assert raised.payload["severity"] == "important"
        if same_cell:
            updated: Received = await subscriber.wait_for(_event("dust-01", "updated"), timeout=20)
            assert updated.payload["severity"] == "urgent"
            correlation = updated.payload["correlation"]
            assert correlation["rule"] == "dust-with-intruder"
            assert [e["event_id"] for e in correlation["events"]] == [trigger.payload["event_id"]]
            digests = {e.get("sha256") for e in updated.payload["evidence"]}
            assert hashlib.sha256(picture).hexdigest() in digests
        else:
            await asyncio.sleep(0.5)
            assert not [m for m in subscriber.received if _event("dust-01", "updated")(m)]


def test_a_member_names_something() -> None:
    with pytest.raises(ValueError, match="category, a device, or both"):
        CorrelationMember()
    member = CorrelationMember(category="fire.smoke")
    assert member.matches("smoke-01", "fire.smoke.alarm") and not member.matches("smoke-01", "fire.smokes")
