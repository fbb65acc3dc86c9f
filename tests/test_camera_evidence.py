"""Camera triggers and sensor alarms carry picture evidence, end to end: camera simulator → gateway → MQTT."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt

from drivers.simulators.camera import CameraSimulator, hikvision_alert
from drivers.simulators.jpeg import jpeg
from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config import GatewayConfig
from tests.helpers import Received, Subscriber, running_gateway
from tests.keys import signed

CAMERA = """
[cameras]
host = "127.0.0.1"
port = {receiver}

[[devices]]
id = "cam-01"
driver = "camera"
format = "hikvision"
heartbeat_s = 30

[devices.snapshot]
url = "{snapshot_url}"
username = "admin"
password_file = "{password_file}"

[[rules]]
device = "cam-01"
channel = "line_crossing"
high = 0.5
hysteresis = 0.0
hold_s = 0.0
severity = "important"
category = "security.line_crossing"

[evidence]
chunk_bytes = 1024
"""


def _config(
    make_config: Any,
    broker: LocalBroker,
    dust: SimulatedModbusDevice,
    camera: CameraSimulator,
    tmp_path: Path,
) -> tuple[GatewayConfig, int]:
    secret = tmp_path / "camera.pw"
    secret.write_text("camera-pass\n")
    receiver = free_port()
    extra = CAMERA.format(receiver=receiver, snapshot_url=camera.snapshot_url, password_file=secret)
    return make_config(broker.port, dust.port, extra=extra), receiver


def _raised(device: str):  # type: ignore[no-untyped-def]
    return lambda m: (
        m.topic.endswith("/events") and m.payload["state"] == "raised" and m.payload["device"] == device
    )


def _snapshots(message: Received) -> list[dict[str, Any]]:
    return [e for e in message.payload["evidence"] if e["kind"] == "snapshot"]


def _reply_to(correlation: str) -> Callable[[Received], bool]:
    return lambda m: m.topic.endswith("/commands/response") and m.payload.get("correlation_id") == correlation


async def _fetch_picture(broker: LocalBroker, root: str, subscriber: Subscriber, evidence_id: str) -> bytes:
    """Ask for the picture chunk by chunk, as a command center would."""
    data = b""
    offset: int | None = 0
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        while offset is not None:
            request = {
                "command": "evidence",
                "evidence_id": evidence_id,
                "offset": offset,
                "correlation_id": str(offset),
            }
            if offset == 0:  # pictures show people: an unsigned request gets nothing
                unsigned = {**request, "correlation_id": "unsigned"}
                await client.publish(f"{root}/commands/request", json.dumps(unsigned), qos=1)
                refused = await subscriber.wait_for(_reply_to("unsigned"))
                assert refused.payload["ok"] is False and refused.payload["error"]["code"] == "unsigned"
            await client.publish(f"{root}/commands/request", signed(request), qos=1)
            reply = await subscriber.wait_for(_reply_to(str(offset)))
            result = reply.payload["result"]
            assert len(result["data"]) <= 4 * 1024 / 3 + 4  # within the configured chunk
            data += base64.b64decode(result["data"])
            offset = result["next_offset"]
    return data


async def test_a_sensor_alarm_gets_a_snapshot_of_its_grid_cell_and_a_camera_trigger_keeps_its_picture(
    broker: LocalBroker,
    subscriber: Subscriber,
    dust_monitor: SimulatedModbusDevice,
    make_config: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    async with CameraSimulator() as camera:
        config, receiver = _config(make_config, broker, dust_monitor, camera, tmp_path)
        async with running_gateway(config) as daemon:
            assert daemon.uplink is not None
            await asyncio.wait_for(daemon.uplink.connected.wait(), 10)
            dust_monitor.set("pm10", 187.5)
            raised = await subscriber.wait_for(_raised("dust-01"), timeout=20)
            assert _snapshots(raised) == []  # the alarm never waits for a camera
            updated = await subscriber.wait_for(
                lambda m: (
                    m.topic.endswith("/events") and m.payload["state"] == "updated" and bool(_snapshots(m))
                ),
                timeout=20,
            )
            assert updated.payload["event_id"] == raised.payload["event_id"]
            [snapshot] = _snapshots(updated)
            assert snapshot["camera"] == "cam-01" and camera.snapshots == 1
            root = f"{topic_prefix}/gw-test-01"
            picture = await _fetch_picture(broker, root, subscriber, snapshot["evidence_id"])
            assert (
                hashlib.sha256(picture).hexdigest() == snapshot["sha256"] and len(picture) == snapshot["size"]
            )
            assert picture.startswith(b"\xff\xd8")

            pushed = jpeg(seed=99)
            url = f"http://127.0.0.1:{receiver}/cameras/cam-01"
            status, _ = await camera.push(url, hikvision_alert("line_crossing"), picture=pushed)
            assert status == 200
            trigger = await subscriber.wait_for(_raised("cam-01"), timeout=20)
            [kept] = _snapshots(trigger)
            assert kept["sha256"] == hashlib.sha256(pushed).hexdigest()
            assert camera.snapshots == 1  # the pushed picture is the evidence; nothing fetched
            online = await subscriber.wait_for(
                lambda m: m.topic.endswith("/devices/cam-01/status") and m.payload["state"] == "online",
                timeout=10,
            )
            assert online.payload["counters"]["pictures"] == 1
    stored = list((tmp_path / "state" / "evidence").glob("*.jpg"))
    assert len(stored) == 2


async def test_an_unreachable_camera_leaves_the_alarm_as_it_was(
    broker: LocalBroker,
    subscriber: Subscriber,
    dust_monitor: SimulatedModbusDevice,
    make_config: Any,
    tmp_path: Path,
) -> None:
    async with CameraSimulator(password="other") as camera:
        config, _ = _config(make_config, broker, dust_monitor, camera, tmp_path)
        async with running_gateway(config) as daemon:
            assert daemon.uplink is not None
            await asyncio.wait_for(daemon.uplink.connected.wait(), 10)
            dust_monitor.set("pm10", 187.5)
            raised = await subscriber.wait_for(_raised("dust-01"), timeout=20)
            await asyncio.sleep(1.0)
    updates = [
        m for m in subscriber.received if m.topic.endswith("/events") and m.payload["state"] == "updated"
    ]
    assert updates == [] and _snapshots(raised) == []
