"""Site config for devices that reach the gateway through an IoT platform's MQTT broker.

One ``[[platforms]]`` entry per broker connection, one ``[[devices]]`` entry per device::

```toml
[[platforms]]
id = "lora"
host = "chirpstack.local"
port = 8883
tls = { ca_file = "/etc/gridgate/chirpstack-ca.pem" }
username = "gridgate"
password_file = "credential:chirpstack"
format = "chirpstack_v4"         # topics default to application/+/device/+/event/up

[[devices]]
id = "cover-07"
driver = "platform"
platform = "lora"
match = "a84041000181c772"       # DevEUI (LoRa) or IMEI / platform deviceId (NB-IoT)
heartbeat_s = 3600               # the device reports at least hourly; 2 missed → offline
layout = [
    { name = "status", offset = 0, type = "u8" },
    { name = "tilt", offset = 1, type = "i16", scale = 0.1 },
    { name = "open", offset = 0, type = "u8", bit = 0 },
]
channels = [
    { id = "tilt_deg", field = "tilt", unit = "°" },
    { id = "battery", path = "object.battery_v", unit = "V", optional = true },
    { id = "cover_open", field = "open" },
]
status = { field = "status", values = { "6" = { heartbeat = true }, "9" = { quality = "maintenance" } } }
```
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from contracts.config import NAME_PATTERN, ChannelConfig, PushedDeviceConfig, StrictModel, TlsFiles
from contracts.readings import Quality
from contracts.spec import Indexed

Format = Literal["chirpstack_v4", "nbiot_json", "json"]

# Topics a format's platform publishes on by itself; the others forward to topics a site chooses.
DEFAULT_TOPICS: dict[str, tuple[str, ...]] = {
    "chirpstack_v4": ("application/+/device/+/event/up",),
}

_PATH_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_PATH = re.compile(r"^[^.\[\]]+(\[\d+\])*(\.[^.\[\]]+(\[\d+\])*)*$")


def parse_path(text: str) -> tuple[str | int, ...]:
    """``object.smoke.state`` or ``services[0].data.battery`` as the keys and indexes to follow."""
    if not _PATH.match(text):
        raise ValueError(
            f"{text!r} is not a path: dotted keys with [index], e.g. object.smoke.state or services[0].data"
        )
    return tuple(key if key else int(index) for key, index in _PATH_STEP.findall(text))


class JsonShape(StrictModel):
    """Where a generic JSON message keeps what the bridge needs (paths into the message)."""

    device_id: str = Field(default="deviceId", description="path to the device's id on the platform")
    device_id_topic_level: int | None = Field(
        default=None, ge=0, le=31, description="take the id from this topic level instead (0 = first)"
    )
    time: str | None = Field(default=None, description="path to the message time (epoch s/ms or ISO 8601)")
    message_id: str | None = Field(default=None, description="path to a unique message id or counter")
    raw: str | None = Field(default=None, description="path to the device's raw bytes")
    raw_encoding: Literal["base64", "hex"] = "base64"

    @field_validator("device_id", "time", "message_id", "raw")
    @classmethod
    def _is_path(cls, text: str | None) -> str | None:
        if text is not None:
            parse_path(text)
        return text


class PlatformConnection(StrictModel):
    """One IoT platform broker the gateway subscribes to, apart from its own uplink."""

    id: str = Field(pattern=NAME_PATTERN, description="named by the devices' `platform`")
    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65_535)
    tls: TlsFiles | None = None
    username: str | None = None
    password_file: Path | None = Field(default=None, description="file holding the password")
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="give one to keep a session: the broker then holds QoS 1 messages in an outage",
    )
    keepalive_s: int = Field(default=60, ge=5, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0, le=60)
    reconnect_max_s: float = Field(default=60.0, gt=0, le=3600)
    format: Format
    topics: tuple[str, ...] = Field(default=(), description="subscriptions; the format's own by default")
    qos: Literal[0, 1, 2] = 1
    max_message_bytes: int = Field(default=65_536, ge=256, le=16 * 1024 * 1024)
    json_shape: JsonShape | None = Field(default=None, alias="json", description="for format = json")

    @field_validator("topics")
    @classmethod
    def _topic_filters(cls, topics: tuple[str, ...]) -> tuple[str, ...]:
        for topic in topics:
            levels = topic.split("/")
            if not topic or any(("#" in lv and lv != "#") or ("+" in lv and lv != "+") for lv in levels):
                raise ValueError(f"{topic!r} is not an MQTT topic filter")
            if "#" in levels[:-1]:
                raise ValueError(f"{topic!r}: # may only be the last level")
        return topics

    @model_validator(mode="after")
    def _complete(self) -> PlatformConnection:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must not be below reconnect_min_s")
        if not self.topics and self.format not in DEFAULT_TOPICS:
            raise ValueError(
                f"format {self.format} has no standard topic; give topics = [...] as the platform's"
                " forwarding rule publishes them"
            )
        if self.json_shape is not None and self.format != "json":
            raise ValueError("[platforms.json] is only read with format = json")
        return self

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return self.topics or DEFAULT_TOPICS[self.format]

    @property
    def shape(self) -> JsonShape:
        """Where a ``json`` message keeps its fields (the defaults when not configured)."""
        return self.json_shape or JsonShape()


FieldType = Literal["u8", "i8", "u16", "i16", "u32", "i32", "f32"]
FIELD_SIZE: dict[str, int] = {"u8": 1, "i8": 1, "u16": 2, "i16": 2, "u32": 4, "i32": 4, "f32": 4}


class LayoutField(StrictModel):
    """A value at a fixed place in the device's raw bytes; ``bit``/``bits`` pick a bit field of it."""

    name: str = Field(pattern=NAME_PATTERN)
    offset: int = Field(ge=0, le=4095, description="byte offset from the start of the payload")
    type: FieldType = "u8"
    endian: Literal["big", "little"] = "big"
    bit: int | None = Field(default=None, ge=0, le=31, description="lowest bit of a bit field (0 = LSB)")
    bits: int = Field(default=1, ge=1, le=32, description="width of the bit field")
    scale: float = 1.0

    @model_validator(mode="after")
    def _bits_fit(self) -> LayoutField:
        if self.bit is not None:
            if self.type == "f32":
                raise ValueError("a bit field needs an integer type, not f32")
            width = FIELD_SIZE[self.type] * 8
            if self.bit + self.bits > width:
                raise ValueError(f"bits {self.bit}..{self.bit + self.bits - 1} do not fit in {self.type}")
        elif "bits" in self.model_fields_set:
            raise ValueError("bits needs bit (the lowest bit of the field)")
        return self


