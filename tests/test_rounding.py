"""Values are rounded to the channel's resolution where they are decoded: no float noise travels on."""

from __future__ import annotations

import logging
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.readings import Rounding
from drivers.modbus.decoding import channel_rounding
from drivers.modbus.registers import ModbusChannel
from drivers.simulators.field_devices import make_device
from drivers.simulators.modbus_device import SimulatedModbusDevice
from drivers.simulators.rtu_server import RtuLineServer
from firmware_tools.local_broker import LocalBroker
from tests.helpers import Subscriber, running_gateway


def _float32(value: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", value))[0])


def test_scaled_integers_and_float32_registers_come_out_as_their_short_decimals() -> None:
    channels = [
        ModbusChannel(id="tilt_x", address=0, type="int16", scale=0.1),
        ModbusChannel(id="pm10", address=1, type="float32"),
        ModbusChannel(id="battery", address=3, type="uint16", scale=0.01),
        ModbusChannel(id="temp", address=4, type="int16", scale=0.1, offset=-40.0),
        ModbusChannel(id="noise", address=5, type="float32", decimals=1),
    ]
    values = np.array([6 * 0.1, _float32(233.5259), 2440 * 0.01, 644 * 0.1 - 40.0, _float32(58.14)])
    assert values.tolist() != [0.6, 233.5259, 24.4, 24.4, 58.1]
    channel_rounding(channels).apply(values)
    assert values.tolist() == [0.6, 233.5259, 24.4, 24.4, 58.1]
    assert [repr(v) for v in values.tolist()] == ["0.6", "233.5259", "24.4", "24.4", "58.1"]


def test_missing_zero_and_huge_values_survive_rounding() -> None:
    values = np.array([np.nan, 0.0, -1234567.8, float("inf"), 1e-45])
    Rounding([None, 1, None, None, None], [7, None, 7, 7, 7]).apply(values)
    assert np.isnan(values[0])
    assert values[1:].tolist() == [0.0, -1234568.0, float("inf"), 0.0]


@given(st.integers(-32768, 32767), st.sampled_from([0.1, 0.01, 0.001, 0.5, 0.25]))
def test_a_scaled_register_prints_with_no_more_decimals_than_its_scale(raw: int, scale: float) -> None:
    channel = ModbusChannel(id="x", address=0, type="int16", scale=scale)
    values = np.array([raw * scale])
    channel_rounding([channel]).apply(values)
    places = len(repr(scale).split(".")[1])
    text = repr(values.tolist()[0])
    assert "e" in text or len(text.split(".")[1]) <= places
    assert abs(values[0] - raw * scale) <= scale / 2


@given(st.floats(-1e9, 1e9, allow_nan=False, width=32).filter(lambda x: x == 0 or abs(x) > 1e-12))
# (values far below any sensor's range, under about 1e-16, round to 0)
def test_a_float32_register_keeps_seven_significant_digits(number: float) -> None:
    values = np.array([_float32(number)])
    Rounding([None], [7]).apply(values)
    assert values.tolist()[0] == float(f"{_float32(number):.7g}")


async def test_published_telemetry_events_and_debug_log_carry_the_short_numbers(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through the whole gateway: a float32 PM10 and an int16 × 0.1 tilt, as the issue saw them."""
    cover, _ = make_device("manhole-cover", 11)
    cover.set("tilt_x", 0.6)
    line = RtuLineServer([cover])
    path = await line.serve_pty()
    extra = f"""
[[buses]]
id = "rs485-1"
device = "{path}"
[[devices]]
id = "manhole-017"
driver = "modbus"
bus = "rs485-1"
unit_id = 11
profile = "manhole-cover"
poll_interval_s = 0.2
"""
    dust_monitor.set("pm10", 233.5259246826172)
    caplog.set_level(logging.DEBUG, logger="gateway.poll")
    try:
        async with running_gateway(make_config(broker.port, dust_monitor.port, extra=extra)):
            raised = await subscriber.wait_for(lambda m: m.payload.get("state") == "raised")
            cover_reading = await subscriber.wait_for(lambda m: m.topic.endswith("/telemetry/manhole-017"))
    finally:
        await line.stop()
    assert raised.payload["value"] == 233.5259 and raised.payload["peak"] == 233.5259
    assert cover_reading.payload["readings"]["tilt_x"] == 0.6
    assert any("tilt_x=0.6 " in r.getMessage() for r in caplog.records)
    assert not any("0000000" in r.getMessage() for r in caplog.records)
