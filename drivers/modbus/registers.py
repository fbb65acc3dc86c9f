"""Register types, word order and request planning for Modbus channels.

A poll reads each register table in as few requests as the Modbus limit
(125 registers per read) and the allowed gap between channels permit.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from drivers.base import ChannelConfig

RegisterType = Literal["int16", "uint16", "int32", "uint32", "float32"]
WordOrder = Literal["big", "little"]
Table = Literal["holding", "input"]

MAX_REGISTERS_PER_READ = 125
WIDTH: dict[str, int] = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}
_STRUCT: dict[str, str] = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}


class ModbusChannel(ChannelConfig):
    """A channel read from one or two registers: value = raw × scale + offset."""

    table: Table = "holding"
    address: int = Field(ge=0, le=65_535)
    type: RegisterType = "uint16"
    word_order: WordOrder = Field(
        default="big", description="big: high word first (ABCD); little: low word first (CDAB)"
    )
    scale: float = 1.0
    offset: float = 0.0


def decode(words: Sequence[int], kind: RegisterType, word_order: WordOrder = "big") -> float:
    """The raw number held in ``words`` (one or two 16-bit registers)."""
    if word_order == "little":
        words = tuple(reversed(words))
    raw = struct.pack(f">{len(words)}H", *words)
    return float(struct.unpack(_STRUCT[kind], raw)[0])


def encode(value: float, kind: RegisterType, word_order: WordOrder = "big") -> list[int]:
    """The registers that hold ``value`` as ``kind`` (the inverse of :func:`decode`)."""
    number: float | int = value if kind == "float32" else int(round(value))
    raw = struct.pack(_STRUCT[kind], number)
    words = list(struct.unpack(f">{len(raw) // 2}H", raw))
    return list(reversed(words)) if word_order == "little" else words


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
    ``max_count`` registers and no hole between them exceeds ``max_gap``.
    """
    requests: list[ReadRequest] = []
    for table in ("holding", "input"):
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


def fill_values(
    channels: Sequence[ModbusChannel], request: ReadRequest, registers: Sequence[int], values: list[float]
) -> None:
    """Decode the channels ``request`` covers from its ``registers`` into ``values``."""
    for i in request.channels:
        ch = channels[i]
        at = ch.address - request.start
        raw = decode(registers[at : at + WIDTH[ch.type]], ch.type, ch.word_order)
        values[i] = raw * ch.scale + ch.offset
