"""Relays switched by the running gateway: by a rule's alarms (RTU over a pty), by a signed command (TCP).

A real Mosquitto, a real gateway, pymodbus and RTU simulators as the relay
module; the coils are read back from the simulator's own image.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.simulators.modbus_device import SimulatedModbusDevice
from drivers.simulators.rtu_server import RtuLineServer
from firmware_tools.command_client import Signer
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.remote.signing import public_key_text
from tests.helpers import Subscriber, running_gateway
from tests.keys import COMMAND_CENTER, MAINTAINER
from tests.test_command_auth import Requester, _refused
from tests.test_relay_writes import DOOR, RELAYS

OPERATOR = Signer("test-op", Ed25519PrivateKey.generate())

RULES = """
[[rules]]
device = "dust-01"
channel = "pm10"
high = 150.0
hysteresis = 10.0
category = "env.dust.pm10"
output = { device = "relays", channel = "relay1" }

[[rules]]
device = "dust-01"
channel = "pm10"
high = 190.0
category = "env.dust.pm10.severe"
output = { device = "relays", channel = "relay2", pulse_s = 0.4 }
"""


async def _until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(wait(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}") from None


async def test_a_rules_relay_is_on_while_its_alarm_is_open_and_a_pulse_goes_off_by_itself(
    broker: LocalBroker, dust_monitor: SimulatedModbusDevice, subscriber: Subscriber, make_config
) -> None:
    module = SimulatedModbusDevice(RELAYS, unit_id=9)
    module.coils[1] = 1  # left on by someone: the rules want it off, and say so at start
    server = RtuLineServer([module])
    path = await server.serve_pty()
    extra = f"""
[[buses]]
id = "rs485-1"
device = "{path}"

[[devices]]
id = "relays"
driver = "modbus"
bus = "rs485-1"
unit_id = 9
profile = "relay-8"
poll_interval_s = 0.1
timeout_s = 0.3
"""
    try:
        async with running_gateway(make_config(broker.port, dust_monitor.port, rules=RULES, extra=extra)):
            await _until(lambda: module.coils[1] == 0, "relay2 switched off at start")
            dust_monitor.set("pm10", 200.0)
            raised = await subscriber.wait_for(
                lambda m: m.topic.endswith("/events") and m.payload["category"] == "env.dust.pm10"
            )
            assert raised.payload["state"] == "raised"
            await _until(lambda: module.coils[0] == 1 and module.coils[1] == 1, "relay1 and relay2 on")
            await subscriber.reading("relays", "relay1", 1.0)  # the coil's state is a channel
            await _until(lambda: module.coils[1] == 0, "the pulse of relay2 over")
            assert module.coils[0] == 1  # the alarm is still open
            await asyncio.sleep(0.3)
            assert module.coils[1] == 0  # a pulse is once per raise, not again on every poll

            dust_monitor.set("pm10", 20.0)
            await subscriber.wait_for(
                lambda m: (
                    m.topic.endswith("/events")
                    and m.payload["state"] == "cleared"
                    and m.payload["category"] == "env.dust.pm10"
                )
            )
            await _until(lambda: module.coils[0] == 0, "relay1 off once the alarm cleared")
            await subscriber.reading("relays", "relay1", 0.0, after=len(subscriber.received))
    finally:
        await server.stop()


async def test_only_a_key_allowed_to_may_switch_a_relay_and_only_a_writable_one(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
) -> None:
    module = SimulatedModbusDevice((*RELAYS, DOOR), unit_id=1)
    port = free_port()
    await module.serve_tcp("127.0.0.1", port)
    relays = ",\n".join(
        f'  {{ id = "{ch.id}", table = "{ch.table}", address = {ch.address},'
        f" writable = {str(ch.writable).lower()} }}"
        for ch in (*RELAYS, DOOR)
    )
    extra = f"""
[[devices]]
id = "relays"
driver = "modbus_tcp"
host = "127.0.0.1"
port = {port}
poll_interval_s = 0.2
channels = [
{relays}
]

[commands]
relay_roles = ["command_center"]

[commands.keys.test-op]
public_key = "{public_key_text(OPERATOR.private_key.public_key())}"
role = "operator"
"""
    requests = Requester(broker, topic_prefix, subscriber)
    switch_on = {"command": "relay", "device": "relays", "set": {"relay4": 1}}
    try:
        async with running_gateway(make_config(broker.port, dust_monitor.port, extra=extra)):
            await subscriber.wait_for(lambda m: m.topic.endswith("/state"))
            _refused(await requests.ask(switch_on, signer=None), "unsigned")
            message = _refused(await requests.ask(switch_on, signer=OPERATOR), "forbidden")
            assert "maintainer, command_center" in message and "relay_roles" in message
            assert module.coils[3] == 0

            reply = await requests.ask(switch_on, signer=MAINTAINER)
            assert reply.payload["ok"] is True, reply.payload
            assert reply.payload["result"] == {
                "device": "relays",
                "set": {"relay4": 1},
                "read_back": {"relay4": 1.0},
            }
            assert module.coils[:8] == [0, 0, 0, 1, 0, 0, 0, 0]
            await subscriber.reading("relays", "relay4", 1.0)

            both = {"command": "relay", "device": "relays", "set": {"relay4": 0, "relay5": 1}}
            reply = await requests.ask(both, signer=COMMAND_CENTER)  # granted by relay_roles
            assert reply.payload["result"]["read_back"] == {"relay4": 0.0, "relay5": 1.0}
            assert module.coils[:8] == [0, 0, 0, 0, 1, 0, 0, 0]

            door = {"command": "relay", "device": "relays", "set": {"door": 1}}
            message = _refused(await requests.ask(door, signer=MAINTAINER), "not_writable")
            assert "'door'" in message and "writable = true" in message
            dust = {"command": "relay", "device": "dust-01", "set": {"pm10": 1}}
            assert "with outputs: relays" in _refused(
                await requests.ask(dust, signer=MAINTAINER), "not_writable"
            )
            _refused(
                await requests.ask({"command": "relay", "device": "relays"}, signer=MAINTAINER), "malformed"
            )
            assert module.coils[:8] == [0, 0, 0, 0, 1, 0, 0, 0] and module.discrete[0] == 0
    finally:
        await module.stop()
