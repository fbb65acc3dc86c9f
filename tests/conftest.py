"""Real peers for the tests: a Mosquitto per session, pymodbus servers as field devices.

Every test is checked for what it leaves behind: threads, child processes and
asyncio tasks must all be gone when it ends.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.simulators.dust_monitor import CHANNELS as DUST_CHANNELS
from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config import GatewayConfig, parse_config
from tests.helpers import Subscriber
from tests.keys import trusted_keys_toml


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    """One Mosquitto for the whole session; tests keep apart by topic prefix."""
    with LocalBroker() as running:
        yield running


@pytest.fixture
def own_broker() -> Iterator[LocalBroker]:
    """A Mosquitto this test alone may stop and start."""
    with LocalBroker() as running:
        yield running


@pytest.fixture
async def dust_monitor() -> AsyncIterator[SimulatedModbusDevice]:
    """A construction-dust monitor answering Modbus TCP on ``dust_monitor.port``."""
    device = SimulatedModbusDevice(DUST_CHANNELS)
    for channel in device.channels:
        device.set(channel, 20.0)
    await device.serve_tcp("127.0.0.1", free_port())
    yield device
    await device.stop()


@pytest.fixture
def topic_prefix() -> str:
    return f"test/{uuid.uuid4().hex[:12]}"


def gateway_toml(
    *,
    broker_port: int,
    modbus_port: int,
    storage: Path,
    prefix: str,
    rules: str = "",
    extra: str = "",
    flap_window_s: float = 0.2,
) -> str:
    """A site config for one dust monitor on ``modbus_port``; event timers are short for tests."""
    channels = ",\n".join(
        f'  {{ id = "{ch.id}", address = {ch.address}, type = "{ch.type}", scale = {ch.scale},'
        f' unit = "{ch.unit}" }}'
        for ch in DUST_CHANNELS
    )
    default_rules = """
[[rules]]
device = "dust-01"
channel = "pm10"
high = 150.0
hysteresis = 10.0
hold_s = 0.0
severity = "important"
category = "env.dust.pm10"
"""
    return f"""
[gateway]
id = "gw-test-01"
site = "Test site"
grid_cell = "330106001001"
location = {{ lat = 30.27, lon = 120.15, address = "test bench" }}

[uplink]
host = "127.0.0.1"
port = {broker_port}
topic_prefix = "{prefix}"
reconnect_min_s = 0.1
reconnect_max_s = 0.5
health_s = 0.5

[storage]
directory = "{storage}"

[events]
flap_window_s = {flap_window_s}
escalate_after_s = 0.5
escalate_every_s = 0.5
verify_hold_s = 0.6
verify_max_gap_s = 2.0

[[devices]]
id = "dust-01"
driver = "modbus_tcp"
host = "127.0.0.1"
port = {modbus_port}
poll_interval_s = 0.1
timeout_s = 0.5
retry_max_s = 0.5
channels = [
{channels}
]
{rules or default_rules}
{extra}
{trusted_keys_toml()}"""


@pytest.fixture
def make_config(tmp_path: Path, topic_prefix: str):  # type: ignore[no-untyped-def]
    def make(broker_port: int, modbus_port: int, **kwargs: Any) -> GatewayConfig:
        text = gateway_toml(
            broker_port=broker_port,
            modbus_port=modbus_port,
            storage=tmp_path / "state",
            prefix=topic_prefix,
            **kwargs,
        )
        return parse_config(text)

    return make


@pytest.fixture
async def subscriber(broker: LocalBroker, topic_prefix: str) -> AsyncIterator[Subscriber]:
    async with Subscriber("127.0.0.1", broker.port, f"{topic_prefix}/#") as sub:
        yield sub


def _child_pids() -> set[int]:
    me = str(os.getpid())
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[1] == me and fields[0] != "Z":
            children.add(int(entry.name))
    return children


@pytest.fixture(autouse=True)
def _leaves_no_threads_or_processes() -> Iterator[None]:
    threads = set(threading.enumerate())
    children = _child_pids()
    yield
    deadline = time.monotonic() + 2.0
    while True:
        new_threads = [
            t
            for t in threading.enumerate()
            if t not in threads and t.is_alive() and not t.name.startswith("asyncio_")
        ]  # asyncio_N: the loop's resolver pool, shut down with the loop after this fixture
        new_children = _child_pids() - children
        if not new_threads and not new_children:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"test left behind threads {new_threads} and processes {sorted(new_children)}")
        time.sleep(0.05)


@pytest.fixture(autouse=True)
async def _leaves_no_tasks() -> AsyncIterator[None]:
    yield
    me = asyncio.current_task()
    for _ in range(20):
        left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if not left:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"test left behind tasks: {[t.get_name() for t in left]}")
