"""Relay outputs on Modbus: coils declared writable are switched (FC 05/15) and read back, others refused.

Against real peers: the RTU line simulator over a pty, and a pymodbus server
over TCP (both the bus driver's own Modbus TCP and the pymodbus client driver).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contracts.errors import ConfigError, NotWritable
from contracts.profiles import default_profile_dirs
from drivers.modbus.bus import ModbusBus
from drivers.modbus.config import BusConfig, ModbusConfig
from drivers.modbus.device import ModbusBusDriver
from drivers.modbus.profiles import load_profile
from drivers.modbus.registers import ModbusChannel
from drivers.modbus.tcp import ModbusTcpConfig, ModbusTcpDriver
from drivers.simulators.modbus_device import SimulatedModbusDevice
from drivers.simulators.rtu_server import RtuLineServer
from firmware_tools.local_broker import free_port
from gateway.config import parse_config
from gateway.config.rules import CrossRule, ThresholdRule
from tests.conftest import gateway_toml

RELAYS = tuple(load_profile("relay-8", default_profile_dirs()).channels)
DOOR = ModbusChannel(id="door", table="discrete", address=0)


@pytest.fixture
async def rtu_module() -> AsyncIterator[tuple[SimulatedModbusDevice, ModbusBusDriver]]:
    module = SimulatedModbusDevice((*RELAYS, DOOR), unit_id=9)
    server = RtuLineServer([module])
    path = await server.serve_pty()
    bus = ModbusBus(BusConfig(id="rs485-1", device=path))
    config = ModbusConfig(id="relays", driver="modbus", bus="rs485-1", unit_id=9, channels=(*RELAYS, DOOR))
    try:
        yield module, ModbusBusDriver(config, bus)
    finally:
        bus.close()
        await server.stop()


async def test_a_relay_on_the_rs485_line_is_switched_and_read_back(
    rtu_module: tuple[SimulatedModbusDevice, ModbusBusDriver],
) -> None:
    module, driver = rtu_module
    assert await driver.write({"relay3": 1}) == {"relay3": 1.0}  # FC 05
    assert module.coils[:8] == [0, 0, 1, 0, 0, 0, 0, 0]
    assert await driver.write({"relay1": 1, "relay2": 1, "relay3": 0, "relay6": 1}) == {
        "relay1": 1.0,
        "relay2": 1.0,
        "relay3": 0.0,
        "relay6": 1.0,
    }  # FC 15 for relays 1-3, FC 05 for relay 6
    assert module.coils[:8] == [1, 1, 0, 0, 0, 1, 0, 0]
    batch = await driver.read()  # the coils are channels like any other
    assert dict(zip(batch.channels, batch.values.tolist(), strict=True))["relay6"] == 1.0


async def test_writes_to_anything_but_a_writable_coil_are_refused_before_anything_is_sent(
    rtu_module: tuple[SimulatedModbusDevice, ModbusBusDriver],
) -> None:
    module, driver = rtu_module
    with pytest.raises(NotWritable, match=r"not a writable output: 'door' \(outputs: relay1, "):
        await driver.write({"relay1": 1, "door": 1})
    with pytest.raises(NotWritable, match="no channel 'siren'"):
        await driver.write({"siren": 1})
    with pytest.raises(NotWritable, match="0 or 1, not 2"):
        await driver.write({"relay1": 2})
    assert module.requests == 0 and module.coils[:8] == [0] * 8


async def test_a_relay_over_modbus_tcp_is_switched_by_either_driver() -> None:
    module = SimulatedModbusDevice(RELAYS, unit_id=1)
    port = free_port()
    await module.serve_tcp("127.0.0.1", port)
    bus = ModbusBus(BusConfig(id="gw", transport="tcp", host="127.0.0.1", port=port))
    on_bus = ModbusBusDriver(
        ModbusConfig(id="r1", driver="modbus", bus="gw", unit_id=1, channels=RELAYS), bus
    )
    direct = ModbusTcpDriver(
        ModbusTcpConfig(id="r2", driver="modbus_tcp", host="127.0.0.1", port=port, channels=RELAYS)
    )
    try:
        assert await on_bus.write({"relay2": 1, "relay3": 1}) == {"relay2": 1.0, "relay3": 1.0}
        assert module.coils[:4] == [0, 1, 1, 0]
        assert await direct.write({"relay2": 0}) == {"relay2": 0.0}
        assert await direct.write({"relay7": 1, "relay8": 1}) == {"relay7": 1.0, "relay8": 1.0}
        assert module.coils[:8] == [0, 0, 1, 0, 0, 0, 1, 1]
        values = dict(zip(direct.channel_ids, (await direct.read()).values.tolist(), strict=True))
        assert values == {f"relay{i}": float(i in (3, 7, 8)) for i in range(1, 9)}
    finally:
        await direct.aclose()
        bus.close()
        await module.stop()


def test_only_a_coil_can_be_declared_writable() -> None:
    with pytest.raises(ValueError, match="only a coil is writable"):
        ModbusChannel(id="x", table="discrete", address=0, writable=True)
    with pytest.raises(ValueError, match="only a coil is writable"):
        ModbusChannel(id="x", table="holding", address=0, writable=True)


ROOT = Path(__file__).resolve().parent.parent
FIELD = """
[[buses]]
id = "rs485-1"
device = "/dev/ttyUSB0"

[[devices]]
id = "smoke-01"
driver = "modbus"
bus = "rs485-1"
unit_id = 1
channels = [{ id = "smoke_alarm", address = 0 }]

[[devices]]
id = "fume-01"
driver = "modbus"
bus = "rs485-1"
unit_id = 2
channels = [{ id = "fan_status", address = 0 }, { id = "purifier_status", address = 1 }]
"""


def test_the_documented_rule_outputs_are_a_valid_config_and_name_writable_coils() -> None:
    text = (ROOT / "docs" / "detection-rules.md").read_text()
    example = text.split("<!-- example: outputs -->\n```toml\n")[1].split("```")[0]
    site = gateway_toml(broker_port=1, modbus_port=2, storage=Path("/tmp/x"), prefix="gg/v1", rules=example)
    config = parse_config(site + FIELD, source="detection-rules.md")
    rules: list[ThresholdRule | CrossRule] = [*config.rules, *config.cross_rules]
    outputs = [r.output for r in rules if r.output is not None]
    assert [(o.device, o.channel, o.pulse_s) for o in outputs] == [
        ("relays", "relay1", None),
        ("relays", "relay2", 2.0),
    ]
    with pytest.raises(ConfigError, match=r"not a writable output: 'smoke_alarm' on device 'smoke-01'"):
        siren = 'output = { device = "relays", channel = "relay1" }'
        parse_config(
            site.replace(siren, siren.replace("relays", "smoke-01").replace("relay1", "smoke_alarm")) + FIELD
        )
