"""Detection in the running gateway: fault events over MQTT, state kept across a restart."""

from __future__ import annotations

import json
from pathlib import Path

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker
from gateway.detect.codes import S_B_N, S_BUCKET
from gateway.detect.persist import STATE_FILE
from tests.helpers import Subscriber, running_gateway

RULES = """
[[rules]]
device = "dust-01"
channel = "pm10"
high = 150.0
category = "env.dust.pm10"
window = { bucket_s = 3600, daily_limit = 80.0, daily_max = 2 }

[[cross_rules]]
device = "dust-01"
category = "sensor.pm25_above_pm10"
kind = "fault"
all = [{ channel = "pm25", op = ">", than = "pm10" }]
"""


async def test_an_impossible_reading_is_published_as_a_fault_and_state_survives_a_restart(
    broker: LocalBroker, dust_monitor: SimulatedModbusDevice, subscriber: Subscriber, make_config
) -> None:
    config = make_config(broker.port, dust_monitor.port, rules=RULES)
    state_file = config.storage.directory / STATE_FILE
    async with running_gateway(config):
        dust_monitor.set("pm10", 40.0)
        dust_monitor.set("pm25", 90.0)
        fault = await subscriber.wait_for(lambda m: m.payload.get("class") == "fault")
        dust_monitor.set("pm25", 20.0)
        await subscriber.wait_for(lambda m: m.payload.get("state") == "cleared")
    assert fault.payload["condition"] == "cross_channel"
    assert fault.payload["severity"] == "important" and fault.payload["channel"] == "pm25+pm10"
    before = _pm10_state(state_file)
    assert before[S_B_N] > 0  # the hour's readings so far were saved at stop

    async with running_gateway(config):
        await subscriber.wait_for(
            lambda m: m.topic.endswith("/telemetry/dust-01"), after=len(subscriber.received)
        )
    after = _pm10_state(state_file)
    if after[S_BUCKET] == before[S_BUCKET]:  # (unless the hour turned meanwhile)
        assert after[S_B_N] > before[S_B_N]  # the restarted gateway went on counting the same hour


def _pm10_state(path: Path) -> list[float]:
    saved = json.loads(path.read_text())
    (entry,) = [v for k, v in saved["subjects"].items() if k.startswith("dust-01/pm10/")]
    return list(entry["state"])
