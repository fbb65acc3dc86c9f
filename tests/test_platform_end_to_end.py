"""Platform devices through the whole gateway: a second Mosquitto stands in for the IoT platform.

An NB-IoT smoke detector's alarm (China Telecom AEP push) becomes an urgent
event at the command center, once however often the platform repeats it; a
LoRa cover (ChirpStack v4) that misses its heartbeats goes offline with a
comms event, and comes back with the next uplink.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from drivers.simulators.platform_devices import (
    ALARM,
    HEARTBEAT,
    NORMAL,
    SMOKE,
    chirpstack_up,
    cover_payload,
    smoke_report,
)
from firmware_tools.local_broker import LocalBroker
from gateway.config import parse_config
from gateway.service.daemon import Daemon
from tests.helpers import Subscriber, running_gateway
from tests.platform_support import publish, until

IMEI = "860374051096202"
EUI = "a84041000181c772"
SMOKE_TOPIC = "aep/dataReport"


def _site(uplink: int, platform: int, storage: Path, prefix: str) -> str:
    return f"""
[gateway]
id = "gw-test-01"
site = "Test site"
grid_cell = "330106001001"

[uplink]
host = "127.0.0.1"
port = {uplink}
topic_prefix = "{prefix}"
reconnect_min_s = 0.1
reconnect_max_s = 0.5
health_s = 0.5

[storage]
directory = "{storage}"
telemetry_commit_s = 0.1

[events]
flap_window_s = 0

[[platforms]]
id = "aep"
host = "127.0.0.1"
port = {platform}
format = "nbiot_json"
topics = ["{SMOKE_TOPIC}"]
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[[platforms]]
id = "lora"
host = "127.0.0.1"
port = {platform}
format = "chirpstack_v4"
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[[devices]]
id = "smoke-01"
driver = "platform"
profile = "nbiot-smoke-detector"
platform = "aep"
match = "{IMEI}"

[[devices]]
id = "cover-07"
profile = "lora-manhole-cover"
platform = "lora"
match = "{EUI.upper()}"
heartbeat_s = 0.5
missed_heartbeats = 2

[[rules]]
device = "smoke-01"
channel = "smoke_alarm"
high = 0.5
hold_s = 0.0
severity = "urgent"
category = "fire.smoke"

