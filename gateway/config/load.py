"""Load a site config in two passes: schema, then cross-references.

Every problem is collected and reported at once, each with its path in the
file (``devices[2].port: must be ≤ 65535``), so a technician fixes a file in
one round trip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from contracts.compat import tomllib
from contracts.config import DeviceConfig
from contracts.errors import ConfigError
from contracts.profiles import default_profile_dirs, with_profile
from contracts.spec import DriverSpec, Indexed
from drivers.registry import SPECS
from gateway.config.files import resolve_files
from gateway.config.models import GatewayConfig


def load_config(path: str | Path, *, check_files: bool = True) -> tuple[GatewayConfig, str]:
    """The validated config in ``path`` and a short digest of the file's bytes."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    config = parse_config(raw, source=str(path), config_dir=path.resolve().parent, check_files=check_files)
    return config, hashlib.sha256(raw).hexdigest()[:16]


def parse_config(
    raw: bytes | str, *, source: str = "<config>", config_dir: Path | None = None, check_files: bool = True
) -> GatewayConfig:
    """Validate TOML text; raise ConfigError listing every problem found.

    Device profiles are looked up in ``config_dir/profiles`` first, then among
    the shipped ones (configs/profiles). With ``check_files`` the files it names
    (password, TLS) must be readable by this user (see config.files); without,
    only their paths are resolved, for a config written for another machine.
    """
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [f"not UTF-8 text: {exc}"]) from exc

    problems: list[str] = []
    devices = _validate_devices(data.get("devices", []), problems, default_profile_dirs(config_dir))
    sections = _validate_sections(data, problems)
    if "sections" in data:
        problems.append("sections: unknown key (check its spelling against the documentation)")
    core = {k: v for k, v in data.items() if k not in sections and k != "sections"}
    try:
        config = GatewayConfig.model_validate({**core, "devices": devices, "sections": sections})
    except ValidationError as exc:
        problems.extend(_describe(exc.errors(), prefix=()))
        config = None
    if config is not None and not problems:
        problems.extend(_cross_check(config))
        config, missing = resolve_files(config, config_dir)
        if check_files:
            problems.extend(missing)
    if problems:
        raise ConfigError(source, problems)
    assert config is not None
    return config


def _validate_devices(entries: Any, problems: list[str], profiles: list[Path]) -> list[DeviceConfig]:
    if not isinstance(entries, list):
        problems.append("devices: must be an array of tables ([[devices]])")
        return []
    devices: list[DeviceConfig] = []
    for i, entry in enumerate(entries):
        where = ("devices", i)
        if not isinstance(entry, dict):
            problems.append(f"{_path(where)}: must be a table with id, driver, ...")
            continue
        if "profile" in entry:
            try:
                entry = with_profile(entry, profiles)
            except ConfigError as exc:
                problems.extend(f"{_path(where)}.profile: {exc.source}: {p}" for p in exc.problems)
                continue
        driver_name = entry.get("driver")
        if driver_name is None:
            problems.append(f"{_path(where)}.driver: required (one of {_known_drivers()})")
            continue
        spec = SPECS.get(driver_name) if isinstance(driver_name, str) else None
        if spec is None:
            problems.append(
                f"{_path(where)}.driver: unknown driver {driver_name!r} (one of {_known_drivers()})"
            )
            continue
        try:
            devices.append(spec.device_model.model_validate(entry))
        except ValidationError as exc:
            problems.extend(_describe(exc.errors(), prefix=where))
    return devices


def _validate_sections(data: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """Each driver's shared section, by its key: a tuple for ``[[key]]``, a model or None for ``[key]``."""
    sections: dict[str, Any] = {}
    for spec in SPECS.values():
        section = spec.section
        if section is None or section.key in sections:
            continue
        raw = data.get(section.key)
        if not section.many:
            sections[section.key] = _validate_one(section.model, raw, (section.key,), problems)
            continue
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            problems.append(f"{section.key}: must be an array of tables ([[{section.key}]])")
            raw = []
        entries = [_validate_one(section.model, e, (section.key, i), problems) for i, e in enumerate(raw)]
        sections[section.key] = tuple(e for e in entries if e is not None)
        problems.extend(_duplicate_section_ids(section.key, sections[section.key]))
    return sections


def _validate_one(model: type[BaseModel], raw: Any, where: tuple[str | int, ...], problems: list[str]) -> Any:
    if raw is None:
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_describe(exc.errors(), prefix=where))
        return None


def _duplicate_section_ids(key: str, entries: Iterable[Any]) -> Iterable[str]:
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if entry.id in seen:
            yield f"{key}[{i}].id: duplicate id {entry.id!r}"
        seen.add(entry.id)


