"""The config bases every driver's models build on: strict models, names, devices and channels."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
NAME_RE = re.compile(NAME_PATTERN)


class StrictModel(BaseModel):
    """A config model that refuses unknown keys, so typos are never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsFiles(StrictModel):
    """TLS to a broker: its CA, and a client certificate when it asks for one."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TlsFiles:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self


class ChannelConfig(StrictModel):
    """One measured quantity of a device."""

    id: str = Field(pattern=NAME_PATTERN, description="channel name, e.g. pm10, tilt_x")
    unit: str = ""


class DeviceConfig(StrictModel):
    """Settings every device has, whatever its driver."""

    id: str = Field(pattern=NAME_PATTERN, description="device name, unique on this gateway")
    driver: str
    profile: str | None = Field(
        default=None, description="the device model's profile (configs/profiles/<name>.toml) it builds on"
    )
    channels: tuple[ChannelConfig, ...] = Field(min_length=1)


class PolledDeviceConfig(DeviceConfig):
    """A device the gateway asks for its values: how often, how long to wait, when it is down."""

    poll_interval_s: float = Field(default=5.0, gt=0, le=86_400)
    timeout_s: float = Field(default=1.0, gt=0, le=60)
    offline_after: int = Field(
        default=3, ge=1, le=100, description="polls failed in a row before the device is offline"
    )
    retry_max_s: float = Field(
        default=60.0, gt=0, le=3600, description="longest wait between tries of an offline device"
    )


class PushedDeviceConfig(DeviceConfig):
    """A device that sends by itself: how often it must be heard from before it counts as offline."""

    heartbeat_s: float | None = Field(
        default=None,
        gt=0,
        le=7 * 86_400,
        description="the longest the device stays silent when it works (its report or heartbeat "
        "interval); unset: availability is not watched",
    )
    missed_heartbeats: int = Field(
        default=2, ge=1, le=100, description="intervals missed in a row before the device is offline"
    )
