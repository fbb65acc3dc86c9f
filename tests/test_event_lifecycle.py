"""The event lifecycle end to end: real Modbus device → gateway → real Mosquitto → command center.

Every message seen here is also validated against docs/schemas by the subscriber.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiomqtt

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.command_client import send_command
from firmware_tools.local_broker import LocalBroker
from tests.helpers import Received, Subscriber, running_gateway
from tests.keys import COMMAND_CENTER, MAINTAINER, signed

URGENT_PM10 = """
[[rules]]
device = "dust-01"
channel = "pm10"
high = 150.0
hysteresis = 10.0
severity = "urgent"
category = "env.dust.pm10"
code = "3301060101000001"
"""


def _event(state: str):  # type: ignore[no-untyped-def]
    return lambda m: m.topic.endswith("/events") and m.payload["state"] == state


async def _command(broker: LocalBroker, prefix: str, request: dict[str, Any], **kw: Any) -> dict[str, Any]:
    kw.setdefault("signer", COMMAND_CENTER)
    return await send_command("127.0.0.1", broker.port, request, prefix=prefix, gateway="gw-test-01", **kw)


async def test_raise_update_acknowledge_clear_is_one_event(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
) -> None:
    async with running_gateway(make_config(broker.port, dust_monitor.port)):
        dust_monitor.set("pm10", 187.5)
        raised = (await subscriber.wait_for(_event("raised"))).payload
        assert raised["peak"] == 187.5 and raised["count"] == 1
        assert raised["rule"] == "dust-01/pm10 > 150" and raised["first_seen"] == raised["raised_at"]
        assert raised["evidence"][0]["topic"] == "telemetry/dust-01"

        dust_monitor.set("pm10", 195.0)  # less than a step (15 = 10 % of 150) past the peak
        await subscriber.reading("dust-01", "pm10", 195.0)
        assert subscriber.events("updated") == []
        dust_monitor.set("pm10", 260.0)
        updated = (await subscriber.wait_for(_event("updated"))).payload
        assert updated["event_id"] == raised["event_id"] and updated["peak"] == 260.0
        assert updated["value"] == 260.0 and updated["seq"] > raised["seq"]

        answer = await _command(
            broker,
            topic_prefix,
            {
                "command": "ack",
                "event_id": raised["event_id"],
                "operator": "director-of-center",  # a claim: the verified key is who acknowledged
            },
        )
        assert answer["ok"] is True and answer["command"] == "ack"
        assert answer["result"]["acknowledged_by"] == "test-cc"
        acked = (await subscriber.wait_for(_event("acknowledged"))).payload
        assert acked["event_id"] == raised["event_id"] and acked["acknowledged_by"] == "test-cc"
        again = await _command(
            broker, topic_prefix, {"command": "ack", "event_id": raised["event_id"]}, signer=MAINTAINER
        )
        assert again["result"]["acknowledged_by"] == "test-cc"  # the first ack stands

        dust_monitor.set("pm10", 20.0)
        cleared = (await subscriber.wait_for(_event("cleared"))).payload
    assert cleared["event_id"] == raised["event_id"]
    assert cleared["peak"] == 260.0 and cleared["acknowledged_by"] == "test-cc"
    assert cleared["value"] == 20.0 and cleared["reason"] == "back to normal"
    assert len(subscriber.events("acknowledged")) == 1 and len(subscriber.events("raised")) == 1


async def test_urgent_event_escalates_until_acknowledged_over_mqtt_3_1_1(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
) -> None:
    async with running_gateway(make_config(broker.port, dust_monitor.port, rules=URGENT_PM10)):
        dust_monitor.set("pm10", 300.0)
        raised = (await subscriber.wait_for(_event("raised"))).payload
        assert raised["severity"] == "urgent" and raised["code"] == "3301060101000001"
        await subscriber.wait_for(lambda m: m.payload.get("escalation") == 2)
        escalations = [e["escalation"] for e in subscriber.events("escalated")]
        assert escalations == [1, 2]
        assert all(e["event_id"] == raised["event_id"] for e in subscriber.events("escalated"))

        answer = await _command(
            broker,
            topic_prefix,
            {
                "command": "ack",
                "event_id": raised["event_id"],
                "operator": "op-7",
            },
            protocol="3.1.1",
        )
        assert answer["ok"] is True and "correlation_id" in answer
        await subscriber.wait_for(_event("acknowledged"))
        after_ack = len(subscriber.events("escalated"))
        await subscriber.alive_past(time.time() + 1.5)  # three escalation periods
        assert len(subscriber.events("escalated")) == after_ack
    assert after_ack <= 3  # at most one more raced the ack


async def test_flapping_condition_stays_one_event_with_a_count(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
) -> None:
    async with running_gateway(make_config(broker.port, dust_monitor.port, flap_window_s=2.0)):
        for _ in range(3):
            dust_monitor.set("pm10", 200.0)
            await subscriber.wait_for(_event("raised"))
            await asyncio.sleep(0.4)
            dust_monitor.set("pm10", 20.0)
            await asyncio.sleep(0.4)
        cleared = (await subscriber.wait_for(_event("cleared"))).payload
    raised = subscriber.events("raised")
    assert len(raised) == 1 and len(subscriber.events("cleared")) == 1
    assert cleared["event_id"] == raised[0]["event_id"]
    assert 2 <= cleared["count"] <= 3  # 3 unless a loaded machine missed a 0.4 s phase


async def test_verify_answers_present_with_the_excess_then_verified_after_the_hold(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
) -> None:
    async with running_gateway(make_config(broker.port, dust_monitor.port)):
        dust_monitor.set("pm10", 187.5)
        raised = (await subscriber.wait_for(_event("raised"))).payload
        await asyncio.sleep(0.3)
        present = await _command(broker, topic_prefix, {"command": "verify", "event_id": raised["event_id"]})
        result = present["result"]
        assert result["verified"] is False and result["condition"] == "present"
        check = result["checks"][0]
        assert check["excess"] == 37.5 and check["value"] == 187.5 and check["high"] == 150.0
        assert [r["value"] for r in check["recent"]][-2:] == [187.5, 187.5]

        dust_monitor.set("pm10", 20.0)
        await subscriber.wait_for(_event("cleared"))
        for _ in range(50):
            answer = await _command(
                broker,
                topic_prefix,
                {
                    "command": "verify",
                    "device": "dust-01",
                    "category": "env.dust.pm10",
                },
            )
            if answer["result"]["verified"]:
                break
            assert answer["result"]["condition"] == "not_long_enough"
            await asyncio.sleep(0.2)
        by_event = await _command(broker, topic_prefix, {"command": "verify", "event_id": raised["event_id"]})
    result = answer["result"]
    assert result["condition"] == "cleared" and result["hold_s"] == 0.6
    assert result["checks"][0]["clear_for_s"] >= 0.6 and result["checks"][0]["value"] == 20.0
    assert by_event["result"]["verified"] is True and by_event["result"]["event_id"] == raised["event_id"]


async def test_bad_requests_get_an_error_response_naming_the_problem(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
) -> None:
    requests = [
        (b"{not json", "malformed", "not JSON"),
        (b"[1, 2]", "malformed", "JSON object"),
        (b'{"event_id": "x"}', "malformed", "'command'"),
        (b'{"command": "ack", "event_id": "nope", "operator": "op"}', "unsigned", "--key FILE"),
        (signed({"command": "silence"}), "unknown_command", "silence"),
        (signed({"command": "ack", "event_id": "nope"}), "unknown_event", "nope"),
        (signed({"command": "ack"}), "malformed", "'event_id'"),
        (
            signed({"command": "verify", "device": "dust-01", "category": "fire.smoke"}),
            "unknown_rule",
            "fire.smoke",
        ),
    ]
    async with running_gateway(make_config(broker.port, dust_monitor.port)) as daemon:
        assert daemon.uplink is not None
        await asyncio.wait_for(daemon.uplink.connected.wait(), 10)
        await subscriber.wait_for(lambda m: m.topic.endswith("/state"))
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            for payload, _, _ in requests:
                await client.publish(f"{topic_prefix}/gw-test-01/commands/request", payload, qos=1)

        def responses() -> list[Received]:
            return [m for m in subscriber.received if m.topic.endswith("/commands/response")]

        await subscriber.wait_for(lambda m: len(responses()) == len(requests))
    for (_, code, named), response in zip(requests, responses(), strict=True):
        assert response.payload["ok"] is False
        assert response.payload["error"]["code"] == code
        assert named in response.payload["error"]["message"], json.dumps(response.payload)


LEVELS_PM10 = """
[[rules]]
device = "dust-01"
channel = "pm10"
warning_high = 100.0
high = 150.0
critical_high = 300.0
hysteresis = 5.0
hold_s = 0.0
severity = "important"
category = "env.dust.pm10"
"""


async def test_a_level_change_updates_the_one_event_and_its_severity(
    broker: LocalBroker, dust_monitor: SimulatedModbusDevice, subscriber: Subscriber, make_config
) -> None:
    """warning → alarm → critical → alarm → cleared is one event, whatever the flap window."""
    for flap_window_s in (0.0, 0.5):
        seen = len(subscriber.received)
        config = make_config(broker.port, dust_monitor.port, rules=LEVELS_PM10, flap_window_s=flap_window_s)
        async with running_gateway(config):
            dust_monitor.set("pm10", 120.0)
            raised = (await subscriber.wait_for(_event("raised"), after=seen)).payload
            assert (raised["level"], raised["severity"], raised["limit"]) == ("warning", "normal", 100.0)
            steps = [
                (160.0, "alarm", "important", 150.0),
                (320.0, "critical", "urgent", 300.0),
                (160.0, "alarm", "important", 150.0),
            ]
            for value, level, severity, limit in steps:
                seen = len(subscriber.received)
                dust_monitor.set("pm10", value)

                def is_update(m: Received, level: str = level) -> bool:
                    return _event("updated")(m) and bool(m.payload["level"] == level)

                updated = (
                    await subscriber.wait_for(
                        is_update,
                        after=seen,
                    )
                ).payload
                assert updated["event_id"] == raised["event_id"]
                assert (updated["severity"], updated["limit"], updated["value"]) == (severity, limit, value)
            assert updated["peak"] == 320.0, "the peak survives a drop in level"
            seen = len(subscriber.received)
            await subscriber.alive_past(time.time() + 1.2)  # past escalate_after_s: only urgent ones escalate
            assert [m for m in subscriber.received[seen:] if _event("escalated")(m)] == []
            dust_monitor.set("pm10", 20.0)
            cleared = (await subscriber.wait_for(_event("cleared"), after=seen)).payload
        assert cleared["event_id"] == raised["event_id"]
        assert [e["event_id"] for e in subscriber.events("raised")[-1:]] == [raised["event_id"]]