def _cross_check(config: GatewayConfig) -> Iterable[str]:
    channels: dict[str, set[str]] = {}
    for i, device in enumerate(config.devices):
        if device.id in channels:
            yield f"devices[{i}].id: duplicate device id {device.id!r}"
        seen: set[str] = set()
        for j, channel in enumerate(device.channels):
            if channel.id in seen:
                yield f"devices[{i}].channels[{j}].id: duplicate channel {channel.id!r}"
            seen.add(channel.id)
        channels.setdefault(device.id, seen)
    for spec in SPECS.values():
        yield from spec.check(_devices_of(spec, config), _section_of(spec, config))
    for i, rule in enumerate(config.rules):
        if rule.device not in channels:
            yield f"rules[{i}].device: no device {rule.device!r} (devices: {_names(channels)})"
        elif rule.channel not in channels[rule.device]:
            yield (
                f"rules[{i}].channel: no channel {rule.channel!r} on device {rule.device!r}"
                f" (channels: {_names(channels[rule.device])})"
            )
    yield from _check_detector_channels(config, channels)
    yield from _check_outputs(config, channels)
    for i, correlation in enumerate(config.correlations):
        for j, member in enumerate(correlation.members):
            if member.device is not None and member.device not in channels:
                yield (
                    f"correlations[{i}].members[{j}].device: correlation {correlation.name!r} names"
                    f" no device {member.device!r} (devices: {_names(channels)})"
                )


def _check_outputs(config: GatewayConfig, channels: dict[str, set[str]]) -> Iterable[str]:
    """A rule's ``output`` is a channel its device declares writable (a relay's coil)."""
    devices = {device.id: device for device in config.devices}
    actions = [(f"rules[{i}]", rule.output) for i, rule in enumerate(config.rules)]
    actions += [(f"cross_rules[{i}]", rule.output) for i, rule in enumerate(config.cross_rules)]
    for where, output in actions:
        if output is None:
            continue
        device = devices.get(output.device)
        if device is None:
            yield f"{where}.output.device: no device {output.device!r} (devices: {_names(channels)})"
            continue
        writable = SPECS[device.driver].outputs(device)
        if output.channel not in writable:
            what = "no channel" if output.channel not in channels[device.id] else "not a writable output:"
            yield (
                f"{where}.output.channel: {what} {output.channel!r} on device {device.id!r}"
                f" (outputs: {_names(writable) if writable else 'none; declare a coil with writable = true'})"
            )


def _devices_of(spec: DriverSpec, config: GatewayConfig) -> Indexed:
    return [(i, d) for i, d in enumerate(config.devices) if d.driver == spec.name]


def _section_of(spec: DriverSpec, config: GatewayConfig) -> Any:
    return None if spec.section is None else config.section(spec.section.key)


def _check_detector_channels(config: GatewayConfig, channels: dict[str, set[str]]) -> Iterable[str]:
    """Cross-channel and multivariate rules name a device and channels of it."""
    named: list[tuple[str, str, list[tuple[str, str]]]] = []
    for i, cross in enumerate(config.cross_rules):
        names = [(f"all[{j}].channel", c.channel) for j, c in enumerate(cross.all)]
        names += [(f"all[{j}].than", c.than) for j, c in enumerate(cross.all) if c.than is not None]
        named.append((f"cross_rules[{i}]", cross.device, names))
    for i, detector in enumerate(config.multivariate):
        names = [(f"channels[{j}]", channel) for j, channel in enumerate(detector.channels)]
        named.append((f"multivariate[{i}]", detector.device, names))
    for where, device, names in named:
        if device not in channels:
            yield f"{where}.device: no device {device!r} (devices: {_names(channels)})"
            continue
        for field, channel in names:
            if channel not in channels[device]:
                yield (
                    f"{where}.{field}: no channel {channel!r} on device {device!r}"
                    f" (channels: {_names(channels[device])})"
                )


_MESSAGES = {
    "extra_forbidden": "unknown key (check its spelling against the documentation)",
    "missing": "required",
    "less_than_equal": "must be ≤ {le}",
    "less_than": "must be < {lt}",
    "greater_than_equal": "must be ≥ {ge}",
    "greater_than": "must be > {gt}",
    "string_pattern_mismatch": "must match {pattern}",
    "literal_error": "must be {expected}",
    "enum": "must be {expected}",
    "too_short": "must have at least {min_length} item(s)",
    "string_too_short": "must not be empty",
}


def _describe(errors: list[ErrorDetails], prefix: tuple[str | int, ...]) -> Iterable[str]:
    failed_items = {tuple(e["loc"][:-1]) for e in errors if len(e["loc"]) > 1}
    for error in errors:
        if error["type"] == "too_short" and _inside(tuple(error["loc"]), failed_items):
            continue  # pydantic also counts the items that failed as missing
        template = _MESSAGES.get(error["type"])
        context = {k: _number(v) for k, v in error.get("ctx", {}).items()}
        message = template.format(**context) if template else error["msg"]
        if error["type"] == "value_error":
            message = str(context.get("error", message))
        loc = prefix + tuple(error["loc"])
        yield f"{_path(loc)}: {message}" if loc else message


def _number(value: Any) -> Any:
    """0.0 → 0, so limits read the way they were written."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _inside(loc: tuple[str | int, ...], failed: set[tuple[str | int, ...]]) -> bool:
    return any(f[: len(loc)] == loc and len(f) > len(loc) for f in failed)


def _path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _known_drivers() -> str:
    return ", ".join(sorted(SPECS))


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"
