"""Signed bundles over MQTT, end to end: applied and committed, or rolled back by themselves.

A real Mosquitto, the gateway in this process with its site config in a file,
a real Modbus device. Every config/status message is checked against
docs/schemas/config-status.json by the subscriber.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiomqtt

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config import parse_config
from gateway.remote.apply import recover
from gateway.remote.bundles import sign_bundle
from gateway.remote.trusted_state import TrustedState, load_trusted, save_trusted
from gateway.service.daemon import Daemon
from tests.conftest import gateway_toml
from tests.helpers import Received, Subscriber, running_gateway
from tests.keys import COMMAND_CENTER, MAINTAINER

WINDOW = "[commands]\napply_window_s = 3.0\n"


def _site(tmp_path: Path, broker: LocalBroker, modbus_port: int, prefix: str) -> str:
    return gateway_toml(
        broker_port=broker.port,
        modbus_port=modbus_port,
        storage=tmp_path / "state",
        prefix=prefix,
        extra=WINDOW,
    )


def _bundle(config: str, version: int, signer: Any = MAINTAINER) -> bytes:
    body = {
        "format": 1,
        "version": version,
        "expires": int(time.time()) + 600,
        "targets": {"gateways": ["gw-test-01"]},
        "config": config,
        "profiles": {},
    }
    return json.dumps(sign_bundle(body, signer.private_key, signer.key_id)).encode()


async def _push(broker: LocalBroker, prefix: str, subscriber: Subscriber, bundle: bytes) -> Received:
    seen = len(subscriber.received)
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.publish(f"{prefix}/gw-test-01/config/bundle", bundle, qos=1)
    return await subscriber.wait_for(
        lambda m: m.topic.endswith("/config/status") and m.payload["state"] != "applying",
        timeout=30,
        after=seen,
    )


async def test_a_bundle_is_applied_and_committed_and_the_same_one_is_refused_after(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    site = _site(tmp_path, broker, dust_monitor.port, topic_prefix)
    path = tmp_path / "site.toml"
    path.write_text(site)
    new = site.replace("high = 150.0", "high = 120.0")
    async with running_gateway(parse_config(site), config_path=path) as daemon:
        await subscriber.wait_for(lambda m: m.topic.endswith("/devices/dust-01/status"))
        status = await _push(broker, topic_prefix, subscriber, _bundle(new, 1))
        assert status.payload["state"] == "committed", status.payload
        assert status.payload["in_force"] == 1 and status.payload["seconds"] > 0
        assert daemon.config.rules[0].high == 120.0 and path.read_text() == new
        dust_monitor.set("pm10", 130.0)  # the new limit is in force
        await subscriber.wait_for(lambda m: m.payload.get("state") == "raised")

        again = await _push(broker, topic_prefix, subscriber, _bundle(new, 1))
        assert again.payload["state"] == "refused" and again.payload["reasons"][0] == "not_newer"
        forged = await _push(broker, topic_prefix, subscriber, _bundle(site, 2, signer=COMMAND_CENTER))
        assert forged.payload["state"] == "refused" and forged.payload["reasons"][0] == "bad_signature"
        broken = await _push(
            broker, topic_prefix, subscriber, _bundle(site.replace("[uplink]", "[uplinc]"), 3)
        )
        assert broken.payload["reasons"][0] == "invalid" and len(broken.payload["reasons"]) >= 2
        assert path.read_text() == new and daemon.config.rules[0].high == 120.0  # nothing changed
    assert load_trusted(tmp_path / "state").version == 1


async def test_a_bundle_that_breaks_a_device_is_rolled_back_by_itself(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    site = _site(tmp_path, broker, dust_monitor.port, topic_prefix)
    path = tmp_path / "site.toml"
    path.write_text(site)
    dead = site.replace(f"port = {dust_monitor.port}", f"port = {free_port()}")
    async with running_gateway(parse_config(site), config_path=path) as daemon:
        await subscriber.wait_for(
            lambda m: m.topic.endswith("/devices/dust-01/status") and m.payload["state"] == "online"
        )
        status = await _push(broker, topic_prefix, subscriber, _bundle(dead, 5))
        assert status.payload["state"] == "rolled_back", status.payload
        assert "dust-01" in " ".join(status.payload["reasons"]) and status.payload["in_force"] == 0
        assert status.payload["version"] == 5
        assert path.read_text() == site and daemon.config.devices[0].port == dust_monitor.port  # type: ignore[attr-defined]
        seen = len(subscriber.received)
        dust_monitor.set("pm10", 33.5)
        await subscriber.reading("dust-01", "pm10", 33.5, after=seen)  # polled again, with the old config
    assert load_trusted(tmp_path / "state") == TrustedState()  # version 0, nothing pending


async def test_a_burst_of_bundles_is_applied_one_after_the_other_and_the_highest_stays(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    site = _site(tmp_path, broker, dust_monitor.port, topic_prefix)
    path = tmp_path / "site.toml"
    path.write_text(site)
    limits = {3: 130.0, 1: 110.0, 2: 120.0}  # out of order: 1 and 2 arrive after 3, too old by then
    async with running_gateway(parse_config(site), config_path=path) as daemon:
        await subscriber.wait_for(lambda m: m.topic.endswith("/devices/dust-01/status"))
        seen = len(subscriber.received)
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            for version, high in limits.items():
                bundle = _bundle(site.replace("high = 150.0", f"high = {high}"), version)
                await client.publish(f"{topic_prefix}/gw-test-01/config/bundle", bundle, qos=1)

        def outcomes() -> dict[int, str]:
            return {
                m.payload["version"]: m.payload["state"]
                for m in subscriber.received[seen:]
                if m.topic.endswith("/config/status") and m.payload["state"] != "applying"
            }

        for _ in range(300):
            if len(outcomes()) == 3:
                break
            await asyncio.sleep(0.1)
        assert outcomes() == {3: "committed", 1: "refused", 2: "refused"}
        assert daemon.config.rules[0].high == 130.0
    assert load_trusted(tmp_path / "state").version == 3


def test_an_apply_cut_short_leaves_the_old_config_in_force(tmp_path: Path) -> None:
    """What kill -9 between writing the new config and the commit leaves behind, recovered at start."""
    path, storage = tmp_path / "site.toml", tmp_path / "state"
    path.write_text("new = true\n")
    save_trusted(storage, TrustedState(version=8, digest="d8", previous="old = true\n"))
    assert recover(path, storage) is True
    assert path.read_text() == "old = true\n" and load_trusted(storage) == TrustedState(8, "d8")
    assert recover(path, storage) is False and path.read_text() == "old = true\n"


async def test_a_local_edit_and_sighup_get_the_same_checks_window_and_rollback(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    site = _site(tmp_path, broker, dust_monitor.port, topic_prefix)
    path = tmp_path / "site.toml"
    path.write_text(site)

    async def reload(daemon: Daemon) -> Received:
        seen = len(subscriber.received)
        daemon.reload()
        return await subscriber.wait_for(
            lambda m: m.topic.endswith("/config/status") and m.payload["state"] != "applying",
            timeout=30,
            after=seen,
        )

    async with running_gateway(parse_config(site), config_path=path) as daemon:
        await subscriber.wait_for(
            lambda m: m.topic.endswith("/devices/dust-01/status") and m.payload["state"] == "online"
        )
        path.write_text(site.replace("high = 150.0", "high = 99999"))  # a typo'd rule, still valid
        assert (await reload(daemon)).payload["state"] == "committed"
        assert daemon.config.rules[0].high == 99999
        path.write_text(site.replace("[uplink]", "[uplinc]"))
        refused = await reload(daemon)
        assert refused.payload["state"] == "refused" and refused.payload["reasons"][0] == "invalid"
        assert daemon.config.rules[0].high == 99999  # the running config is kept
        dead = site.replace(f"port = {dust_monitor.port}", f"port = {free_port()}")
        path.write_text(dead)
        rolled = await reload(daemon)
        assert rolled.payload["state"] == "rolled_back" and "dust-01" in rolled.payload["reasons"][0]
        assert path.read_text() == site.replace("high = 150.0", "high = 99999")  # the last good one
        assert (tmp_path / "site.toml.rejected").read_text() == dead  # the edit, kept to fix
