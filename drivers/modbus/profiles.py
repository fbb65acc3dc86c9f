"""Modbus device profiles: the register map of a device model (file format: contracts.profiles).

The ``[[channels]]`` of a Modbus profile have the keys of :class:`ModbusChannel`.
A profile may say how to recognise the model (``[identify]``: ``table``,
``address`` and the register ``values`` found there, e.g. a vendor and model
code); ``gridgate scan`` reads them, and otherwise judges by whether the
channels' values are ``plausible``. A device adjusts a profile's channels by id::

    channels = [
        { id = "pm10", scale = 0.1 },        # changes only the keys given
        { id = "noise", enabled = false },   # drops the profile's channel
        { id = "pm1", address = 12, type = "float32", unit = "µg/m³" },  # adds one
    ]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError

from contracts.config import StrictModel
from contracts.errors import ConfigError
from contracts.profiles import (
    SHIPPED_PROFILES,
    default_profile_dirs,
    duplicate_ids,
    read_profile,
)
from contracts.profiles import available_profiles as all_profiles
from drivers.modbus.registers import ModbusChannel, Table

MODBUS_DRIVERS = (None, "modbus", "modbus_tcp")  # a profile without `driver` is a Modbus one
__all__ = ["SHIPPED_PROFILES", "Profile", "available_profiles", "default_profile_dirs", "load_profile"]


class Identification(StrictModel):
    """Registers that hold the same values in every unit of the model (vendor, model code)."""

    table: Table = "holding"
    address: int = Field(ge=0, le=65_535)
    values: tuple[int, ...] = Field(min_length=1, max_length=32)


@dataclass(frozen=True, slots=True)
class Profile:
    """A validated device profile."""

    name: str
    description: str
    channels: tuple[ModbusChannel, ...]
    identify: Identification | None = None


def available_profiles(search: Sequence[Path]) -> list[str]:
    """The Modbus profiles found in ``search`` (those of other drivers left out), sorted."""
    return [name for name in all_profiles(search) if read_profile(name, search).driver in MODBUS_DRIVERS]


def load_profile(name: str, search: Sequence[Path]) -> Profile:
    """Profile ``name`` from the first directory in ``search`` that has it, validated."""
    profile = read_profile(name, search)
    if profile.driver not in MODBUS_DRIVERS:
        raise ConfigError(str(profile.path), [f"driver: a profile of {profile.driver!r}, not a Modbus one"])
    tables = profile.channels
    channels: list[ModbusChannel] = []
    problems: list[str] = []
    identify = None
    table = profile.document.get("identify")
    if table is not None:
        try:
            identify = Identification.model_validate(table)
        except ValidationError as exc:
            problems.extend(_describe("identify", exc))
    for i, table in enumerate(tables):
        try:
            channels.append(ModbusChannel.model_validate(table))
        except ValidationError as exc:
            problems.extend(_describe(f"channels[{i}]", exc))
    problems.extend(duplicate_ids(tables))
    problems.extend(f"{key}: unknown key in a Modbus profile" for key in profile.defaults if key != "driver")
    if problems:
        raise ConfigError(str(profile.path), problems)
    return Profile(name, profile.description, tuple(channels), identify)


def _describe(where: str, exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        path = f"{where}.{field}" if field else where
        problems.append(f"{path}: {error['msg']}")
    return problems
