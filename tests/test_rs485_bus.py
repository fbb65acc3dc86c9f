"""One RS-485 line over a pty pair, shared by eight devices of the four shipped profiles.

The gateway runs as a user runs it (site config → daemon → Mosquitto); the
devices are simulated RTU slaves on the other end of the pty.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from drivers.simulators.field_devices import make_device
from drivers.simulators.modbus_device import SimulatedModbusDevice
from drivers.simulators.rtu_server import RtuLineServer
from firmware_tools.command_client import send_command
from firmware_tools.local_broker import LocalBroker
from gateway.config.load import parse_config
from tests.helpers import Received, Subscriber, running_gateway
from tests.keys import COMMAND_CENTER, trusted_keys_toml

PERIOD_S = 0.5
PROFILES = ("dust-monitor", "oil-fume-monitor", "manhole-cover", "smoke-panel")
DEAD_UNIT = 8


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _site(path: str, storage: Path, broker: int, prefix: str) -> str:
    devices = "".join(
        f"""
[[devices]]
id = "dev-{unit}"
driver = "modbus"
bus = "rs485-1"
unit_id = {unit}
profile = "{PROFILES[(unit - 1) // 2]}"
poll_interval_s = {PERIOD_S}
timeout_s = 0.15
retries = 1
offline_after = 3
retry_max_s = {PERIOD_S}
"""
        for unit in range(1, 9)
    )
    return f"""
[gateway]
id = "gw-test-01"
site = "Test cabinet"
grid_cell = "330106001001"

[uplink]
host = "127.0.0.1"
port = {broker}
topic_prefix = "{prefix}"
reconnect_min_s = 0.1

[storage]
directory = "{storage}"
telemetry_commit_s = 0.2

[[buses]]
id = "rs485-1"
transport = "rtu"
device = "{path}"
baudrate = 9600
# These slaves do not wait for other units' answers, and the test is about scheduling with
# timeouts far below libmodbus' 0.5 s: without this, each try of the dead unit holds the line 0.6 s.
after_silence_s = 0
{devices}
{trusted_keys_toml()}"""


@pytest.fixture
async def line() -> AsyncIterator[tuple[RtuLineServer, str]]:
    devices = [make_device(PROFILES[(unit - 1) // 2], unit, seed=unit)[0] for unit in range(1, 9)]
    server = RtuLineServer(devices)
    path = await server.serve_pty()
    yield server, path
    await server.stop()


def _status(device: str, state: str):  # type: ignore[no-untyped-def]
    return lambda m: m.topic.endswith(f"/devices/{device}/status") and m.payload["state"] == state


def _intervals(received: list[Received], device: str, since: float) -> list[float]:
    stamps = sorted(
        _ts(m.payload["ts"])
        for m in received
        if m.topic.endswith(f"/telemetry/{device}") and _ts(m.payload["ts"]) >= since
    )
    return [b - a for a, b in itertools.pairwise(stamps)]


async def test_a_dead_device_on_the_bus_does_not_starve_the_seven_others(
    line: tuple[RtuLineServer, str], broker: LocalBroker, tmp_path: Path, topic_prefix: str
) -> None:
    server, path = line
    dead: SimulatedModbusDevice = server.devices[DEAD_UNIT]
    dead.silent = True
    config = parse_config(_site(path, tmp_path / "state", broker.port, topic_prefix))
    async with Subscriber("127.0.0.1", broker.port, f"{topic_prefix}/#") as sub, running_gateway(config):
        started = time.time()
        offline = await sub.wait_for(_status("dev-8", "offline"), timeout=10)
        # Three polls: the first at once, while all eight queue on the 9600-baud line (seven answers
        # and this timeout, about 0.4 s); when that round ends past the device's first slot in the
        # period, the slot is skipped (an overrun never bursts), so the next two come a period apart
        # from the slot after it: within four periods, not three.
        assert _ts(offline.payload["since"]) - started <= 4 * PERIOD_S, "offline within 4 periods"
        assert offline.payload["counters"]["timeouts"] >= 3
        async with Subscriber("127.0.0.1", broker.port, offline.topic) as late:
            retained = await late.wait_for(lambda m: True)
        assert retained.retain and retained.payload["state"] == "offline"
        raised = (await sub.wait_for(lambda m: m.topic.endswith("/events"))).payload
        assert (raised["device"], raised["facet"], raised["condition"]) == ("dev-8", "comms", "offline")
        assert raised["class"] == "fault" and raised["channel"] is None
        ack = {"command": "ack", "event_id": raised["event_id"], "operator": "li"}
        answer = await send_command(
            "127.0.0.1", broker.port, ack, prefix=topic_prefix, gateway="gw-test-01", signer=COMMAND_CENTER
        )
        assert answer["ok"] and answer["result"]["acknowledged_by"] == COMMAND_CENTER.key_id
        acked = await sub.wait_for(
            lambda m: m.topic.endswith("/events") and m.payload["state"] == "acknowledged"
        )
        assert acked.payload["event_id"] == raised["event_id"]

        await asyncio.sleep(4.0)  # the seven others, polled while dev-8 is probed
        for unit in range(1, 8):
            intervals = _intervals(sub.received, f"dev-{unit}", started)
            assert len(intervals) >= 6, f"dev-{unit} was polled"
            mean = statistics.fmean(intervals)
            assert abs(mean - PERIOD_S) <= 0.1 * PERIOD_S, f"dev-{unit} polled every {mean:.3f} s"

        dead.silent = False
        back_at = time.time()
        online = await sub.wait_for(_status("dev-8", "online"), timeout=10)
        assert _ts(online.payload["since"]) - back_at <= PERIOD_S, "online within one period"
        cleared = await sub.wait_for(
            lambda m: m.topic.endswith("/events") and m.payload["state"] == "cleared"
        )
        assert cleared.payload["event_id"] == raised["event_id"]
        await sub.wait_for(lambda m: m.topic.endswith("/telemetry/dev-8"), timeout=5)
    assert all(
        m.payload["state"] == "online"
        for m in sub.received
        if "/devices/dev-" in m.topic and not m.topic.endswith("dev-8/status")
    ), "no device but the dead one ever left online"
