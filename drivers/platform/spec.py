"""The platform driver kind: devices behind an IoT platform, one stream per ``[[platforms]]`` broker."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError

from contracts.config import DeviceConfig
from contracts.profiles import ProfileFile
from contracts.spec import DriverSpec, Runners, Section
from drivers.platform.config import PlatformConnection, PlatformDeviceConfig, cross_check
from drivers.platform.stream import PlatformStream

PLATFORMS = Section(
    key="platforms",
    model=PlatformConnection,
    many=True,
    description="IoT platform brokers (ChirpStack, carrier NB-IoT) the gateway subscribes to",
)


def build(devices: Sequence[DeviceConfig], platforms: Sequence[PlatformConnection]) -> Runners:
    """One stream per platform connection, for the devices that name it."""
    ours = [d for d in devices if isinstance(d, PlatformDeviceConfig)]
    return Runners(streams=[PlatformStream(connection, ours) for connection in platforms])


def check_profile(profile: ProfileFile, search: Sequence[Path]) -> Iterable[str]:
    """A profile validates as a device entry of its own (with a stand-in id, platform and match)."""
    entry = {"id": "profile-check", "platform": "p", "match": "0", **profile.defaults}
    try:
        PlatformDeviceConfig.model_validate({**entry, "channels": profile.channels})
    except ValidationError as exc:
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return ()


SPEC = DriverSpec(
    name="platform",
    device_model=PlatformDeviceConfig,
    section=PLATFORMS,
    check=cross_check,
    build=build,
    check_profile=check_profile,
    entry=lambda device: device.platform if isinstance(device, PlatformDeviceConfig) else "",
)
