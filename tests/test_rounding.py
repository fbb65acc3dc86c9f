"""Values are rounded to the channel's resolution where they are decoded: no float noise travels on."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.decoding import channel_rounding
from drivers.modbus.registers import ModbusChannel
from gateway.readings import Rounding


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
