"""Commands are served only to keys the gateway trusts, once each, and answered only where allowed.

A real Mosquitto, a real gateway and a real Modbus device; requests are
published as a stranger on the broker would (every response is checked against
docs/schemas by the subscriber).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker
from gateway.remote.signing import sign_request
from tests.helpers import Received, Subscriber, running_gateway
from tests.keys import COMMAND_CENTER, MAINTAINER, STRANGER, signed

GATEWAY = "gw-test-01"


class Requester:
    """Publishes raw request payloads and picks out each one's response by its correlation id."""

    def __init__(self, broker: LocalBroker, prefix: str, subscriber: Subscriber) -> None:
        self._broker, self._prefix, self._subscriber = broker, prefix, subscriber
        self._n = 0

    async def ask(self, request: dict[str, Any], signer: Any = COMMAND_CENTER, **kw: Any) -> Received:
        self._n += 1
        body = {**request, "correlation_id": f"c-{self._n}"}
        payload = signed(body, signer) if signer is not None else json.dumps(body).encode()
        return await self.publish(payload, f"c-{self._n}", **kw)

    async def publish(
        self, payload: bytes, correlation: str, *, response_topic: str | None = None
    ) -> Received:
        seen = len(self._subscriber.received)
        properties = None
        if response_topic is not None:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.ResponseTopic = response_topic
        version = aiomqtt.ProtocolVersion.V5
        async with aiomqtt.Client("127.0.0.1", self._broker.port, protocol=version) as client:
            topic = f"{self._prefix}/{GATEWAY}/commands/request"
            await client.publish(topic, payload, qos=1, properties=properties)
        return await self._subscriber.wait_for(
            lambda m: m.payload.get("correlation_id") == correlation and "/commands/request" not in m.topic,
            timeout=10,
            after=seen,
        )


def _refused(reply: Received, code: str) -> str:
    assert reply.payload["ok"] is False, reply.payload
    assert reply.payload["error"]["code"] == code, reply.payload
    return str(reply.payload["error"]["message"])


async def test_only_a_fresh_request_signed_by_a_trusted_key_is_served(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
) -> None:
    requests = Requester(broker, topic_prefix, subscriber)
    verify = {"command": "verify", "device": "dust-01", "category": "env.dust.pm10"}
    async with running_gateway(make_config(broker.port, dust_monitor.port)):
        await subscriber.wait_for(lambda m: m.topic.endswith("/state"))
        message = _refused(await requests.ask(verify, signer=None), "unsigned")
        assert "--key FILE" in message and "docs/remote-management.md" in message
        _refused(await requests.ask(verify, signer=STRANGER), "bad_signature")  # a trusted id, wrong key

        tampered = COMMAND_CENTER.sign({**verify, "correlation_id": "t-1"}, GATEWAY)
        tampered["category"] = "fire.smoke"
        _refused(await requests.publish(json.dumps(tampered).encode(), "t-1"), "bad_signature")

        unknown = sign_request(
            {**verify, "gateway": GATEWAY, "correlation_id": "u-1"}, STRANGER.private_key, "who"
        )
        assert "test-cc" in _refused(
            await requests.publish(json.dumps(unknown).encode(), "u-1"), "unknown_key"
        )

        elsewhere = COMMAND_CENTER.sign({**verify, "correlation_id": "w-1"}, "gw-other")
        _refused(await requests.publish(json.dumps(elsewhere).encode(), "w-1"), "wrong_gateway")

        old = sign_request(
            {**verify, "gateway": GATEWAY, "correlation_id": "s-1"},
            COMMAND_CENTER.private_key,
            COMMAND_CENTER.key_id,
            now=time.time() - 3600,
        )
        _refused(await requests.publish(json.dumps(old).encode(), "s-1"), "stale")

        fresh = json.dumps(COMMAND_CENTER.sign({**verify, "correlation_id": "r-1"}, GATEWAY)).encode()
        assert (await requests.publish(fresh, "r-1")).payload["ok"] is True
        _refused(await requests.publish(fresh, "r-1"), "replayed")  # the same bytes, captured

        _refused(await requests.ask({"command": "diagnostics"}), "forbidden")  # a command center's key
        assert (await requests.ask({"command": "diagnostics"}, signer=MAINTAINER)).payload["ok"] is True


async def test_a_captured_request_stays_spent_after_a_restart(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
) -> None:
    requests = Requester(broker, topic_prefix, subscriber)
    config = make_config(broker.port, dust_monitor.port)
    request = {"command": "verify", "device": "dust-01", "category": "env.dust.pm10", "correlation_id": "x-1"}
    captured = json.dumps(COMMAND_CENTER.sign(request, GATEWAY)).encode()
    async with running_gateway(config):
        await subscriber.wait_for(lambda m: m.topic.endswith("/state"))
        assert (await requests.publish(captured, "x-1")).payload["ok"] is True
    seen = len(subscriber.received)
    async with running_gateway(config):
        await subscriber.wait_for(lambda m: m.payload.get("state") == "online", after=seen)
        _refused(await requests.publish(captured, "x-1"), "replayed")


