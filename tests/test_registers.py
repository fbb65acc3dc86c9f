"""Register decoding against known byte patterns, and request planning."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.registers import ModbusChannel, decode, encode, plan_requests


@pytest.mark.parametrize(
    ("words", "kind", "order", "expected"),
    [
        ([0x433B, 0x8000], "float32", "big", 187.5),
        ([0x8000, 0x433B], "float32", "little", 187.5),
        ([0xFF85], "int16", "big", -123),
        ([0xFF85], "uint16", "big", 65413),
        ([0x0001, 0xE240], "uint32", "big", 123456),
        ([0xE240, 0x0001], "uint32", "little", 123456),
        ([0xFFFE, 0x1DC0], "int32", "big", -123456),
    ],
)
def test_decode_known_patterns(words: list[int], kind: str, order: str, expected: float) -> None:
    assert decode(words, kind, order) == expected  # type: ignore[arg-type]


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(["big", "little"]))
def test_int32_round_trips(value: int, order: str) -> None:
    assert decode(encode(value, "int32", order), "int32", order) == value  # type: ignore[arg-type]


@given(st.floats(width=32, allow_nan=False), st.sampled_from(["big", "little"]))
def test_float32_round_trips(value: float, order: str) -> None:
    back = decode(encode(value, "float32", order), "float32", order)  # type: ignore[arg-type]
    assert back == value or (math.isinf(value) and back == value)


def _ch(address: int, kind: str = "uint16", table: str = "holding") -> ModbusChannel:
    return ModbusChannel(id=f"c{address}", address=address, type=kind, table=table)  # type: ignore[arg-type]


def test_neighbouring_channels_share_one_read() -> None:
    plan = plan_requests([_ch(0, "float32"), _ch(2, "float32"), _ch(9), _ch(3, table="input")])
    assert [(r.table, r.start, r.count, r.channels) for r in plan] == [
        ("holding", 0, 10, (0, 1, 2)),
        ("input", 3, 1, (3,)),
    ]


def test_a_wide_gap_or_the_125_register_limit_splits_reads() -> None:
    assert [(r.start, r.count) for r in plan_requests([_ch(0), _ch(40)], max_gap=16)] == [(0, 1), (40, 1)]
    assert [(r.start, r.count) for r in plan_requests([_ch(0), _ch(124, "uint32")], max_gap=200)] == [
        (0, 1), (124, 2),
    ]
