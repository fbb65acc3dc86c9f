"""Device profiles: what a device model's entries have in common, written once and named by devices.

A profile is ``<name>.toml`` in a profile directory: a ``description``, the
model's ``[[channels]]``, and any other top-level keys as defaults of the
device entry (``driver``, ``heartbeat_s``, a byte ``layout``, ...); a device's
own keys win. A site's ``profiles/`` directory is searched before the shipped
ones (configs/profiles), so a site can add a model or replace a shipped one.
A driver may give profiles keys of its own that are not entry defaults
(Modbus: ``identify``); they are listed in ``NOT_DEFAULTS``.

A device using a profile may adjust its channels with a list of overrides,
matched by ``id`` (see :func:`resolve_channels`). Everything here works on
plain dicts, so the config loader merges before it validates and reports every
problem with its path; problems raise :class:`ConfigError` naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.compat import tomllib
from contracts.config import NAME_RE
from contracts.errors import ConfigError

SHIPPED_PROFILES = Path(__file__).resolve().parents[1] / "configs" / "profiles"
NOT_DEFAULTS = ("description", "channels", "identify")


@dataclass(frozen=True, slots=True)
class ProfileFile:
    """A profile as read, not yet validated by its driver's models."""

    name: str
    path: Path
    description: str
    defaults: dict[str, Any]
    channels: list[dict[str, Any]]
    document: dict[str, Any]

    @property
    def driver(self) -> str | None:
        driver = self.defaults.get("driver")
        return driver if isinstance(driver, str) else None


def default_profile_dirs(config_dir: Path | None = None) -> list[Path]:
    """Where profiles are looked for: the site's ``profiles/`` first, then the shipped ones."""
    dirs = [config_dir / "profiles"] if config_dir is not None else []
    return [*dirs, SHIPPED_PROFILES]


def available_profiles(search: Sequence[Path]) -> list[str]:
    """The names of every profile found in ``search``, sorted."""
    return sorted({p.stem for d in search if d.is_dir() for p in d.glob("*.toml")})


def read_profile(name: str, search: Sequence[Path]) -> ProfileFile:
    """Profile ``name`` from the first directory in ``search`` that has it."""
    path = find_profile(name, search)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from exc
    problems = []
    description = document.get("description", "")
    if not isinstance(description, str):
        problems.append("description: must be a string")
        description = ""
    tables = document.get("channels")
    if not isinstance(tables, list) or not tables:
        problems.append("channels: needs at least one [[channels]] table")
        tables = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            problems.append(f"channels[{i}]: must be a table with id, unit, ...")
        elif not isinstance(table.get("id"), str):
            problems.append(f"channels[{i}].id: every channel needs an id")
    for key in ("id", "profile"):
        if key in document:
            problems.append(f"{key}: a profile cannot set it; each device entry gives its own")
    if problems:
        raise ConfigError(str(path), problems)
    defaults = {k: v for k, v in document.items() if k not in NOT_DEFAULTS}
    channels = [dict(t) for t in tables]
    return ProfileFile(name, path, description.strip(), defaults, channels, document)


def with_profile(entry: Mapping[str, Any], search: Sequence[Path]) -> dict[str, Any]:
    """A device entry naming ``profile``, merged over it; its ``channels`` adjust the profile's."""
    name = entry["profile"]
    if not isinstance(name, str):
        raise ConfigError("profile", ['must be a profile name, e.g. "dust-monitor"'])
    overrides = entry.get("channels", [])
    if not isinstance(overrides, list) or not all(isinstance(o, dict) for o in overrides):
        raise ConfigError("channels", ["must be an array of tables adjusting the profile's channels"])
    profile = read_profile(name, search)
    channels = resolve_channels(profile.channels, overrides)
    return {**profile.defaults, **entry, "channels": channels}


def resolve_channels(
    profile_channels: Sequence[Mapping[str, Any]], overrides: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The profile's channels with a device's ``overrides`` applied, in profile order.

    An override whose ``id`` is in the profile replaces only the keys it gives;
    one with ``enabled = false`` drops that channel; one with a new ``id`` is
    added at the end. ``enabled`` is never passed on.
    """
    merged = {str(ch["id"]): dict(ch) for ch in profile_channels}
    problems = duplicate_ids(overrides, where="overrides")
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


def find_profile(name: str, search: Sequence[Path]) -> Path:
    if NAME_RE.match(name):
        for directory in search:
            path = directory / f"{name}.toml"
            if path.is_file():
                return path
    known = ", ".join(available_profiles(search)) or "none"
    places = ", ".join(str(d) for d in search)
    raise ConfigError(f"profile {name!r}", [f"no such profile in {places}; available: {known}"])


def duplicate_ids(tables: Sequence[Mapping[str, Any]], where: str = "channels") -> list[str]:
    seen: set[object] = set()
    problems = []
    for i, table in enumerate(tables):
        cid = table.get("id")
        if cid in seen:
            problems.append(f"{where}[{i}].id: {cid!r} appears more than once")
        seen.add(cid)
    return problems
