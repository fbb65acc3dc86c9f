"""Which shipped profile a unit that answers is: identification registers, else plausible values.

A profile that declares ``[identify]`` registers matches when they hold its
values and is ruled out when they do not. Otherwise every channel of the
profile is read and judged: a value inside its ``plausible`` range is evidence
for the profile (a zero is no evidence either way, since a blank register map
reads zeros), a value outside it is strong evidence against; so is a status
word with bits set that the profile gives no meaning, while a clean status
word is weak evidence for it (a quiet alarm panel reads all zeros). A read the unit refuses
rules the profile out.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from contracts.errors import DriverError
from drivers.modbus.frames import FUNCTION
from drivers.modbus.profiles import Profile
from drivers.modbus.registers import WIDTH, ModbusChannel, decode_channel, plan_requests

ReadRegisters = Callable[[int, int, int], Awaitable[list[int]]]  # function, start, count → registers
_AGAINST = 3  # one implausible value outweighs this many plausible ones
_CLEAN_STATUS = 0.25  # a status word with no stray bits: weak evidence, blank registers look the same


@dataclass(frozen=True, slots=True)
class Match:
    """How well one profile fits what a unit answered; ``score`` > 0 is a fit."""

    profile: str
    score: float
    how: str  # "identification registers" or "plausible values: 7 of 8"


async def identify(read: ReadRegisters, profiles: Sequence[Profile]) -> list[Match]:
    """Every profile that fits the unit, best first."""
    matches = []
    for profile in profiles:
        match = await _judge(read, profile)
        if match is not None and match.score > 0:
            matches.append(match)
    return sorted(matches, key=lambda m: -m.score)


async def _judge(read: ReadRegisters, profile: Profile) -> Match | None:
    if profile.identify is not None:
        ident = profile.identify
        try:
            found = await read(FUNCTION[ident.table], ident.address, len(ident.values))
        except DriverError:
            return None
        if tuple(found) != ident.values:
            return None
        return Match(profile.name, math.inf, "identification registers")
    images: dict[tuple[str, int], int] = {}
    for request in plan_requests(profile.channels):
        try:
            words = await read(FUNCTION[request.table], request.start, request.count)
        except DriverError:
            return None
        images.update({(request.table, request.start + i): w for i, w in enumerate(words)})
    return _plausibility(profile, images)


def _plausibility(profile: Profile, images: dict[tuple[str, int], int]) -> Match:
    good: float = 0
    bad = judged = 0
    for ch in profile.channels:
        if ch.type == "bits" or ch.plausible is None:
            continue
        words = [images[(ch.table, ch.address + i)] for i in range(WIDTH[ch.type])]
        value = decode_channel(words, ch)
        judged += 1
        if not (math.isfinite(value) and ch.plausible[0] <= value <= ch.plausible[1]):
            bad += 1
        elif value != 0:
            good += 1
    for (table, address), used in _status_words(profile.channels).items():
        judged += 1
        if images[(table, address)] & ~used & 0xFFFF:
            bad += 1
        else:
            good += _CLEAN_STATUS
    fitting = judged - bad
    return Match(profile.name, good - _AGAINST * bad, f"plausible values: {fitting} of {judged}")


def _status_words(channels: Sequence[ModbusChannel]) -> dict[tuple[str, int], int]:
    """Registers that hold only bit fields, with the bits the profile gives a meaning."""
    used: dict[tuple[str, int], int] = {}
    numbers = {
        (ch.table, ch.address + i) for ch in channels if ch.type != "bits" for i in range(WIDTH[ch.type])
    }
    for ch in channels:
        key = (ch.table, ch.address)
        if ch.type == "bits" and key not in numbers and ch.byte_order == "big":
            used[key] = used.get(key, 0) | (((1 << ch.bits) - 1) << (ch.bit or 0))
    return used