async def test_replies_go_only_under_the_reply_prefix(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
) -> None:
    requests = Requester(broker, topic_prefix, subscriber)
    verify = {"command": "verify", "device": "dust-01", "category": "env.dust.pm10"}
    async with running_gateway(make_config(broker.port, dust_monitor.port)):
        await subscriber.wait_for(lambda m: m.topic.endswith("/state"))
        for hijack in (f"{topic_prefix}/{GATEWAY}/events", f"{topic_prefix}/gw-other/state"):
            by_payload = await requests.ask({**verify, "reply_to": hijack})
            assert by_payload.topic == f"{topic_prefix}/{GATEWAY}/commands/response"
            assert f"{topic_prefix}/_replies/" in _refused(by_payload, "reply_to_refused")
            by_property = await requests.ask(verify, response_topic=hijack)
            assert by_property.topic.endswith("/commands/response")
            _refused(by_property, "reply_to_refused")
        mine = f"{topic_prefix}/_replies/cc-7"
        answered = await requests.ask({**verify, "reply_to": mine})
        assert answered.topic == mine and answered.payload["ok"] is True
    assert not [m for m in subscriber.received if m.topic.endswith(("/events", "gw-other/state"))]


async def test_a_site_may_allow_unsigned_acknowledgements_but_not_maintenance(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
) -> None:
    requests = Requester(broker, topic_prefix, subscriber)
    config = make_config(broker.port, dust_monitor.port, extra="[commands]\nallow_unsigned = true\n")
    async with running_gateway(config):
        dust_monitor.set("pm10", 187.5)
        raised = await subscriber.wait_for(lambda m: m.payload.get("state") == "raised")
        ack = {"command": "ack", "event_id": raised.payload["event_id"], "operator": "op-li"}
        answer = await requests.ask(ack, signer=None)
        assert answer.payload["result"]["acknowledged_by"] == "op-li"
        _refused(await requests.ask({"command": "log_tail"}, signer=None), "unsigned")


async def test_maintainers_read_restart_rebirth_tail_and_diagnose(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)  # as `gridgate run` logs by default
    requests = Requester(broker, topic_prefix, subscriber)
    async with running_gateway(make_config(broker.port, dust_monitor.port), digest="d1g3st") as daemon:
        birth = await subscriber.wait_for(lambda m: m.payload.get("state") == "online")
        dust_monitor.set("pm10", 42.5)
        await subscriber.reading("dust-01", "pm10", 42.5)

        read = await requests.ask({"command": "read", "device": "dust-01"}, signer=MAINTAINER)
        assert (
            read.payload["result"]["readings"]["pm10"] == 42.5 and read.payload["result"]["state"] == "online"
        )
        _refused(
            await requests.ask({"command": "read", "device": "nope"}, signer=MAINTAINER), "unknown_device"
        )

        restart = await requests.ask({"command": "restart", "device": "dust-01"}, signer=MAINTAINER)
        assert restart.payload["ok"] is True
        dust_monitor.set("pm10", 43.5)
        await subscriber.reading("dust-01", "pm10", 43.5, after=len(subscriber.received))
        assert daemon.running.pollers[0].restarts == 1

        seen = len(subscriber.received)
        assert (await requests.ask({"command": "rebirth"}, signer=MAINTAINER)).payload["ok"] is True
        again = await subscriber.wait_for(lambda m: m.payload.get("state") == "online", after=seen)
        assert again.payload["bd_seq"] == birth.payload["bd_seq"]  # the same connection, born again
        await subscriber.wait_for(lambda m: m.topic.endswith("/devices/dust-01/status"), after=seen)

        tail = await requests.ask({"command": "log_tail", "lines": 20}, signer=MAINTAINER)
        assert any("driver restarted on request" in line for line in tail.payload["result"]["lines"])
        _refused(await requests.ask({"command": "log_tail", "lines": 10**6}, signer=MAINTAINER), "malformed")

        diagnostics = (await requests.ask({"command": "diagnostics"}, signer=MAINTAINER)).payload["result"]
        assert (
            diagnostics["config_digest"] == "d1g3st"
            and diagnostics["devices"]["dust-01"]["state"] == "online"
        )
        assert diagnostics["outbox"]["max_bytes"] > 0 and diagnostics["health"]["devices"]["online"] == 1
        assert diagnostics["log"] and "public_key" not in json.dumps(diagnostics)
