"""Simulated field devices read over the wire by the gateway's own Modbus TCP driver."""

from __future__ import annotations

import math

import pytest

from contracts.errors import DeviceTimeout
from drivers.modbus.registers import ModbusChannel
from drivers.modbus.tcp import ModbusTcpConfig, ModbusTcpDriver
from drivers.simulators.field_devices import apply, make_device
from drivers.simulators.modbus_device import SimulatedModbusDevice
from drivers.simulators.scenarios import MODES, SCENARIOS, FieldScenario, Mode
from firmware_tools.local_broker import free_port

# What each profile's exceedance must cross: channel, limit.
LIMITS: dict[str, list[tuple[str, float]]] = {
    "dust-monitor": [("pm10", 150.0)],
    "oil-fume-monitor": [("fume", 2.0)],
    "manhole-cover": [("tilt_x", 10.0), ("cover_open", 0.5)],
    "smoke-panel": [("z1_alarm", 0.5)],
}
# How a sensor fault shows: channel and the value it reads.
FAULTS: dict[str, tuple[str, float]] = {
    "dust-monitor": ("pm10", -9999.0),
    "oil-fume-monitor": ("fume", 1.23),
    "manhole-cover": ("sensor_fault", 1.0),
    "smoke-panel": ("z1_fault", 1.0),
}


def _close_enough(ch: ModbusChannel, wrote: float, read: float) -> bool:
    if ch.type in ("float32", "float64"):
        return math.isclose(read, wrote, rel_tol=1e-6)
    return abs(read - wrote) <= abs(ch.scale) / 2 + 1e-9


async def _driver(device: SimulatedModbusDevice, port: int, timeout_s: float) -> ModbusTcpDriver:
    config = ModbusTcpConfig(
        id="field",
        driver="modbus_tcp",
        host="127.0.0.1",
        port=port,
        unit_id=device.unit_id,
        timeout_s=timeout_s,
        channels=tuple(device.channels.values()),
    )
    return ModbusTcpDriver(config)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("profile", sorted(SCENARIOS))
async def test_the_driver_reads_back_what_the_scenario_wrote(profile: str, mode: Mode) -> None:
    device, scenario = make_device(profile, unit_id=7, scenario_mode=mode, seed=1)
    port = free_port()
    await device.serve_tcp("127.0.0.1", port)
    try:
        async with await _driver(device, port, 2.0) as driver:
            for t in (0.0, 25.0):
                wrote = apply(device, scenario, t)
                batch = await driver.read()
                read = dict(zip(batch.channels, batch.values.tolist(), strict=True))
                assert set(read) == set(wrote)
                for cid, value in wrote.items():
                    ch = device.channels[cid]
                    assert _close_enough(ch, value, read[cid]), (cid, value, read[cid])
    finally:
        await device.stop()
    assert device.requests == 2  # every profile's registers are one read


@pytest.mark.parametrize("profile", sorted(SCENARIOS))
def test_exceedance_crosses_the_limit_within_a_period_and_normal_never_does(profile: str) -> None:
    modes: tuple[Mode, ...] = ("normal", "exceedance")
    for mode in modes:
        scenario: FieldScenario = SCENARIOS[profile](mode, seed=3)
        samples = [scenario.values(i * 0.5) for i in range(int(scenario.period_s / 0.5))]
        for channel, limit in LIMITS[profile]:
            highest = max(s[channel] for s in samples)
            assert (highest > limit) == (mode == "exceedance"), (mode, channel, highest)


@pytest.mark.parametrize("profile", sorted(SCENARIOS))
def test_a_sensor_fault_shows_in_the_register_image(profile: str) -> None:
    device, scenario = make_device(profile, scenario_mode="sensor_fault", seed=5)
    channel, expected = FAULTS[profile]
    for t in (0.0, 17.0, 33.0):
        apply(device, scenario, t)
        assert device.get(channel) == pytest.approx(expected)


def test_bit_channels_of_one_status_word_are_set_independently() -> None:
    device, _ = make_device("smoke-panel")
    device.set("z3_fault", 1)
    device.set("z3_low_battery", 1)
    device.set("z3_fault", 0)
    device.set("z3_tamper", 1)
    assert device.holding[2] == 0b11000
    assert [device.get(f"z3_{f}") for f in ("alarm", "fault", "tamper", "low_battery")] == [0, 0, 1, 1]


async def test_a_silent_device_times_out_and_stops_cleanly() -> None:
    device, _ = make_device("manhole-cover")
    device.silent = True
    port = free_port()
    await device.serve_tcp("127.0.0.1", port)
    try:
        async with await _driver(device, port, 0.3) as driver:
            with pytest.raises(DeviceTimeout):
                await driver.read()
    finally:
        await device.stop()
    assert device.requests == 1


def test_an_unknown_mode_or_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="use one of normal, exceedance, sensor_fault"):
        make_device("dust-monitor", scenario_mode="broken")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no scenario for profile 'gate'"):
        make_device("gate")
