"""An 8-input dry-contact module on the RS-485 line (FC 02), over a pty: the shipped profile, NO and NC."""

from __future__ import annotations

import pytest

from contracts.profiles import default_profile_dirs
from drivers.modbus.bus import ModbusBus
from drivers.modbus.config import BusConfig, ModbusConfig
from drivers.modbus.device import ModbusBusDriver
from drivers.modbus.frames import READ_DISCRETE, parse_rtu, with_crc
from drivers.modbus.profiles import load_profile
from drivers.modbus.registers import ModbusChannel, plan_requests
from drivers.simulators.modbus_device import SimulatedModbusDevice
from drivers.simulators.rtu_server import RtuLineServer


async def test_the_8_input_module_reads_each_contact_in_one_request_with_nc_inverted() -> None:
    profile = load_profile("di-8", default_profile_dirs())
    channels = [
        *profile.channels[:7],
        ModbusChannel(id="door_open", table="discrete", address=7, contact="nc"),
    ]
    module = SimulatedModbusDevice(channels, unit_id=5)
    closed = {"di1", "di4", "door_open"}  # door_open: the loop is closed, the door is shut
    for ch in channels:
        module.discrete[ch.address] = int(ch.id in closed)
    server = RtuLineServer([module])
    path = await server.serve_pty()
    bus = ModbusBus(BusConfig(id="rs485-1", device=path))
    try:
        config = ModbusConfig(
            id="contacts", driver="modbus", bus="rs485-1", unit_id=5, channels=tuple(channels)
        )
        driver = ModbusBusDriver(config, bus)
        assert len(driver.plan) == 1 and driver.plan[0].count == 8
        batch = await driver.read()
        assert dict(zip(batch.channels, batch.values.tolist(), strict=True)) == {
            "di1": 1.0,
            "di2": 0.0,
            "di3": 0.0,
            "di4": 1.0,
            "di5": 0.0,
            "di6": 0.0,
            "di7": 0.0,
            "door_open": 0.0,
        }
        module.discrete[7] = 0  # the door opens: the NC loop breaks
        module.discrete[0] = 0
        batch = await driver.read()
        assert batch.values.tolist()[0] == 0.0 and batch.values.tolist()[7] == 1.0
        assert module.requests == 2
    finally:
        bus.close()
        await server.stop()


def test_bit_answers_are_unpacked_least_significant_bit_first() -> None:
    answer = parse_rtu(with_crc(bytes([5, READ_DISCRETE, 2, 0b1000_0101, 0b0000_0010])), 5, READ_DISCRETE, 10)
    assert answer is not None and answer.registers == (1, 0, 1, 0, 0, 0, 0, 1, 0, 1)


def test_coils_and_discrete_inputs_are_one_bit_and_contact_is_only_for_them() -> None:
    with pytest.raises(ValueError, match="one bit"):
        ModbusChannel(id="x", table="discrete", address=0, type="float32")
    with pytest.raises(ValueError, match="coils and discrete"):
        ModbusChannel(id="x", table="holding", address=0, contact="nc")
    with pytest.raises(ValueError, match="sets scale and offset"):
        ModbusChannel.model_validate(
            {"id": "x", "table": "discrete", "address": 0, "contact": "nc", "scale": 2}
        )
    plan = plan_requests(
        [ModbusChannel(id="a", table="coils", address=0), ModbusChannel(id="b", table="discrete", address=0)]
    )
    assert sorted(r.table for r in plan) == ["coils", "discrete"]
