"""Liveness that outlives a broker node: the retained health says by when the next is due, and expires."""

from __future__ import annotations

import asyncio

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker
from tests.helpers import Subscriber, epoch, running_gateway


async def test_the_retained_health_names_its_deadline_and_is_gone_from_the_broker_after_it(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
) -> None:
    config = make_config(broker.port, dust_monitor.port)
    async with running_gateway(config):
        health = (await subscriber.wait_for(lambda m: m.topic.endswith("/health"))).payload
    assert health["interval_s"] == config.uplink.health_s
    assert abs(epoch(health["next_by"]) - epoch(health["ts"]) - 2 * health["interval_s"]) < 0.002
    await asyncio.sleep(2 * config.uplink.health_s + 1.5)  # past next_by and the broker's expiry (1 s steps)
    root = f"{topic_prefix}/{config.gateway.id}"
    async with Subscriber("127.0.0.1", broker.port, f"{root}/+") as late:
        state = await late.wait_for(lambda m: m.topic.endswith("/state"))
        await asyncio.sleep(1.0)
    assert state.retain, "the state stays retained"
    assert not [m for m in late.received if m.topic.endswith("/health")], (
        "an expired health is not handed out"
    )
