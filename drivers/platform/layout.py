"""A device's raw bytes read by a declarative layout: offsets, types, endianness, bit fields.

Many NB-IoT and LoRa smoke detectors and manhole covers send a few bytes
rather than JSON; the layout names what is where. Compiled once per device
into :mod:`struct` readers, so a message costs one unpack per field.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.platform.config import FIELD_SIZE, LayoutField
from drivers.platform.errors import DecodeError, Reason

_CODE = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "i32": "i", "f32": "f"}


@dataclass(frozen=True, slots=True)
class _Reader:
    name: str
    offset: int
    end: int
    unpack: struct.Struct
    shift: int
    mask: int | None  # None: the whole value, not a bit field
    scale: float


class ByteLayout:
    """Reads every field of a layout from one payload."""

    def __init__(self, fields: Sequence[LayoutField]) -> None:
        self._readers = tuple(
            _Reader(
                name=f.name,
                offset=f.offset,
                end=f.offset + FIELD_SIZE[f.type],
                unpack=struct.Struct((">" if f.endian == "big" else "<") + _CODE[f.type]),
                shift=f.bit or 0,
                mask=None if f.bit is None else (1 << f.bits) - 1,
                scale=f.scale,
            )
            for f in fields
        )
        self.needs = max((r.end for r in self._readers), default=0)

    def read(self, raw: bytes) -> dict[str, float]:
        """Field name → value (after the field's scale); DecodeError when ``raw`` is too short."""
        if len(raw) < self.needs:
            short = next(r for r in self._readers if r.end > len(raw))
            raise DecodeError(
                Reason.MISSING_FIELD,
                f"raw payload is {len(raw)} bytes; field {short.name} needs bytes"
                f" {short.offset}..{short.end - 1}",
            )
        values: dict[str, float] = {}
        for r in self._readers:
            (number,) = r.unpack.unpack_from(raw, r.offset)
            if r.mask is not None:
                number = (number >> r.shift) & r.mask
            values[r.name] = number * r.scale
        return values
