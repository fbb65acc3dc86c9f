"""Register change on a real Modbus server → alarm on a real Mosquitto, and back."""

from __future__ import annotations

import asyncio

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker
from tests.helpers import Subscriber, epoch, running_gateway


def _is_event(state: str):  # type: ignore[no-untyped-def]
    return lambda m: m.topic.endswith("/events") and m.payload["state"] == state


async def test_exceedance_raises_then_clears_past_hysteresis(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
) -> None:
    config = make_config(broker.port, dust_monitor.port)
    async with running_gateway(config):
        birth = await subscriber.wait_for(lambda m: m.topic.endswith("/state"))
        assert birth.topic == f"{topic_prefix}/gw-test-01/state"
        assert birth.payload["state"] == "online" and birth.payload["config_digest"] == "test"
        async with Subscriber("127.0.0.1", broker.port, birth.topic) as late:
            retained = await late.wait_for(lambda m: True)
        assert retained.retain and retained.payload == birth.payload

        dust_monitor.set("pm10", 187.5)
        raised = (await subscriber.wait_for(_is_event("raised"))).payload
        assert raised["device"] == "dust-01" and raised["channel"] == "pm10"
        assert raised["value"] == 187.5 and raised["limit"] == 150.0
        assert raised["severity"] == "important" and raised["category"] == "env.dust.pm10"
        assert raised["grid_cell"] == "330106001001" and raised["unit"] == "µg/m³"
        assert raised["gateway"] == "gw-test-01" and raised["seq"] > birth.payload["seq"]

        dust_monitor.set("pm10", 145.0)  # under the limit but inside the hysteresis band
        inside = await subscriber.reading("dust-01", "pm10", 145.0)
        await subscriber.alive_past(epoch(inside.payload["ts"]) + 0.5)  # past the flap window
        assert subscriber.events("cleared") == []

        dust_monitor.set("pm10", 139.0)
        cleared = (await subscriber.wait_for(_is_event("cleared"))).payload
        assert cleared["event_id"] == raised["event_id"]
        assert cleared["value"] == 139.0 and cleared["seq"] > raised["seq"]
    offline = await subscriber.wait_for(
        lambda m: m.topic.endswith("/state") and m.payload["state"] == "offline"
    )
    assert offline.payload["reason"] == "shutdown"


async def test_alarm_raised_while_broker_is_down_arrives_when_it_is_back(
    own_broker: LocalBroker, dust_monitor: SimulatedModbusDevice, make_config, topic_prefix: str
) -> None:
    config = make_config(own_broker.port, dust_monitor.port)
    async with running_gateway(config) as daemon:
        assert daemon.uplink is not None
        await asyncio.wait_for(daemon.uplink.connected.wait(), 10)
        own_broker.stop()
        await asyncio.sleep(0.3)
        dust_monitor.set("pm10", 250.0)
        await asyncio.sleep(1.0)  # polled, detected and stored while the broker is away
        own_broker.start()
        async with Subscriber("127.0.0.1", own_broker.port, f"{topic_prefix}/#") as sub:
            raised = (await sub.wait_for(_is_event("raised"), timeout=15)).payload
    assert raised["value"] == 250.0 and raised["channel"] == "pm10"


async def test_open_alarm_survives_a_restart_and_clears_with_the_same_id(
    broker: LocalBroker, dust_monitor: SimulatedModbusDevice, subscriber: Subscriber, make_config
) -> None:
    config = make_config(broker.port, dust_monitor.port)
    dust_monitor.set("pm10", 300.0)
    async with running_gateway(config):
        raised = (await subscriber.wait_for(_is_event("raised"))).payload
    seen = len(subscriber.received)
    async with running_gateway(config):
        over = await subscriber.reading("dust-01", "pm10", 300.0, after=seen)  # still over the limit
        await subscriber.alive_past(epoch(over.payload["ts"]) + 0.3)  # and no second alarm for it
        dust_monitor.set("pm10", 50.0)
        cleared = (await subscriber.wait_for(_is_event("cleared"), after=seen)).payload
    assert [e["event_id"] for e in subscriber.events("raised")] == [raised["event_id"]]
    assert cleared["event_id"] == raised["event_id"]
    assert cleared["seq"] > raised["seq"]


async def test_a_dead_device_does_not_stop_the_gateway(
    broker: LocalBroker, dust_monitor: SimulatedModbusDevice, subscriber: Subscriber, make_config
) -> None:
    config = make_config(broker.port, dust_monitor.port)
    async with running_gateway(config) as daemon:
        await subscriber.wait_for(lambda m: "/telemetry/" in m.topic)
        await dust_monitor.stop()
        poller = daemon.running.pollers[0]
        for _ in range(50):
            if poller.available is False:
                break
            await asyncio.sleep(0.1)
        assert poller.available is False
        await dust_monitor.serve_tcp("127.0.0.1", dust_monitor.port)
        comms = (await subscriber.wait_for(_is_event("raised"))).payload
        assert (comms["facet"], comms["condition"], comms["device"]) == ("comms", "offline", "dust-01")
        dust_monitor.set("pm10", 199.0)
        on_pm10 = lambda m: _is_event("raised")(m) and m.payload["channel"] == "pm10"  # noqa: E731
        raised = (await subscriber.wait_for(on_pm10, timeout=15)).payload
        assert raised["value"] == 199.0
        assert poller.available is True
        back = (await subscriber.wait_for(_is_event("cleared"))).payload
        assert back["event_id"] == comms["event_id"], "the comms event cleared when it answered again"


async def test_health_tells_the_command_center_how_the_gateway_and_its_devices_are(
    broker: LocalBroker, dust_monitor: SimulatedModbusDevice, subscriber: Subscriber, make_config
) -> None:
    config = make_config(broker.port, dust_monitor.port)
    async with running_gateway(config):
        health = await subscriber.wait_for(
            lambda m: m.topic.endswith("/health") and m.payload["devices"]["online"] == 1
        )
        await dust_monitor.stop()
        down = await subscriber.wait_for(
            lambda m: m.topic.endswith("/health") and m.payload["devices"]["offline"] == 1, timeout=15
        )
    assert health.payload["outbox"]["max_bytes"] == config.storage.max_bytes
    assert 10 < health.payload["process"]["rss_mb"] <= health.payload["process"]["max_rss_mb"] + 1
    assert down.payload["uptime_s"] > health.payload["uptime_s"]