class PlatformChannel(ChannelConfig):
    """A channel read from the message (``path``), from the raw bytes (``field``), or set by ``status``."""

    path: str | None = Field(default=None, description="into the message: object.smoke.state")
    field: str | None = Field(default=None, pattern=NAME_PATTERN, description="a name in `layout`")
    scale: float = 1.0
    offset: float = 0.0
    optional: bool = Field(default=False, description="a message without it is fine (else: missing field)")

    @field_validator("path")
    @classmethod
    def _is_path(cls, text: str | None) -> str | None:
        if text is not None:
            parse_path(text)
        return text

    @model_validator(mode="after")
    def _one_source(self) -> PlatformChannel:
        if self.path is not None and self.field is not None:
            raise ValueError("give path (into the message) or field (of the byte layout), not both")
        return self


QualityName = Literal["ok", "device_fault", "over_range", "calibrating", "maintenance", "stopped"]


class StatusEffect(StrictModel):
    """What one status value means: channels it sets, the batch's quality, or just a sign of life."""

    set: dict[str, float] = Field(default_factory=dict, description="channel = value, e.g. smoke_alarm = 1")
    quality: QualityName | None = Field(
        default=None, description="fault → device_fault; self-test → maintenance (raises no alarm)"
    )
    heartbeat: bool = Field(default=False, description="the message only says the device is alive")
    label: str = ""

    @model_validator(mode="after")
    def _heartbeat_alone(self) -> StatusEffect:
        if self.heartbeat and (self.set or self.quality is not None):
            raise ValueError("a heartbeat maps nothing: leave out set and quality")
        return self

    @property
    def batch_quality(self) -> Quality | None:
        return None if self.quality is None else Quality[self.quality.upper()]


