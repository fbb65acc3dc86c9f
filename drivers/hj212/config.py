"""Site config for HJ 212 dataloggers: one ``[hj212]`` listener, one ``[[devices]]`` entry per MN.

```toml
[hj212]
port = 4001                       # dataloggers connect here (TCP)

[[devices]]
id = "dust-02"
driver = "hj212"
mn = "010000A8900016F000169DC0"   # the datalogger's MN; frames from other MNs are refused
pw = "123456"
channels = [
    { id = "pm10", code = "a34002", unit = "µg/m³" },
    { id = "tsp", code = "a34001", unit = "µg/m³", scale = 0.001 },   # device sends ng/m³
]
crc = "modbus"                    # only for firmware known to send CRC-16/MODBUS
```
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from contracts.config import ChannelConfig, PushedDeviceConfig, StrictModel
from contracts.spec import Indexed
from drivers.hj212.codec import CrcMode

# Header values may hold anything but the separators of the data segment.
_TOKEN = r"^[^;,=&\s]{1,32}$"


class Hj212Listener(StrictModel):
    """The TCP port dataloggers connect to, and what one connection may cost."""

    host: str = Field(default="0.0.0.0", min_length=1)
    port: int = Field(ge=1, le=65_535)
    idle_timeout_s: float = Field(
        default=600.0, gt=0, le=86_400, description="close a link with no good frame this long"
    )
    max_connections: int = Field(default=500, ge=1, le=10_000)
    max_per_address: int = Field(
        default=16, ge=1, le=10_000, description="connections one IP address may hold (NAT: raise it)"
    )
    first_frame_timeout_s: float = Field(
        default=60.0, gt=0, le=86_400, description="close a new link that sends no good frame this long"
    )
    max_segment_bytes: int = Field(
        default=1024, ge=64, le=9999, description="longest data segment accepted (standard: 1024)"
    )


class Hj212Channel(ChannelConfig):
    """A pollutant code mapped to a channel; ``unit`` is what the device sends, after ``scale``."""

    code: str = Field(pattern=r"^[A-Za-z0-9_]{1,16}$", description="pollutant code: a34002, LA")
    unit: str = Field(min_length=1, description="never guessed: devices send ng/m³, µg/m³ or mg/m³")
    scale: float = Field(default=1.0, description="published value = sent value × scale")
    code_2005: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_]{1,16}$",
        description="the code a 2005-edition logger sends for it, when not the usual one (01 for a34013)",
    )


class Hj212DeviceConfig(PushedDeviceConfig):
    """A datalogger that pushes HJ 212 frames, over the TCP listener or its own serial port."""

    driver: Literal["hj212"]
    heartbeat_s: float | None = Field(
        default=300.0,
        gt=0,
        le=7 * 86_400,
        description="offline after missed_heartbeats × this without a frame; a logger that sends "
        "only hourly data (2061) needs 3600 or more",
    )
    mn: str = Field(pattern=_TOKEN, description="the datalogger's MN (device unique code)")
    pw: str = Field(pattern=_TOKEN, description="the access password frames must carry")
    time_zone: str = Field(default="Asia/Shanghai", description="zone of DataTime in its frames")
    serial: str | None = Field(default=None, min_length=1, description="serial port: /dev/ttyUSB1")
    baudrate: int = Field(default=9600, ge=300, le=921_600)
    crc: CrcMode = Field(
        default=CrcMode.STANDARD,
        description="standard; modbus also accepts CRC-16/MODBUS; none checks no CRC (counted)",
    )
    clock_skew_max_s: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        description="set the logger's clock (CN 1012) when its QN is off by more; off when not set",
    )
    channels: tuple[Hj212Channel, ...] = Field(min_length=1)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r} (an IANA name: Asia/Shanghai)") from None
        return zone

    @model_validator(mode="after")
    def _one_channel_per_code(self) -> Hj212DeviceConfig:
        seen: dict[str, str] = {}
        for channel in self.channels:
            if channel.code in seen:
                raise ValueError(
                    f"code {channel.code!r} is mapped twice ({seen[channel.code]}, {channel.id})"
                )
            seen[channel.code] = channel.id
        return self


def cross_check(devices: Indexed, listener: Hj212Listener | None) -> Iterable[str]:
    """Problems only visible across entries: shared MNs or serial ports, no way in."""
    mns: dict[str, int] = {}
    ports: dict[str, int] = {}
    for i, device in devices:
        assert isinstance(device, Hj212DeviceConfig)
        if device.mn in mns:
            yield f"devices[{i}].mn: MN {device.mn!r} is already used by devices[{mns[device.mn]}]"
        mns.setdefault(device.mn, i)
        if device.serial is None and listener is None:
            yield (
                f"devices[{i}]: an hj212 device without `serial` connects over TCP;"
                " add an [hj212] section with the listener's port"
            )
        elif device.serial is not None:
            if device.serial in ports:
                first = ports[device.serial]
                yield f"devices[{i}].serial: {device.serial} is already used by devices[{first}]"
            ports.setdefault(device.serial, i)
