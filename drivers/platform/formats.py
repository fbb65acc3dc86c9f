"""What each platform's MQTT message says, in one shape: an :class:`Envelope`.

``chirpstack_v4``
    A ChirpStack v4 application integration ``up`` event (Protobuf JSON
    mapping of ``integration.UplinkEvent``) on
    ``application/{applicationId}/device/{devEui}/event/up``: the device is
    ``deviceInfo.devEui``, the time ``time`` (RFC 3339, nanoseconds), the frame
    counter ``fCnt``, the message id ``deduplicationId``, the raw payload
    ``data`` (base64) and the codec's output under ``object``.
``nbiot_json``
    What carrier NB-IoT platforms push, forwarded onto MQTT: China Telecom
    AEP / CTWing ``dataReport`` (``IMEI``, ``deviceId``, epoch ms
    ``timestamp``, ``payload`` with properties or transparent ``APPdata``
    base64), Huawei OceanConnect ``deviceDataChanged`` / ``deviceDatasChanged``
    (``deviceId``, ``service(s)`` with ``serviceId``, ``data`` and
    ``eventTime`` like ``20180806T093436Z``), and Huawei IoTDA property reports
    (``notify_data.header.node_id`` / ``device_id``, ``event_time``).
``json``
    Any JSON object; where its id, time, message id and raw bytes are is
    configured (:class:`~drivers.platform.config.JsonShape`).

Channel paths point into the whole message (``object.smoke``,
``service.data.battery``, ``payload.serviceData.Battery_Level``), as the
platform's console shows it.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.platform.config import JsonShape, PlatformConnection, parse_path
from drivers.platform.errors import DecodeError, Reason

Path = tuple[str | int, ...]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Envelope:
    """One platform message: who sent it, when, under which id, and what it carried."""

    ids: tuple[str, ...]  # the device's ids on the platform, lower case, tried in order
    time: float | None  # when the platform says the device sent it (Unix s); None: not given
    counter: int | None  # frame counter (LoRaWAN fCnt)
    message_id: str | None  # unique per message on the platform (deduplicationId, requestId)
    document: dict[str, Any]  # the whole message, for channel paths
    raw: bytes | None  # the device's own bytes, for a byte layout

    @property
    def device_id(self) -> str:
        return self.ids[0] if self.ids else "?"


def follow(document: Any, path: Path) -> Any:
    """The value at ``path`` in ``document``, or ``_MISSING``."""
    here = document
    for step in path:
        if isinstance(step, int):
            if not isinstance(here, list) or step >= len(here):
                return _MISSING
        elif not isinstance(here, dict) or step not in here:
            return _MISSING
        here = here[step]
    return here


def present(value: Any) -> bool:
    return value is not _MISSING and value is not None


_ISO = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$", re.IGNORECASE
)
_COMPACT = re.compile(r"^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$", re.IGNORECASE)


def parse_time(value: Any, where: str) -> float:
    """Unix seconds from epoch s or ms, RFC 3339 (any fraction), or ``20261202T101010Z`` (UTC)."""
    if isinstance(value, bool):
        raise DecodeError(Reason.WRONG_TYPE, f"{where}: {value!r} is not a time")
    if isinstance(value, (int, float)):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_time(int(text), where)
        if m := _COMPACT.match(text):
            return float(calendar.timegm((*(int(g) for g in m.groups()), 0, 0, 0)))
        if m := _ISO.match(text):
            fields = tuple(int(g) for g in m.groups()[:6])
            seconds = float(calendar.timegm((*fields, 0, 0, 0)))
            if m.group(7):
                seconds += float("0." + m.group(7)[:9])
            zone = m.group(8)
            if zone is None:
                raise DecodeError(Reason.WRONG_TYPE, f"{where}: {value!r} has no time zone")
            if zone.upper() != "Z":
                sign = 1 if zone[0] == "+" else -1
                digits = zone[1:].replace(":", "")
                seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
            return seconds
    raise DecodeError(Reason.WRONG_TYPE, f"{where}: {value!r} is not a time")


def _bytes(value: Any, where: str, encoding: str = "base64") -> bytes:
    if not isinstance(value, str):
        raise DecodeError(Reason.WRONG_TYPE, f"{where}: raw payload must be a {encoding} string")
    try:
        if encoding == "hex":
            return bytes.fromhex(value)
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError(Reason.UNDECODABLE, f"{where}: not {encoding}") from None


def load_document(payload: bytes) -> dict[str, Any]:
    """The message as a JSON object, or DecodeError(undecodable)."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(Reason.UNDECODABLE, f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DecodeError(Reason.UNDECODABLE, f"not a JSON object but a {type(document).__name__}")
    return document


def _text_id(value: Any) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip().lower()
        if text and text not in ("undefined", "null", "-1"):
            return text
    return None


