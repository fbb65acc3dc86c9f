"""A dust exceedance sent by the HJ 212 datalogger simulator over TCP ends as an alarm on MQTT."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from drivers.simulators.hj212_datalogger import Hj212Datalogger
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config import parse_config
from tests.helpers import Subscriber, running_gateway

MN = "010000A8900016F000169DC0"


def _site(broker_port: int, listen_port: int, storage: Path, prefix: str) -> str:
    return f"""
[gateway]
id = "gw-test-01"
site = "Test site"
grid_cell = "330106001001"

[uplink]
host = "127.0.0.1"
port = {broker_port}
topic_prefix = "{prefix}"
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[storage]
directory = "{storage}"

[hj212]
host = "127.0.0.1"
port = {listen_port}

[[devices]]
id = "dust-hj-01"
driver = "hj212"
mn = "{MN}"
pw = "123456"
channels = [
    {{ id = "tsp", code = "a34001", unit = "µg/m³" }},
    {{ id = "pm10", code = "a34002", unit = "µg/m³" }},
    {{ id = "noise", code = "LA", unit = "dB(A)" }},
]

[[rules]]
device = "dust-hj-01"
channel = "pm10"
high = 150.0
hysteresis = 10.0
category = "env.dust.pm10"
"""


async def test_simulated_exceedance_is_answered_and_raises_an_alarm(
    broker: LocalBroker, subscriber: Subscriber, topic_prefix: str, tmp_path: Path
) -> None:
    listen_port = free_port()
    config = parse_config(_site(broker.port, listen_port, tmp_path / "state", topic_prefix))
    datalogger = Hj212Datalogger(
        mn=MN,
        pw="123456",
        scenario="exceedance",
        interval_s=0.2,
        minute_s=0.5,
        period_s=60,
        start_s=0.5,
        excursion_s=30,
        seed=1,
    )
    async with running_gateway(config):
        sending = asyncio.create_task(datalogger.run("127.0.0.1", listen_port), name="datalogger")
        try:
            raised = (
                await subscriber.wait_for(
                    lambda m: m.topic.endswith("/events") and m.payload["state"] == "raised", timeout=20
                )
            ).payload
            minute = await subscriber.wait_for(
                lambda m: "/telemetry/" in m.topic and "pm10.minute_avg" in m.payload["readings"],
                timeout=20,
            )
        finally:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
    assert raised["device"] == "dust-hj-01" and raised["channel"] == "pm10"
    assert raised["value"] > 150.0 and raised["unit"] == "µg/m³"
    assert "pm10" not in minute.payload["readings"]  # statistics travel apart from instant values
    assert datalogger.latencies_s and all(a.cn == "9014" for a in datalogger.answers)
    assert {a.mn for a in datalogger.answers} == {MN}
