"""kill -9 of `gridgate run` in the middle of an apply, and after its commit: one whole config in force."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import aiomqtt

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.remote.bundles import sign_bundle
from gateway.remote.trusted_state import load_trusted
from tests.conftest import gateway_toml
from tests.helpers import Subscriber
from tests.keys import MAINTAINER

ROOT = Path(__file__).resolve().parent.parent


def _bundle(config: str, version: int) -> bytes:
    body = {
        "format": 1,
        "version": version,
        "expires": int(time.time()) + 600,
        "targets": {"gateways": ["gw-test-01"]},
        "config": config,
        "profiles": {},
    }
    return json.dumps(sign_bundle(body, MAINTAINER.private_key, MAINTAINER.key_id)).encode()


async def _gateway(config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "run",
        "--config",
        str(config),
        cwd=ROOT,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _kill(process: asyncio.subprocess.Process) -> None:
    os.kill(process.pid, signal.SIGKILL)
    await process.wait()


async def test_kill_9_while_applying_leaves_the_old_config_and_after_the_commit_the_new(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    tmp_path: Path,
    topic_prefix: str,
) -> None:
    old = gateway_toml(
        broker_port=broker.port,
        modbus_port=dust_monitor.port,
        storage=tmp_path / "state",
        prefix=topic_prefix,
        extra="[commands]\napply_window_s = 60.0\n",
    )
    config = tmp_path / "site.toml"
    config.write_text(old)
    topic = f"{topic_prefix}/gw-test-01/config/bundle"
    dead = old.replace(f"port = {dust_monitor.port}", f"port = {free_port()}")

    gateway = await _gateway(config)
    try:
        await subscriber.wait_for(lambda m: m.topic.endswith("/devices/dust-01/status"), timeout=60)
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.publish(topic, _bundle(dead, 1), qos=1)
        await subscriber.wait_for(lambda m: m.payload.get("state") == "applying", timeout=30)
        assert config.read_text() == dead  # written, not committed: in its health window
    finally:
        await _kill(gateway)

    seen = len(subscriber.received)
    gateway = await _gateway(config)
    try:
        await subscriber.wait_for(lambda m: m.payload.get("state") == "online", timeout=60, after=seen)
        assert config.read_text() == old and load_trusted(tmp_path / "state").version == 0
        dust_monitor.set("pm10", 31.5)  # the device of the old config is polled again
        await subscriber.reading("dust-01", "pm10", 31.5, after=seen)

        new = old.replace("high = 150.0", "high = 120.0")
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.publish(topic, _bundle(new, 2), qos=1)
        await subscriber.wait_for(lambda m: m.payload.get("state") == "committed", timeout=60, after=seen)
    finally:
        await _kill(gateway)
    assert config.read_text() == new and load_trusted(tmp_path / "state").version == 2

    seen = len(subscriber.received)
    gateway = await _gateway(config)
    try:
        await subscriber.wait_for(lambda m: m.payload.get("state") == "online", timeout=60, after=seen)
        dust_monitor.set("pm10", 130.0)  # over the new limit, under the old one
        await subscriber.wait_for(lambda m: m.payload.get("state") == "raised", timeout=30, after=seen)
    finally:
        await _kill(gateway)
    assert config.read_text() == new