[[rules]]
device = "cover-07"
channel = "tilt_deg"
high = 10.0
hold_s = 0.0
category = "municipal.manhole.tilt"
"""


async def _subscribed(daemon: Daemon) -> None:
    """The platform brokers keep nothing for a subscriber that is not there yet: wait for the bridge."""
    await until(lambda: all(getattr(s, "connected", True) for s in daemon.running.streams))


def _events(subscriber: Subscriber, category: str, state: str) -> list[dict]:  # type: ignore[type-arg]
    return [
        m.payload
        for m in subscriber.received
        if m.topic.endswith("/events") and m.payload["category"] == category and m.payload["state"] == state
    ]


async def test_a_smoke_alarm_from_the_platform_is_one_event_however_often_the_platform_repeats_it(
    broker: LocalBroker, own_broker: LocalBroker, subscriber: Subscriber, topic_prefix: str, tmp_path: Path
) -> None:
    config = parse_config(_site(broker.port, own_broker.port, tmp_path / "state", topic_prefix))
    async with running_gateway(config) as daemon:
        await _subscribed(daemon)
        await publish(own_broker.port, (SMOKE_TOPIC, smoke_report(IMEI, NORMAL, ts=time.time())))
        await subscriber.wait_for(lambda m: m.topic.endswith("/telemetry/smoke-01"), timeout=10)
        alarm = smoke_report(IMEI, SMOKE, ts=time.time(), smoke=1.8)
        await publish(own_broker.port, *[(SMOKE_TOPIC, alarm)] * 3)  # the platform re-sends after a reconnect
        raised = await subscriber.wait_for(
            lambda m: m.topic.endswith("/events") and m.payload["state"] == "raised", timeout=10
        )
        await publish(own_broker.port, (SMOKE_TOPIC, smoke_report(IMEI, NORMAL, ts=time.time())))
        await subscriber.wait_for(
            lambda m: m.topic.endswith("/events") and m.payload["state"] == "cleared", timeout=10
        )
        # An alarm older than what the detector sent since: history, flagged late, no new event.
        await publish(own_broker.port, (SMOKE_TOPIC, smoke_report(IMEI, SMOKE, ts=time.time() - 60)))
        late = await subscriber.wait_for(
            lambda m: m.topic.endswith("/telemetry/smoke-01") and m.payload.get("late") is True, timeout=10
        )
        await publish(own_broker.port, (SMOKE_TOPIC, smoke_report("860000000000000", NORMAL, ts=time.time())))
        health = await subscriber.wait_for(
            lambda m: (
                m.topic.endswith("/health")
                and m.payload.get("inputs", {})
                .get("platform:aep", {})
                .get("unmatched", {})
                .get("unknown_device")
                == 1
            ),
            timeout=10,
        )
        status = await subscriber.wait_for(lambda m: m.topic.endswith("/devices/smoke-01/status"))
        smoke = next(d for d in daemon.running.availability if d.device == "smoke-01")
        counters = smoke.status_fields()["counters"]  # what its next status message carries
    assert health.payload["inputs"]["platform:aep"]["connected"] is True  # a stranger counted, not lost
    assert raised.payload["device"] == "smoke-01" and raised.payload["severity"] == "urgent"
    assert raised.payload["grid_cell"] == "330106001001"
    assert len(_events(subscriber, "fire.smoke", "raised")) == 1
    assert len(_events(subscriber, "fire.smoke", "cleared")) == 1
    assert late.payload["readings"]["smoke_alarm"] == 1
    assert status.payload["mode"] == "pushed" and status.payload["driver"] == "platform"
    assert counters["duplicates"] == 2 and counters["late"] == 1 and counters["decoded"] == 4


async def test_a_cover_that_misses_its_heartbeats_goes_offline_and_comes_back_with_its_next_uplink(
    broker: LocalBroker, own_broker: LocalBroker, subscriber: Subscriber, topic_prefix: str, tmp_path: Path
) -> None:
    config = parse_config(_site(broker.port, own_broker.port, tmp_path / "state", topic_prefix))

    def status(state: str):  # type: ignore[no-untyped-def]
        return lambda m: m.topic.endswith("/devices/cover-07/status") and m.payload["state"] == state

    async with running_gateway(config) as daemon:
        await _subscribed(daemon)
        await publish(own_broker.port, chirpstack_up(EUI, 1, cover_payload(HEARTBEAT), ts=time.time()))
        await subscriber.wait_for(status("online"), timeout=10)
        quiet = len(subscriber.received)
        offline = await subscriber.wait_for(status("offline"), timeout=10, after=quiet)
        raised = await subscriber.wait_for(
            lambda m: m.topic.endswith("/events") and m.payload["category"] == "device.comms", timeout=10
        )
        back = len(subscriber.received)
        tilted = cover_payload(ALARM, 1, tilt_deg=35.2)
        await publish(own_broker.port, chirpstack_up(EUI, 2, tilted, ts=time.time()))
        tilt = await subscriber.wait_for(
            lambda m: m.topic.endswith("/events") and m.payload["category"] == "municipal.manhole.tilt",
            timeout=10,
            after=back,
        )
        cleared = await subscriber.wait_for(
            lambda m: (
                m.topic.endswith("/events")
                and m.payload["category"] == "device.comms"
                and m.payload["state"] == "cleared"
            ),
            timeout=10,
            after=back,
        )
        await asyncio.sleep(0)
    assert "no message for" in offline.payload["reason"]
    assert raised.payload["device"] == "cover-07" and raised.payload["condition"] == "offline"
    assert cleared.payload["event_id"] == raised.payload["event_id"]
    assert tilt.payload["value"] == 35.2 and tilt.payload["unit"] == "°"