def chirpstack_v4(topic: str, payload: bytes) -> Envelope:
    document = load_document(payload)
    eui = follow(document, ("deviceInfo", "devEui"))
    ids = tuple(dict.fromkeys(i for i in (_text_id(eui), chirpstack_topic_id(topic)) if i is not None))
    if not ids:
        raise DecodeError(Reason.MISSING_FIELD, "deviceInfo.devEui: no device EUI in the event")
    time = parse_time(document["time"], "time") if present(document.get("time")) else None
    counter = document.get("fCnt")
    if counter is not None and (not isinstance(counter, int) or isinstance(counter, bool)):
        raise DecodeError(Reason.WRONG_TYPE, f"fCnt: {counter!r} is not a frame counter")
    data = document.get("data")
    raw = _bytes(data, "data") if data else None
    dedup = document.get("deduplicationId")
    return Envelope(ids, time, counter, str(dedup) if dedup else None, document, raw)


def chirpstack_topic_id(topic: str) -> str | None:
    """The DevEUI in ``application/{app}/device/{devEui}/event/{type}``."""
    levels = topic.split("/")
    for i in range(2, len(levels) - 1):  # a site may put the tree under a prefix of its own
        if levels[i] == "device" and levels[i - 2] == "application":
            return _text_id(levels[i + 1])
    return None


_NBIOT_IDS: tuple[Path, ...] = (
    ("IMEI",),
    ("imei",),
    ("deviceId",),
    ("notify_data", "header", "node_id"),
    ("notify_data", "header", "device_id"),
    ("device_id",),
)
_NBIOT_TIMES: tuple[Path, ...] = (
    ("service", "eventTime"),
    ("services", 0, "eventTime"),
    ("notify_data", "body", "services", 0, "event_time"),
    ("eventTime",),
    ("event_time",),
    ("timestamp",),
)
_NBIOT_MESSAGE_IDS: tuple[Path, ...] = (("requestId",), ("messageId",), ("upPacketSN",))
_NBIOT_RAW: tuple[Path, ...] = (("payload", "APPdata"), ("service", "data", "rawData"), ("rawData",))


def _first(document: dict[str, Any], paths: tuple[Path, ...]) -> tuple[Path, Any] | None:
    for path in paths:
        value = follow(document, path)
        if present(value):
            return path, value
    return None


def _dotted(path: Path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def nbiot_json(topic: str, payload: bytes) -> Envelope:
    document = load_document(payload)
    ids = tuple(
        dict.fromkeys(i for path in _NBIOT_IDS if (i := _text_id(follow(document, path))) is not None)
    )
    if not ids:
        raise DecodeError(Reason.MISSING_FIELD, "no device id (IMEI, deviceId or notify_data.header)")
    found = _first(document, _NBIOT_TIMES)
    time = parse_time(found[1], _dotted(found[0])) if found else None
    found = _first(document, _NBIOT_MESSAGE_IDS)
    message_id = _text_id(found[1]) if found else None
    found = _first(document, _NBIOT_RAW)
    raw = _bytes(found[1], _dotted(found[0])) if found else None
    return Envelope(ids, time, None, message_id, document, raw)


def generic_json(shape: JsonShape) -> Callable[[str, bytes], Envelope]:
    """A reader for messages whose fields are where ``shape`` says."""
    id_path = parse_path(shape.device_id)
    time_path = parse_path(shape.time) if shape.time else None
    message_path = parse_path(shape.message_id) if shape.message_id else None
    raw_path = parse_path(shape.raw) if shape.raw else None

    def read(topic: str, payload: bytes) -> Envelope:
        document = load_document(payload)
        if shape.device_id_topic_level is not None:
            levels = topic.split("/")
            level = shape.device_id_topic_level
            device = _text_id(levels[level]) if level < len(levels) else None
            where = f"topic level {level} of {topic}"
        else:
            device = _text_id(follow(document, id_path))
            where = shape.device_id
        if device is None:
            raise DecodeError(Reason.MISSING_FIELD, f"{where}: no device id")
        time = None
        if time_path is not None and present(value := follow(document, time_path)):
            time = parse_time(value, str(shape.time))
        message_id = None
        if message_path is not None and present(value := follow(document, message_path)):
            message_id = str(value)
        raw = None
        if raw_path is not None and present(value := follow(document, raw_path)):
            raw = _bytes(value, str(shape.raw), shape.raw_encoding)
        return Envelope((device,), time, None, message_id, document, raw)

    return read


def reader(connection: PlatformConnection) -> Callable[[str, bytes], Envelope]:
    """The function that reads ``connection``'s messages."""
    if connection.format == "chirpstack_v4":
        return chirpstack_v4
    if connection.format == "nbiot_json":
        return nbiot_json
    return generic_json(connection.shape)


def topic_device(connection: PlatformConnection, topic: str) -> str | None:
    """The device a topic names, when the format puts it there (to count what cannot be read)."""
    if connection.format == "chirpstack_v4":
        return chirpstack_topic_id(topic)
    level = connection.shape.device_id_topic_level if connection.format == "json" else None
    if level is not None:
        levels = topic.split("/")
        return _text_id(levels[level]) if level < len(levels) else None
    return None
