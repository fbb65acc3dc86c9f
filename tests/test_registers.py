"""Register decoding against known byte patterns, bit fields, and request planning."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from drivers.modbus.decoding import RequestDecoder
from drivers.modbus.registers import (
    WIDTH,
    ModbusChannel,
    ReadRequest,
    RegisterType,
    decode,
    decode_channel,
    encode,
    encode_channel,
    plan_requests,
)


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
    near = plan_requests([_ch(0), _ch(40)], max_gap=16)
    assert [(r.start, r.count) for r in near] == [(0, 1), (40, 1)]
    wide = plan_requests([_ch(0), _ch(124, "uint32")], max_gap=200)
    assert [(r.start, r.count) for r in wide] == [(0, 1), (124, 2)]


# 0x40490FDB is float32 π; 0x400921FB54442D18 is float64 π.
@pytest.mark.parametrize(
    ("words", "word_order", "byte_order", "layout"),
    [
        ([0x4049, 0x0FDB], "big", "big", "ABCD"),
        ([0x0FDB, 0x4049], "little", "big", "CDAB"),
        ([0x4940, 0xDB0F], "big", "little", "BADC"),
        ([0xDB0F, 0x4940], "little", "little", "DCBA"),
    ],
)
def test_the_four_32_bit_layouts(words: list[int], word_order: str, byte_order: str, layout: str) -> None:
    got = decode(words, "float32", word_order, byte_order=byte_order)  # type: ignore[arg-type]
    assert got == pytest.approx(math.pi, rel=1e-7), layout
    assert encode(got, "float32", word_order, byte_order=byte_order) == words  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("words", "word_order", "byte_order"),
    [
        ([0x4009, 0x21FB, 0x5444, 0x2D18], "big", "big"),
        ([0x2D18, 0x5444, 0x21FB, 0x4009], "little", "big"),
        ([0x0940, 0xFB21, 0x4454, 0x182D], "big", "little"),
        ([0x182D, 0x4454, 0xFB21, 0x0940], "little", "little"),
    ],
)
def test_float64_layouts(words: list[int], word_order: str, byte_order: str) -> None:
    assert decode(words, "float64", word_order, byte_order=byte_order) == math.pi  # type: ignore[arg-type]


def test_64_bit_integers_and_a_byte_swapped_int16() -> None:
    assert decode([0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE], "int64") == -2
    assert decode([0x0000, 0x0000, 0x0001, 0x0000], "uint64") == 65536
    assert decode([0x85FF], "int16", byte_order="little") == -123


_RANGES = {
    "int16": st.integers(-(2**15), 2**15 - 1),
    "uint16": st.integers(0, 2**16 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "uint32": st.integers(0, 2**32 - 1),
    # 64-bit integers travel through a float, so stay where a float is exact.
    "int64": st.integers(-(2**53), 2**53),
    "uint64": st.integers(0, 2**53),
    "float32": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "float64": st.floats(allow_nan=False, allow_infinity=False),
}


@given(
    st.data(),
    st.sampled_from(sorted(_RANGES)),
    st.sampled_from(["big", "little"]),
    st.sampled_from(["big", "little"]),
)
def test_every_type_and_layout_round_trips(
    data: st.DataObject, kind: str, word_order: str, byte_order: str
) -> None:
    value = data.draw(_RANGES[kind])
    words = encode(value, kind, word_order, byte_order=byte_order)  # type: ignore[arg-type]
    assert len(words) == WIDTH[kind] and all(0 <= w <= 0xFFFF for w in words)
    assert decode(words, kind, word_order, byte_order=byte_order) == value  # type: ignore[arg-type]


def test_a_value_that_does_not_fit_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="does not fit in uint16"):
        encode(-1, "uint16")


def _bit(cid: str, bit: int, bits: int = 1, byte_order: str = "big") -> ModbusChannel:
    return ModbusChannel(
        id=cid,
        address=7,
        type="bits",
        bit=bit,
        bits=bits,
        byte_order=byte_order,  # type: ignore[arg-type]
    )


@given(
    st.lists(st.integers(0, 1), min_size=4, max_size=4),
    st.integers(0, 15),
    st.sampled_from(["big", "little"]),
    st.integers(0, 0xFFFF),
)
def test_bit_channels_share_one_register_and_read_back_exactly(
    flags: list[int], level: int, byte_order: str, before: int
) -> None:
    channels = [_bit(f"f{i}", i, byte_order=byte_order) for i in range(4)]
    channels.append(_bit("level", 6, 4, byte_order))
    word = [before]
    for ch, value in zip(channels, [*flags, level], strict=True):
        word = encode_channel(value, ch, word)
    assert [decode_channel(word, ch) for ch in channels] == [*flags, level]
    # Bits 0–3 and 6–9 are written; with bytes swapped they sit elsewhere on the wire.
    untouched = 0xFC30 if byte_order == "big" else 0x30FC
    assert word[0] & untouched == before & untouched


def test_a_bit_field_applies_scale_and_refuses_values_it_cannot_hold() -> None:
    ch = ModbusChannel(id="level", address=0, type="bits", bit=4, bits=3, scale=10.0)
    assert encode_channel(50.0, ch, [0xFFFF]) == [0xFFDF]
    assert decode_channel([0xFFDF], ch) == 50.0
    with pytest.raises(ValueError, match="3-bit field"):
        encode_channel(80.0, ch)


def test_bit_channels_at_one_address_are_read_once() -> None:
    channels = [_bit("a", 0), _bit("b", 1), _ch(8, "float32"), _bit("c", 2)]
    plan = plan_requests(channels)
    assert [(r.start, r.count, sorted(r.channels)) for r in plan] == [(7, 3, [0, 1, 2, 3])]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "bits"}, "type 'bits' needs 'bit'"),
        ({"type": "bits", "bit": 16}, "less than or equal to 15"),
        ({"type": "bits", "bit": -1}, "greater than or equal to 0"),
        ({"type": "bits", "bit": 12, "bits": 5}, "passes the 16-bit register"),
        ({"type": "uint16", "bit": 3}, "apply only to type 'bits'"),
        ({"type": "int16", "bits": 2}, "apply only to type 'bits'"),
        ({"byte_order": "middle"}, "'big' or 'little'"),
    ],
)
def test_invalid_bit_fields_say_what_to_fix(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModbusChannel(id="status", address=0, **fields)  # type: ignore[arg-type]


_LAYOUTS = st.sampled_from(["big", "little"])
_KINDS: list[RegisterType] = [
    "int16",
    "uint16",
    "int32",
    "uint32",
    "float32",
    "int64",
    "uint64",
    "float64",
    "bits",
]


@st.composite
def _register_maps(draw: st.DrawFn) -> tuple[list[ModbusChannel], list[int]]:
    """Channels of every type and layout over a few registers, overlapping ones included."""
    channels = []
    for n in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(_KINDS))
        address = draw(st.integers(0, 20))
        extra: dict[str, Any]
        if kind == "bits":
            bit = draw(st.integers(0, 15))
            extra = {"bit": bit, "bits": draw(st.integers(1, 16 - bit))}
        else:
            extra = {"word_order": draw(_LAYOUTS), "byte_order": draw(_LAYOUTS)}
        channels.append(
            ModbusChannel(
                id=f"c{n}",
                address=address,
                type=kind,
                scale=draw(st.sampled_from([1.0, 0.1, 2.5])),
                offset=draw(st.sampled_from([0.0, -40.0])),
                **extra,
            )
        )
    registers = draw(st.lists(st.integers(0, 0xFFFF), min_size=24, max_size=24))
    return channels, registers


@given(_register_maps())
def test_the_fast_decoder_reads_what_decode_channel_reads(
    case: tuple[list[ModbusChannel], list[int]],
) -> None:
    channels, registers = case
    request = ReadRequest("holding", 0, 24, tuple(range(len(channels))))
    fast = [math.nan] * len(channels)
    RequestDecoder(channels, request).fill(registers, fast)
    one_by_one = [decode_channel(registers[ch.address : ch.address + WIDTH[ch.type]], ch) for ch in channels]
    assert [repr(v) for v in fast] == [repr(v) for v in one_by_one]  # NaN payloads of floats included
