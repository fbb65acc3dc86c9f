"""Relay outputs of a Modbus device: its coils declared ``writable``, switched in runs.

A write names channels and 0/1; channels next to each other go in one FC 15
request, a lone one as FC 05. Afterwards the coils are read back (FC 01), so
the caller learns what the relay module really holds, not what was asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from contracts.errors import NotWritable
from drivers.modbus.registers import ModbusChannel


def writable_channels(channels: Iterable[ModbusChannel]) -> frozenset[str]:
    return frozenset(ch.id for ch in channels if ch.writable)


@dataclass(frozen=True, slots=True)
class CoilWrite:
    """What one write does: runs of (first address, bits), and the span to read back."""

    runs: tuple[tuple[int, tuple[int, ...]], ...]
    read_from: int
    read_count: int
    addresses: Mapping[str, int]  # channel: coil address


def plan_write(device: str, channels: Sequence[ModbusChannel], values: Mapping[str, int]) -> CoilWrite:
    """The requests for ``values``; NotWritable names a channel that is not a writable coil."""
    by_id = {ch.id: ch for ch in channels}
    outputs = sorted(writable_channels(channels))
    if not values:
        raise NotWritable(device, f"nothing to switch (outputs: {', '.join(outputs) or 'none'})")
    addresses: dict[str, int] = {}
    for channel, value in values.items():
        ch = by_id.get(channel)
        if ch is None or not ch.writable:
            what = "no channel" if ch is None else "not a writable output:"
            raise NotWritable(
                device,
                f"{what} {channel!r} (outputs: {', '.join(outputs) or 'none'};"
                " declare a coil channel with writable = true)",
            )
        if value not in (0, 1):
            raise NotWritable(device, f"output {channel!r}: a coil is switched to 0 or 1, not {value!r}")
        addresses[channel] = ch.address
    bits = sorted((addresses[c], int(v)) for c, v in values.items())
    runs: list[tuple[int, list[int]]] = []
    for address, bit in bits:
        if runs and runs[-1][0] + len(runs[-1][1]) == address:
            runs[-1][1].append(bit)
        else:
            runs.append((address, [bit]))
    first, last = bits[0][0], bits[-1][0]
    return CoilWrite(
        runs=tuple((start, tuple(run)) for start, run in runs),
        read_from=first,
        read_count=last - first + 1,
        addresses=addresses,
    )


def read_back(write: CoilWrite, coils: Sequence[int]) -> dict[str, float]:
    """Each written channel's coil as read back after the write."""
    return {channel: float(coils[address - write.read_from]) for channel, address in write.addresses.items()}
