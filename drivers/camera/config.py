"""Site config for IP cameras that push alarms: one ``[cameras]`` receiver, a ``[[devices]]`` entry each.

```toml
[cameras]
port = 8090                     # cameras push to http://<gateway>:8090/cameras/<device id>

[[devices]]
id = "cam-01"
driver = "camera"
format = "hikvision"            # hikvision (EventNotificationAlert XML), dahua, json
push_auth = { auth = "digest", username = "cam01", password_file = "/etc/gridgate/cam01.push" }
[devices.snapshot]               # fetched as evidence when a sensor alarm opens in its grid cell
url = "http://192.168.1.64/ISAPI/Streaming/channels/101/picture"
username = "gridgate"
password_file = "/etc/gridgate/cam01.pw"
```
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import Field, model_validator

from contracts.config import NAME_PATTERN, ChannelConfig, PushedDeviceConfig, StrictModel
from contracts.evidence import Credentials, SnapshotSource
from contracts.spec import Indexed
from drivers.camera.events import CAMERA_CHANNELS


class CameraReceiver(StrictModel):
    """The HTTP port cameras push their alarms to, and what one source may cost."""

    host: str = Field(default="0.0.0.0", min_length=1)
    port: int = Field(ge=1, le=65_535)
    max_body_bytes: int = Field(
        default=4_000_000, ge=4096, le=50_000_000, description="a larger push (XML and picture) gets 413"
    )
    rate_per_s: float = Field(
        default=10.0, gt=0, le=10_000, description="pushes per second one IP address may send"
    )
    burst: int = Field(
        default=20, ge=1, le=10_000, description="pushes one address may send at once above the rate"
    )


class CameraDeviceConfig(PushedDeviceConfig):
    """An IP camera: its push format and credentials, where its snapshot is, and its grid cell."""

    driver: Literal["camera"]
    format: Literal["hikvision", "dahua", "json"] = "hikvision"
    heartbeat_s: float | None = Field(
        default=300.0,
        gt=0,
        le=7 * 86_400,
        description="offline after missed_heartbeats × this without a push (Hikvision heartbeats count)",
    )
    push_auth: Credentials | None = Field(
        default=None, description="what the camera's pushes must carry; unset: none"
    )
    snapshot: SnapshotSource | None = Field(
        default=None, description="where a still picture is fetched on a sensor alarm"
    )
    grid_cell: str | None = Field(
        default=None, pattern=r"^[0-9A-Za-z-]{1,32}$", description="the cell it watches; unset: the gateway's"
    )
    release_after_s: float = Field(
        default=10.0, gt=0, le=3600, description="a channel falls back to 0 this long after its last 'active'"
    )
    nvr: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="the camera device (an NVR) that pushes for this camera; set nvr_channel too",
    )
    nvr_channel: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,4}$",
        description="its input on the NVR as the NVR sends it: Hikvision channelID, Dahua index",
    )
    channels: tuple[ChannelConfig, ...] = Field(
        default=tuple(ChannelConfig(id=name) for name in CAMERA_CHANNELS), min_length=1
    )

    @model_validator(mode="after")
    def _nvr_and_channel(self) -> CameraDeviceConfig:
        if (self.nvr is None) != (self.nvr_channel is None):
            raise ValueError("nvr and nvr_channel: give both (the NVR's device id and this camera's input)")
        return self

    @model_validator(mode="after")
    def _known_channels(self) -> CameraDeviceConfig:
        unknown = [c.id for c in self.channels if c.id not in CAMERA_CHANNELS]
        if unknown:
            raise ValueError(
                f"unknown camera channel(s) {', '.join(unknown)} (one of {', '.join(CAMERA_CHANNELS)})"
            )
        return self


def cross_check(devices: Indexed, receiver: CameraReceiver | None) -> Iterable[str]:
    """A camera that pushes needs the receiver; one behind an NVR names a camera device, once per input."""
    if devices and receiver is None:
        i = devices[0][0]
        yield (
            f"devices[{i}]: a camera pushes its alarms over HTTP;"
            " add a [cameras] section with the receiver's port"
        )
    cameras = {d.id for _, d in devices}
    inputs: dict[tuple[str, str], str] = {}
    for i, device in devices:
        assert isinstance(device, CameraDeviceConfig)
        if device.nvr is None or device.nvr_channel is None:
            continue
        if device.nvr not in cameras or device.nvr == device.id:
            known = ", ".join(sorted(cameras))
            yield f"devices[{i}].nvr: no other camera device {device.nvr!r} (cameras: {known})"
        elif (device.nvr, device.nvr_channel) in inputs:
            yield (
                f"devices[{i}].nvr_channel: input {device.nvr_channel} of {device.nvr!r} is already"
                f" camera {inputs[(device.nvr, device.nvr_channel)]!r}"
            )
        inputs.setdefault((device.nvr, device.nvr_channel), device.id)
