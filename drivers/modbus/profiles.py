"""Device profiles: the register map of a device model, written once and named by devices.

A profile is ``<name>.toml`` in a profile directory: a ``description`` string
and ``[[channels]]`` tables with the keys of :class:`ModbusChannel`. A site's
own ``profiles/`` directory is searched before the profiles shipped in
``configs/profiles``, so a site can add a device model or replace a shipped one.

A profile may say how to recognise the model (``[identify]``: ``table``,
``address`` and the register ``values`` found there, e.g. a vendor and model
code); ``gridgate scan`` reads them, and otherwise judges by whether the
channels' values are ``plausible``.

A device using a profile may adjust it with a list of channel overrides, matched
by ``id`` (see :func:`resolve_channels`)::

    channels = [
        { id = "pm10", scale = 0.1 },        # changes only the keys given
        { id = "noise", enabled = false },   # drops the profile's channel
        { id = "pm1", address = 12, type = "float32", unit = "µg/m³" },  # adds one
    ]

Everything here works on plain dicts as well as models, so a config loader can
merge before it validates and report every problem with its path. Problems
raise :class:`gateway.errors.ConfigError` naming the profile file and the
channel index and field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from drivers.base import NAME_RE, StrictModel
from drivers.modbus.registers import ModbusChannel, Table
from gateway._compat import tomllib
from gateway.errors import ConfigError

SHIPPED_PROFILES = Path(__file__).resolve().parents[2] / "configs" / "profiles"


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


def default_profile_dirs(config_dir: Path | None = None) -> list[Path]:
    """Where profiles are looked for: the site's ``profiles/`` first, then the shipped ones."""
    dirs = [config_dir / "profiles"] if config_dir is not None else []
    return [*dirs, SHIPPED_PROFILES]


def available_profiles(search: Sequence[Path]) -> list[str]:
    """The names of every Modbus profile found in ``search``, sorted.

    A profile whose top-level ``driver`` names another driver (a platform
    device's) belongs to that driver and is not listed here.
    """
    return sorted({p.stem for d in search if d.is_dir() for p in d.glob("*.toml") if _is_modbus(p)})


def _is_modbus(path: Path) -> bool:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True  # load_profile says what is wrong with it
    return document.get("driver", "modbus") in ("modbus", "modbus_tcp")


def profile_channel_dicts(name: str, search: Sequence[Path]) -> list[dict[str, Any]]:
    """The channel tables of profile ``name`` as plain dicts, not yet validated."""
    return _read(_find(name, search))[1]


def load_profile(name: str, search: Sequence[Path]) -> Profile:
    """Profile ``name`` from the first directory in ``search`` that has it, validated."""
    path = _find(name, search)
    description, tables = _read(path)
    channels: list[ModbusChannel] = []
    problems: list[str] = []
    identify = None
    table = tomllib.loads(path.read_text(encoding="utf-8")).get("identify")
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
    problems.extend(_duplicate_ids(tables))
    if problems:
        raise ConfigError(str(path), problems)
    return Profile(name, description, tuple(channels), identify)


def resolve_channels(
    profile_channels: Sequence[Mapping[str, Any]], overrides: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The profile's channels with a device's ``overrides`` applied, in profile order.

    An override whose ``id`` is in the profile replaces only the keys it gives;
    one with ``enabled = false`` drops that channel; one with a new ``id`` is
    added at the end. ``enabled`` is never passed on.
    """
    merged = {str(ch["id"]): dict(ch) for ch in profile_channels}
    problems = _duplicate_ids(overrides, where="overrides")
    for i, override in enumerate(overrides):
        cid = override.get("id")
        enabled = override.get("enabled", True)
        if not isinstance(cid, str):
            problems.append(f"overrides[{i}].id: each override needs the channel's id")
        elif not isinstance(enabled, bool):
            problems.append(f"overrides[{i}].enabled: must be true or false")
        elif not enabled:
            if merged.pop(cid, None) is None:
                problems.append(f"overrides[{i}].id: no channel {cid!r} to disable")
        else:
            fields = {k: v for k, v in override.items() if k != "enabled"}
            merged.setdefault(cid, {}).update(fields)
    if problems:
        raise ConfigError("channel overrides", problems)
    return list(merged.values())


def _find(name: str, search: Sequence[Path]) -> Path:
    if NAME_RE.match(name):
        for directory in search:
            path = directory / f"{name}.toml"
            if path.is_file():
                return path
    known = ", ".join(available_profiles(search)) or "none"
    places = ", ".join(str(d) for d in search)
    raise ConfigError(f"profile {name!r}", [f"no such profile in {places}; available: {known}"])


def _read(path: Path) -> tuple[str, list[dict[str, Any]]]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from exc
    problems = [
        f"{key}: unknown key; a profile has description, identify and channels"
        for key in document
        if key not in ("description", "identify", "channels")
    ]
    description = document.get("description", "")
    if not isinstance(description, str):
        problems.append("description: must be a string")
    tables = document.get("channels")
    if not isinstance(tables, list) or not tables:
        problems.append("channels: needs at least one [[channels]] table")
        tables = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            problems.append(f"channels[{i}]: must be a table with id, address, type, ...")
        elif not isinstance(table.get("id"), str):
            problems.append(f"channels[{i}].id: every channel needs an id")
    if problems:
        raise ConfigError(str(path), problems)
    return description.strip(), [dict(t) for t in tables]


def _duplicate_ids(tables: Sequence[Mapping[str, Any]], where: str = "channels") -> list[str]:
    seen: set[object] = set()
    problems = []
    for i, table in enumerate(tables):
        cid = table.get("id")
        if cid in seen:
            problems.append(f"{where}[{i}].id: {cid!r} appears more than once")
        seen.add(cid)
    return problems


def _describe(where: str, exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        path = f"{where}.{field}" if field else where
        problems.append(f"{path}: {error['msg']}")
    return problems