class StatusTable(StrictModel):
    """A status code (at ``path`` or a layout ``field``) mapped to effects.

    Channels named in any ``set`` read 0 on a message whose status does not set
    them (the alarm is over); a value not in the table is refused, naming it.
    """

    path: str | None = None
    field: str | None = Field(default=None, pattern=NAME_PATTERN)
    values: dict[str, StatusEffect] = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _is_path(cls, text: str | None) -> str | None:
        if text is not None:
            parse_path(text)
        return text

    @field_validator("values")
    @classmethod
    def _keys(cls, values: dict[str, StatusEffect]) -> dict[str, StatusEffect]:
        keys = [status_key(k) for k in values]
        if len(set(keys)) != len(keys):
            raise ValueError("two status values are the same number (e.g. 1 and 0x01)")
        return values

    @model_validator(mode="after")
    def _one_source(self) -> StatusTable:
        if (self.path is None) == (self.field is None):
            raise ValueError("give path (into the message) or field (of the byte layout) for the status")
        return self

    def effects(self) -> dict[int | str, StatusEffect]:
        """The table keyed as message values compare: integers as numbers, others as text."""
        return {status_key(k): v for k, v in self.values.items()}

    @property
    def channels(self) -> set[str]:
        return {cid for effect in self.values.values() for cid in effect.set}


def status_key(value: object) -> int | str:
    """A status value as the table compares it: 1, 1.0, "1" and "0x01" are all 1."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    try:
        return int(text, 0)
    except ValueError:
        return text


class PlatformDeviceConfig(PushedDeviceConfig):
    """A battery device (NB-IoT smoke detector, LoRa manhole cover) whose messages come via a platform."""

    driver: Literal["platform"]
    platform: str = Field(pattern=NAME_PATTERN, description="the [[platforms]] id it reports through")
    match: str = Field(
        min_length=1, max_length=128, description="its id on the platform: DevEUI, IMEI or deviceId"
    )
    layout: tuple[LayoutField, ...] = ()
    status: StatusTable | None = None
    channels: tuple[PlatformChannel, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> PlatformDeviceConfig:
        fields = {f.name for f in self.layout}
        if len(fields) != len(self.layout):
            raise ValueError("layout: two fields have the same name")
        ids = {ch.id for ch in self.channels}
        set_by_status = self.status.channels if self.status is not None else set()
        for ch in self.channels:
            if ch.field is not None and ch.field not in fields:
                raise ValueError(f"channel {ch.id}: field {ch.field!r} is not in layout")
            if ch.path is None and ch.field is None and ch.id not in set_by_status:
                raise ValueError(f"channel {ch.id}: give path, field, or a status value that sets it")
            if ch.id in set_by_status and (ch.path is not None or ch.field is not None):
                raise ValueError(f"channel {ch.id}: set by status, so it takes no path or field")
        if self.status is not None:
            if self.status.field is not None and self.status.field not in fields:
                raise ValueError(f"status: field {self.status.field!r} is not in layout")
            unknown = sorted(set_by_status - ids)
            if unknown:
                raise ValueError(f"status sets {', '.join(unknown)}, which are not channels of the device")
        return self

    @property
    def match_key(self) -> str:
        """How the platform's id is compared: DevEUIs come in either case."""
        return self.match.strip().lower()


def cross_check(devices: Indexed, platforms: Sequence[PlatformConnection]) -> Iterable[str]:
    """Problems only visible across entries: a device naming no configured platform, one id matched twice."""
    known = {platform.id for platform in platforms}
    matched: dict[tuple[str, str], int] = {}
    for i, device in devices:
        assert isinstance(device, PlatformDeviceConfig)
        if device.platform not in known:
            names = ", ".join(sorted(known)) or "none configured"
            yield (
                f"devices[{i}].platform: no platform {device.platform!r} ({names});"
                " add a [[platforms]] entry with that id"
            )
            continue
        key = (device.platform, device.match_key)
        if key in matched:
            yield (
                f"devices[{i}].match: {device.match!r} on platform {device.platform!r}"
                f" is already matched by devices[{matched[key]}]"
            )
        matched.setdefault(key, i)
