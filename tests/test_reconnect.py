"""What a reconnection must restore, and what a seq hole means (docs/mqtt-api.md, Envelope)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker
from tests.chaos_tools import losses, tally
from tests.helpers import Subscriber, running_gateway
from tests.uplink_peers import DurableSubscriber, persistent_broker

MARK = 33.25  # a pm10 value set only after the outage: its telemetry is the positive signal


async def test_an_outage_with_failed_reconnects_leaves_no_seq_hole(
    tmp_path: Path, dust_monitor: SimulatedModbusDevice, make_config
) -> None:  # type: ignore[no-untyped-def]
    with persistent_broker(tmp_path / "broker") as broker:
        config = make_config(broker.port, dust_monitor.port)
        root = f"{config.uplink.topic_prefix}/{config.gateway.id}"
        async with DurableSubscriber(broker.port, f"{root}/#") as cc:
            async with running_gateway(config):
                await cc.wait_until(lambda: cc.seqs("/telemetry/dust-01"), timeout=60)
                broker.stop()
                await asyncio.sleep(3.0)  # reconnect_min_s 0.1, max 0.5: a few failed attempts
                dust_monitor.set("pm10", MARK)
                broker.start()
                await cc.wait_until(lambda: _telemetry_with(cc, MARK), timeout=30)
                await cc.wait_until(lambda: not losses(cc.received), timeout=30)
                births = [p for t, p in cc.received if t.endswith("/state") and p["state"] == "online"]
                assert [b["bd_seq"] for b in births] == [births[0]["bd_seq"], births[0]["bd_seq"] + 1], (
                    "failed attempts take no bd_seq"
                )
            await cc.wait_until(lambda: not tally(cc.received, []).holes, timeout=30)
    seqs = sorted({p["seq"] for _, p in cc.received})
    print(f"\noutage with failed reconnects: seq {seqs[0]}..{seqs[-1]}, holes 0")


def _telemetry_with(cc: DurableSubscriber, value: float) -> bool:
    return any(t.endswith("/telemetry/dust-01") and p["readings"]["pm10"] == value for t, p in cc.received)


async def test_retained_device_status_is_back_at_once_after_a_broker_restart_without_persistence(
    own_broker: LocalBroker, dust_monitor: SimulatedModbusDevice, make_config, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    config = make_config(own_broker.port, dust_monitor.port)
    root = f"{topic_prefix}/{config.gateway.id}"
    async with running_gateway(config):
        async with Subscriber("127.0.0.1", own_broker.port, f"{root}/#") as before:
            await before.wait_for(lambda m: m.topic.endswith("/devices/dust-01/status"), timeout=60)
        own_broker.stop()
        own_broker.start()  # forgot every retained message
        async with Subscriber("127.0.0.1", own_broker.port, f"{root}/#") as after:
            # Statuses are refreshed only every 60 s: well before that, on the reconnection.
            status = await after.wait_for(lambda m: m.topic.endswith("/devices/dust-01/status"), timeout=10)
            assert status.payload["state"] == "online"
            birth = await after.wait_for(lambda m: m.payload.get("state") == "online", timeout=10)
            deaths = [m.payload for m in after.received if m.payload.get("state") == "offline"]
            assert all(d["bd_seq"] < birth.payload["bd_seq"] for d in deaths), "a will, sent again, is stale"


async def test_a_hostile_command_gets_a_small_error_reply(
    broker: LocalBroker,
    subscriber: Subscriber,
    dust_monitor: SimulatedModbusDevice,
    make_config,
    topic_prefix: str,
) -> None:  # type: ignore[no-untyped-def]
    config = make_config(broker.port, dust_monitor.port)
    root = f"{topic_prefix}/{config.gateway.id}"
    nested = b"[" * 100_000 + b"]" * 100_000
    huge = json.dumps({"command": "ack", "event_id": "x" * 1_000_000, "operator": "op"}).encode()
    async with running_gateway(config):
        await subscriber.wait_for(lambda m: m.topic.endswith("/state"), timeout=60)
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            for n, payload in enumerate((nested, huge)):
                seen = len(subscriber.received)
                await client.publish(f"{root}/commands/request", payload, qos=1)
                reply = await subscriber.wait_for(
                    lambda m: m.topic.endswith("/commands/response"), timeout=10, after=seen
                )
                assert reply.payload["ok"] is False and reply.payload["error"]["code"] == "malformed", n
                assert len(json.dumps(reply.payload)) < 1024, "the reply stays small"
