"""A config change applied piecewise, end to end: only the runners of what changed restart.

A real Mosquitto, the gateway in this process with its site config in a file,
real Modbus devices (pymodbus): one direct Modbus TCP dust monitor with a rule,
a second one, and a fume monitor behind a Modbus TCP gateway (a ``[[buses]]``
entry). What the command center sees is asserted on the broker side: no new
birth, no status of an untouched device other than online, its telemetry
flowing through the apply.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.simulators.dust_monitor import CHANNELS as DUST_CHANNELS
from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config import parse_config
from tests.helpers import Received, Subscriber, running_gateway
from tests.keys import MAINTAINER
from tests.test_command_auth import Requester
from tests.test_config_apply import _bundle, _push, _site

CHANNELS = ",\n".join(
    f'  {{ id = "{ch.id}", address = {ch.address}, type = "{ch.type}", scale = {ch.scale},'
    f' unit = "{ch.unit}" }}'
    for ch in DUST_CHANNELS
)


def _direct(device: str, port: int, channels: str = CHANNELS) -> str:
    return f"""
[[devices]]
id = "{device}"
driver = "modbus_tcp"
host = "127.0.0.1"
port = {port}
poll_interval_s = 0.1
timeout_s = 0.5
retry_max_s = 0.5
channels = [
{channels}
]
"""


def _on_bus(port: int) -> str:
    return f"""
[[buses]]
id = "line-1"
transport = "tcp"
host = "127.0.0.1"
port = {port}

