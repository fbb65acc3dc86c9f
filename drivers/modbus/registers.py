"""Register types, word and byte order, bit fields and request planning for Modbus channels.

Multi-register values come in four layouts in the field. With the bytes of a
32-bit value named ABCD (A most significant), ``word_order`` × ``byte_order``
give: big × big = ABCD, little × big = CDAB, big × little = BADC and
little × little = DCBA; 64-bit values extend the same way.

A ``bits`` channel is a field of ``bits`` bits starting at bit ``bit`` (0 = least
significant) of one register, as status words pack alarm flags. Several bit
channels may share a register; writing one keeps the others.

A poll reads each register table in as few requests as the Modbus limit
(125 registers per read) and the allowed gap between channels permit.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from contracts.config import ChannelConfig

RegisterType = Literal["int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64", "bits"]
WordOrder = Literal["big", "little"]
ByteOrder = Literal["big", "little"]
Table = Literal["holding", "input", "coils", "discrete"]
BIT_TABLES: tuple[Table, ...] = ("coils", "discrete")  # FC 1 and 2: one bit per address, read as 0/1

MAX_REGISTERS_PER_READ = 125
WIDTH: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "int64": 4,
    "uint64": 4,
    "float64": 4,
    "bits": 1,
}
STRUCT_FORMAT: dict[str, str] = {
    "int16": ">h",
    "uint16": ">H",
    "int32": ">i",
    "uint32": ">I",
    "float32": ">f",
    "int64": ">q",
    "uint64": ">Q",
    "float64": ">d",
    "bits": ">H",
}
_FLOATS = frozenset({"float32", "float64"})
# What a float register resolves: float32 holds about 7 significant decimal digits.
SIGNIFICANT_DIGITS: dict[str, int] = {"float32": 7, "float64": 15}
_MAX_SCALE_DECIMALS = 9


class ModbusChannel(ChannelConfig):
    """A channel read from one to four registers: value = raw × scale + offset."""

    table: Table = "holding"
    address: int = Field(ge=0, le=65_535)
    type: RegisterType = "uint16"
    word_order: WordOrder = Field(
        default="big", description="big: high word first (ABCD); little: low word first (CDAB)"
    )
    byte_order: ByteOrder = Field(
        default="big", description="big: high byte first in each word (AB); little: swapped (BA)"
    )
    bit: int | None = Field(
        default=None, ge=0, le=15, description="lowest bit of a bits field, 0 = least significant"
    )
    bits: int = Field(default=1, ge=1, le=16, description="width of a bits field")
    scale: float = 1.0
    offset: float = 0.0
    decimals: int | None = Field(
        default=None,
        ge=0,
        le=9,
        description="round values to this many decimals; default from scale (float registers: 7 digits)",
    )
    plausible: tuple[float, float] | None = Field(
        default=None, description="[low, high] a working sensor reads within; probe and scan check it"
    )
    contact: Literal["no", "nc"] | None = Field(
        default=None,
        description="a dry contact on a coil or discrete input: no (1 when closed) or nc (1 when open)",
    )
    writable: bool = Field(
        default=False,
        description="a coil the gateway may switch (FC 05/15), on a rule's output or a signed relay command",
    )

    @model_validator(mode="before")
    @classmethod
    def _contact_as_scale(cls, data: Any) -> Any:
        """A normally-closed contact reads 1 - bit: that is scale -1, offset 1, on one code path."""
        if isinstance(data, dict) and data.get("contact") == "nc":
            if "scale" in data or "offset" in data:
                raise ValueError(
                    f"channel {data.get('id')!r}: contact = 'nc' sets scale and offset; drop them"
                )
            return {**data, "scale": -1.0, "offset": 1.0}
        return data

    @property
    def resolution(self) -> tuple[int | None, int | None]:
        """(decimals, significant digits) the channel's values are rounded to; one of them is None.

        An integer register × 0.1 resolves tenths; a float register resolves its
        significant digits, whatever the scale.
        """
        if self.decimals is not None:
            return self.decimals, None
        if self.type in SIGNIFICANT_DIGITS:
            return None, SIGNIFICANT_DIGITS[self.type]
        places = max(_decimal_places(self.scale), _decimal_places(self.offset))
        if places > _MAX_SCALE_DECIMALS:  # a scale like 1/3: no decimal resolution
            return None, SIGNIFICANT_DIGITS["float64"]
        return places, None

    @model_validator(mode="after")
    def _bit_field_fits(self) -> ModbusChannel:
        if self.table in BIT_TABLES and self.type != "uint16":
            raise ValueError(f"channel {self.id!r}: a {self.table} channel is one bit; drop `type`")
        if self.contact is not None and self.table not in BIT_TABLES:
            raise ValueError(
                f"channel {self.id!r}: `contact` is for coils and discrete inputs, not {self.table}"
            )
        if self.writable and (self.table != "coils" or self.contact is not None or self.scale != 1.0):
            raise ValueError(
                f"channel {self.id!r}: only a coil is writable (table = 'coils', no contact or scale)"
            )
        if self.type == "bits":
            if self.bit is None:
                raise ValueError(f"channel {self.id!r}: type 'bits' needs 'bit' (0–15)")
            if self.bit + self.bits > 16:
                raise ValueError(
                    f"channel {self.id!r}: bit {self.bit} + bits {self.bits} passes the 16-bit "
                    f"register; lower 'bit' or 'bits'"
                )
        elif self.bit is not None or "bits" in self.model_fields_set:
            raise ValueError(
                f"channel {self.id!r}: 'bit' and 'bits' apply only to type 'bits', not {self.type!r}"
            )
        return self


def _decimal_places(number: float) -> int:
    exponent = Decimal(repr(number)).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _swap_bytes(words: Sequence[int]) -> list[int]:
    return [((w & 0xFF) << 8) | (w >> 8) for w in words]


def decode(
    words: Sequence[int],
    kind: RegisterType,
    word_order: WordOrder = "big",
    *,
    byte_order: ByteOrder = "big",
    bit: int = 0,
    bits: int = 16,
) -> float:
    """The raw number held in ``words``; for ``bits``, the unsigned field at ``bit``."""
    ordered = list(reversed(words)) if word_order == "little" else list(words)
    if byte_order == "little":
        ordered = _swap_bytes(ordered)
    if kind == "bits":
        return float((ordered[0] >> bit) & ((1 << bits) - 1))
    raw = struct.pack(f">{len(ordered)}H", *ordered)
    return float(struct.unpack(STRUCT_FORMAT[kind], raw)[0])


def encode(
    value: float,
    kind: RegisterType,
    word_order: WordOrder = "big",
    *,
    byte_order: ByteOrder = "big",
) -> list[int]:
    """The registers that hold ``value`` as ``kind`` (the inverse of :func:`decode`).

    A ``bits`` field shares its register with others, so it is written with
    :func:`encode_channel`, which knows the register's other bits.
    """
    if kind == "bits":
        raise ValueError("a bits field is encoded with encode_channel, which keeps the other bits")
    number: float | int = value if kind in _FLOATS else round(value)
    try:
        raw = struct.pack(STRUCT_FORMAT[kind], number)
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"{value} does not fit in {kind}") from exc
    words = list(struct.unpack(f">{len(raw) // 2}H", raw))
    if byte_order == "little":
        words = _swap_bytes(words)
    return list(reversed(words)) if word_order == "little" else words


def decode_channel(words: Sequence[int], ch: ModbusChannel) -> float:
    """The engineering value of ``ch`` held in its ``WIDTH[ch.type]`` registers ``words``."""
    raw = decode(words, ch.type, ch.word_order, byte_order=ch.byte_order, bit=ch.bit or 0, bits=ch.bits)
    return raw * ch.scale + ch.offset


def encode_channel(value: float, ch: ModbusChannel, current: Sequence[int] = (0,)) -> list[int]:
    """The registers that hold engineering ``value`` for ``ch``.

    ``current`` is what the channel's registers hold now; a ``bits`` field
    replaces only its own bits of ``current[0]``.
    """
    raw = (value - ch.offset) / ch.scale
    if ch.type != "bits":
        return encode(raw, ch.type, ch.word_order, byte_order=ch.byte_order)
    field = round(raw)
    if not 0 <= field < 1 << ch.bits:
        raise ValueError(f"{value} does not fit in the {ch.bits}-bit field of channel {ch.id!r}")
    swap = ch.byte_order == "little"
    word = _swap_bytes(current[:1])[0] if swap else current[0]
    mask = ((1 << ch.bits) - 1) << (ch.bit or 0)
    word = (word & ~mask & 0xFFFF) | (field << (ch.bit or 0))
    return _swap_bytes([word]) if swap else [word]


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read of ``count`` registers from ``start``; ``channels`` index into the batch."""

    table: Table
    start: int
    count: int
    channels: tuple[int, ...]


def plan_requests(
    channels: Sequence[ModbusChannel], *, max_gap: int = 16, max_count: int = MAX_REGISTERS_PER_READ
) -> list[ReadRequest]:
    """Cover every channel with as few reads as possible.

    Channels of one table are merged into one read while the span stays within
    ``max_count`` registers and no hole between them exceeds ``max_gap``;
    channels that overlap (bit fields of one status word) share the read.
    """
    requests: list[ReadRequest] = []
    tables: tuple[Table, ...] = ("holding", "input", *BIT_TABLES)
    for table in tables:
        ordered = sorted(
            (i for i, ch in enumerate(channels) if ch.table == table),
            key=lambda i: channels[i].address,
        )
        group: list[int] = []
        start = end = 0
        for i in ordered:
            ch = channels[i]
            ch_end = ch.address + WIDTH[ch.type]
            if group and ch.address - end <= max_gap and max(end, ch_end) - start <= max_count:
                group.append(i)
                end = max(end, ch_end)
                continue
            if group:
                requests.append(ReadRequest(table, start, end - start, tuple(group)))
            group, start, end = [i], ch.address, ch_end
        if group:
            requests.append(ReadRequest(table, start, end - start, tuple(group)))
    return requests
