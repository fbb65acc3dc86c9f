"""Overload: polls are held back while the uplink cannot keep up, never during an outage."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker
from gateway.config import parse_config
from tests.conftest import gateway_toml
from tests.helpers import running_gateway


def _site(
    broker: LocalBroker, device: SimulatedModbusDevice, tmp_path: Path, prefix: str, poll_s: float
) -> str:
    site = gateway_toml(
        broker_port=broker.port, modbus_port=device.port, storage=tmp_path / "state", prefix=prefix
    )
    return site.replace("poll_interval_s = 0.1", f"poll_interval_s = {poll_s}")


async def _polls_in(device: SimulatedModbusDevice, seconds: float) -> int:
    before = device.requests
    await asyncio.sleep(seconds)
    return device.requests - before


async def test_polls_wait_while_the_broker_takes_nothing_more_and_go_on_through_an_outage(
    own_broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    tmp_path: Path,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = _site(own_broker, dust_monitor, tmp_path, topic_prefix, poll_s=0.05)
    site = site.replace("health_s = 0.5", "health_s = 0.5\ninflight_window = 2")
    caplog.set_level(logging.INFO, logger="gateway.poll.pacing")
    async with running_gateway(parse_config(site)) as daemon:
        assert await _polls_in(dust_monitor, 0.5) >= 5
        # A broker that takes no more (stopped, its connection still up): the window fills, the
        # uplink falls behind, and the readings it could not publish are not read at all.
        os.kill(own_broker.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(0.6)
            held = await _polls_in(dust_monitor, 1.0)
        finally:
            os.kill(own_broker.pid, signal.SIGCONT)
        assert held <= 1, held
        assert "polls are held back" in caplog.text
        assert await _polls_in(dust_monitor, 1.0) >= 10, "polled again once the broker takes messages"
        assert "the uplink caught up" in caplog.text
        # An outage is not overload: the readings are kept on disk for when it is back.
        own_broker.stop()
        await asyncio.sleep(0.5)
        assert await _polls_in(dust_monitor, 1.0) >= 10
        assert daemon.uplink is not None and not daemon.uplink.behind()


async def test_a_gateway_with_time_on_its_hands_never_holds_a_poll_back(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    tmp_path: Path,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = _site(broker, dust_monitor, tmp_path, topic_prefix, poll_s=0.4)
    caplog.set_level(logging.INFO, logger="gateway.poll.pacing")
    async with running_gateway(parse_config(site)):
        assert await _polls_in(dust_monitor, 2.1) >= 5
    assert "held back" not in caplog.text
