"""Turning the registers of one planned read into channel values, fast.

Most channels are plain numbers in the usual layout (big-endian words and
bytes); a read's worth of them is decoded with one precompiled struct call.
Bit fields, other word or byte orders and overlapping channels go through
:func:`decode_channel` one by one. The result is the same either way (tested
against :func:`decode_channel` on random maps and registers).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from contracts.readings import Rounding
from drivers.modbus.registers import STRUCT_FORMAT, WIDTH, ModbusChannel, ReadRequest, decode_channel


def channel_rounding(channels: Sequence[ModbusChannel]) -> Rounding:
    """Rounds a device's batch to the resolution of each of its channels."""
    resolutions = [ch.resolution for ch in channels]
    return Rounding([d for d, _ in resolutions], [s for _, s in resolutions])


class RequestDecoder:
    """Decodes the registers answered to one :class:`ReadRequest`."""

    def __init__(self, channels: Sequence[ModbusChannel], request: ReadRequest) -> None:
        self._channels = channels
        self._start = request.start
        fmt, pos = [">"], 0
        self._fast: list[tuple[int, float, float]] = []
        self._slow: list[int] = []
        for i in sorted(request.channels, key=lambda i: channels[i].address):
            ch = channels[i]
            at = ch.address - request.start
            plain = ch.type != "bits" and ch.word_order == "big" and ch.byte_order == "big"
            if plain and at >= pos:
                fmt.append("x" * (2 * (at - pos)) + STRUCT_FORMAT[ch.type][1:])
                pos = at + WIDTH[ch.type]
                self._fast.append((i, ch.scale, ch.offset))
            else:
                self._slow.append(i)
        self._words = struct.Struct(f">{request.count}H")
        self._numbers = struct.Struct("".join(fmt))

    def fill(self, registers: Sequence[int], values: list[float]) -> None:
        """Write the value of every channel of the request into ``values`` (by channel index)."""
        raw = self._words.pack(*registers)
        for (i, scale, offset), number in zip(self._fast, self._numbers.unpack_from(raw), strict=True):
            values[i] = number * scale + offset
        for i in self._slow:
            ch = self._channels[i]
            at = ch.address - self._start
            values[i] = decode_channel(registers[at : at + WIDTH[ch.type]], ch)