[[devices]]
id = "fume-01"
driver = "modbus"
bus = "line-1"
unit_id = 1
poll_interval_s = 0.1
timeout_s = 0.5
retry_max_s = 0.5
channels = [
{CHANNELS}
]
"""


@pytest.fixture
async def monitors() -> AsyncIterator[list[SimulatedModbusDevice]]:
    """Two more field devices answering Modbus TCP (dust-02, and fume-01 behind a gateway)."""
    devices = [SimulatedModbusDevice(DUST_CHANNELS) for _ in range(2)]
    for device in devices:
        for channel in device.channels:
            device.set(channel, 20.0)
        await device.serve_tcp("127.0.0.1", free_port())
    yield devices
    for device in devices:
        await device.stop()


def _after(subscriber: Subscriber, seen: int, suffix: str) -> list[Received]:
    return [m for m in subscriber.received[seen:] if m.topic.endswith(suffix)]


def _only_online(subscriber: Subscriber, seen: int, device: str) -> bool:
    """Every status of ``device`` since ``seen`` says online (none at all: it did not change)."""
    return all(m.payload["state"] == "online" for m in _after(subscriber, seen, f"/devices/{device}/status"))


async def _online(subscriber: Subscriber, *devices: str) -> None:
    for device in devices:
        await subscriber.wait_for(
            lambda m, d=device: m.topic.endswith(f"/devices/{d}/status") and m.payload["state"] == "online"  # type: ignore[misc]
        )


async def test_a_changed_register_map_restarts_that_device_alone_and_an_open_alarm_stays_open(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    monitors: list[SimulatedModbusDevice],
    subscriber: Subscriber,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    second, fume = monitors
    site = _site(tmp_path, broker, dust_monitor.port, topic_prefix) + _direct("dust-02", second.port)
    site += _on_bus(fume.port)
    path = tmp_path / "site.toml"
    path.write_text(site)
    # dust-02's pm10 read with scale 1 instead of 0.1: a changed register map for that device only
    pm10 = next(ch for ch in DUST_CHANNELS if ch.id == "pm10")
    rescaled = _direct("dust-02", second.port).replace(
        f'id = "pm10", address = {pm10.address}, type = "{pm10.type}", scale = {pm10.scale}',
        f'id = "pm10", address = {pm10.address}, type = "{pm10.type}", scale = {pm10.scale * 10}',
    )
    new = site.replace(_direct("dust-02", second.port), rescaled)
    assert new != site
    async with running_gateway(parse_config(site), config_path=path) as daemon:
        await _online(subscriber, "dust-01", "dust-02", "fume-01")
        dust_monitor.set("pm10", 200.0)
        raised = await subscriber.wait_for(lambda m: m.payload.get("state") == "raised")
        uplink, connections = daemon.uplink, daemon.uplink.connections if daemon.uplink else -1
        pollers = {p.device: p for p in daemon.running.pollers}
        seen = len(subscriber.received)

        status = await _push(broker, topic_prefix, subscriber, _bundle(new, 1))

        assert status.payload["state"] == "committed", status.payload
        assert status.payload["apply"] == {
            "path": "piecewise",
            "changed": ["devices"],
            "restarted": ["modbus_tcp:dust-02"],
            "added": [],
            "removed": [],
        }
        assert daemon.uplink is uplink and uplink is not None and uplink.connections == connections
        assert not _after(subscriber, seen, "/state"), "a new birth: the uplink reconnected"
        for device in ("dust-01", "fume-01"):  # the same poller, never offline
            assert next(p for p in daemon.running.pollers if p.device == device) is pollers[device]
            assert _only_online(subscriber, seen, device)
        assert next(p for p in daemon.running.pollers if p.device == "dust-02") is not pollers["dust-02"]
        assert not [m for m in subscriber.received[seen:] if m.payload.get("state") in ("raised", "cleared")]

        seen = len(subscriber.received)
        second.set("pm10", 30.0)  # the register now holds 300 (0.1 units), read at scale 1.0
        await subscriber.reading("dust-02", "pm10", 300.0, after=seen)
        dust_monitor.set("pm10", 20.0)  # the alarm opened before the apply clears: its state was kept
        cleared = await subscriber.wait_for(lambda m: m.payload.get("state") == "cleared", after=seen)
        assert cleared.payload["event_id"] == raised.payload["event_id"]


async def test_a_device_is_added_and_one_removed_without_touching_the_others(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    monitors: list[SimulatedModbusDevice],
    subscriber: Subscriber,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    second, third = monitors
    site = _site(tmp_path, broker, dust_monitor.port, topic_prefix) + _direct("dust-02", second.port)
    path = tmp_path / "site.toml"
    path.write_text(site)
    new = site.replace(_direct("dust-02", second.port), _direct("dust-03", third.port))
    async with running_gateway(parse_config(site), config_path=path) as daemon:
        await _online(subscriber, "dust-01", "dust-02")
        seen = len(subscriber.received)
        status = await _push(broker, topic_prefix, subscriber, _bundle(new, 1))
        assert status.payload["state"] == "committed", status.payload
        apply = status.payload["apply"]
        assert (
            apply["path"] == "piecewise" and apply["added"] == ["dust-03"] and apply["removed"] == ["dust-02"]
        )
        assert sorted(apply["restarted"]) == ["modbus_tcp:dust-02", "modbus_tcp:dust-03"]
        await _online(subscriber, "dust-03")
        gone = _after(subscriber, seen, "/devices/dust-02/status")
        assert gone and gone[-1].payload["state"] == "removed"
        topic = f"{topic_prefix}/gw-test-01/devices/dust-02/status"
        async with Subscriber("127.0.0.1", broker.port, topic) as late:  # what a consumer starting now gets
            kept = await late.wait_for(lambda m: True)
            assert kept.retain and kept.payload["state"] == "removed"
        assert all(
            m.payload["state"] == "online" for m in _after(subscriber, seen, "/devices/dust-01/status")
        )
        assert [a.device for a in daemon.running.availability] == ["dust-01", "dust-03"]
        assert not _after(subscriber, seen, "/state")


async def test_a_change_that_breaks_a_bus_is_rolled_back_piecewise(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    monitors: list[SimulatedModbusDevice],
    subscriber: Subscriber,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    fume = monitors[1]
    site = _site(tmp_path, broker, dust_monitor.port, topic_prefix) + _on_bus(fume.port)
    path = tmp_path / "site.toml"
    path.write_text(site)
    broken = site.replace(_on_bus(fume.port), _on_bus(free_port()))
    async with running_gateway(parse_config(site), config_path=path) as daemon:
        await _online(subscriber, "dust-01", "fume-01")
        uplink = daemon.uplink
        seen = len(subscriber.received)
        status = await _push(broker, topic_prefix, subscriber, _bundle(broken, 1))
        assert status.payload["state"] == "rolled_back", status.payload
        assert "fume-01" in " ".join(status.payload["reasons"])
        assert status.payload["apply"]["path"] == "piecewise"
        assert status.payload["apply"]["restarted"] == ["modbus:line-1"]
        assert path.read_text() == site and daemon.uplink is uplink
        assert all(
            m.payload["state"] == "online" for m in _after(subscriber, seen, "/devices/dust-01/status")
        )
        assert not _after(subscriber, seen, "/state")
        seen = len(subscriber.received)
        fume.set("pm10", 44.0)
        await subscriber.reading("fume-01", "pm10", 44.0, after=seen)  # the old bus back, polled again


@pytest.mark.parametrize("whole", [False, True], ids=["piecewise", "whole-runtime"])
async def test_a_config_whose_listener_cannot_start_is_rolled_back_in_process(
    whole: bool,
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    site = _site(tmp_path, broker, dust_monitor.port, topic_prefix)
    path = tmp_path / "site.toml"
    path.write_text(site)
    with socket.socket() as taken:  # another program holds the port the new config listens on
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        new = site + f'\n[hj212]\nhost = "127.0.0.1"\nport = {port}\n'
        if whole:  # a rule changes too: the whole runtime restarts with the new config
            new = new.replace("high = 150.0", "high = 140.0")
        async with running_gateway(parse_config(site), config_path=path) as daemon:
            await _online(subscriber, "dust-01")
            status = await _push(broker, topic_prefix, subscriber, _bundle(new, 1))
            assert status.payload["state"] == "rolled_back", status.payload
            assert status.payload["apply"]["path"] == ("restart" if whole else "piecewise")
            reasons = " ".join(status.payload["reasons"])
            assert "stream:hj212" in reasons and f"cannot listen on 127.0.0.1:{port}" in reasons
            assert path.read_text() == site and daemon.config.section("hj212") is None
            seen = len(subscriber.received)
            dust_monitor.set("pm10", 55.5)
            await subscriber.reading("dust-01", "pm10", 55.5, after=seen)  # still running, the old config


async def test_the_restart_command_restarts_the_stream_of_a_pushed_device(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    site = (
        _site(tmp_path, broker, dust_monitor.port, topic_prefix)
        + f"""
[hj212]
host = "127.0.0.1"
port = {port}

[[devices]]
id = "dust-hj-01"
driver = "hj212"
mn = "88888880000001"
pw = "123456"
channels = [{{ id = "pm10", code = "a34002", unit = "µg/m³" }}]
"""
    )
    requests = Requester(broker, topic_prefix, subscriber)
    async with running_gateway(parse_config(site)) as daemon:
        await _online(subscriber, "dust-01")
        before = list(daemon.running.streams)
        reply = await requests.ask({"command": "restart", "device": "dust-hj-01"}, signer=MAINTAINER)
        assert reply.payload["ok"] is True and reply.payload["result"]["restarting"] is True, reply.payload
        assert len(daemon.running.streams) == 1 and daemon.running.streams[0] is not before[0]
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)  # listens again
        writer.close()
        unknown = await requests.ask({"command": "restart", "device": "nope"}, signer=MAINTAINER)
        assert unknown.payload["error"]["code"] == "unknown_device"
