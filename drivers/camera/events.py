"""Camera alarm pushes, decoded: Hikvision-style XML, Dahua-style text and a generic JSON webhook.

Each push becomes one :class:`CameraEvent` (which channel, on or off, when)
or, for a push that only says the camera is alive (Hikvision's periodic
``videoloss inactive`` is one), a heartbeat. What cannot be decoded raises
:class:`PushRejected` with the reason the camera's sender is answered with.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime
from xml.etree import ElementTree

# The channels a camera device has; each is 1 while its condition is active, 0 otherwise.
CAMERA_CHANNELS = ("motion", "line_crossing", "intrusion", "tamper", "video_loss")

# Event names as cameras send them (lower case) → channel.
_EVENT_CHANNELS = {
    # Hikvision ISAPI eventType
    "vmd": "motion",
    "linedetection": "line_crossing",
    "fielddetection": "intrusion",
    "regionentrance": "intrusion",
    "tamperdetection": "tamper",
    "shelteralarm": "tamper",
    "videoloss": "video_loss",
    # Dahua event codes
    "videomotion": "motion",
    "crosslinedetection": "line_crossing",
    "crossregiondetection": "intrusion",
    "videoblind": "tamper",
    # generic webhook: the channel names themselves
    **{name: name for name in CAMERA_CHANNELS},
}
_ON = {"active": 1.0, "start": 1.0, "pulse": 1.0, "1": 1.0, "true": 1.0, "on": 1.0}
_OFF = {"inactive": 0.0, "stop": 0.0, "0": 0.0, "false": 0.0, "off": 0.0}
_MAX_XML_BYTES = 64_000


class PushRejected(ValueError):
    """A push that cannot be taken; the message is the reason sent back (HTTP 4xx)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class CameraEvent:
    """One push: ``channel`` is None for a push that only shows the camera is alive."""

    channel: str | None
    value: float
    ts: float
    video_channel: str | None = None  # the camera's (or NVR's) own input number


def decode(kind: str, body: bytes, *, now: float | None = None) -> CameraEvent:
    """Decode one push body of ``kind`` (hikvision, dahua, json)."""
    now = time.time() if now is None else now
    if kind == "hikvision":
        return hikvision(body, now)
    if kind == "dahua":
        return dahua(body, now)
    return webhook(body, now)


def hikvision(body: bytes, now: float) -> CameraEvent:
    """An ``EventNotificationAlert`` document (ISAPI), with or without its namespace."""
    if len(body) > _MAX_XML_BYTES:
        raise PushRejected(413, f"event XML of {len(body)} bytes; at most {_MAX_XML_BYTES}")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise PushRejected(400, "event XML must not declare a DOCTYPE or entities")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise PushRejected(400, f"event XML does not parse ({exc})") from None
    if _local(root.tag) != "EventNotificationAlert":
        raise PushRejected(400, f"expected an EventNotificationAlert document, got <{_local(root.tag)}>")
    fields = {_local(child.tag): (child.text or "").strip() for child in root}
    event_type = fields.get("eventType")
    if not event_type:
        raise PushRejected(400, "EventNotificationAlert has no eventType")
    state = fields.get("eventState", "active")
    ts = _iso(fields.get("dateTime"), now)
    video = fields.get("channelID") or fields.get("dynChannelID") or None
    return _event(event_type, state, ts, video)


_DAHUA_RE = re.compile(r"Code=([A-Za-z]+);action=([A-Za-z]+);index=(\d+)")


def dahua(body: bytes, now: float) -> CameraEvent:
    """A Dahua event line: ``Code=VideoMotion;action=Start;index=0`` (the event manager's format)."""
    text = body.decode("utf-8", "replace")
    match = _DAHUA_RE.search(text)
    if match is None:
        raise PushRejected(400, "expected a Dahua event line 'Code=...;action=Start|Stop;index=N'")
    code, action, index = match.groups()
    return _event(code, action, now, index)


def webhook(body: bytes, now: float) -> CameraEvent:
    """``{"event": "motion", "state": "active", "ts": 1764670000.0, "channel": "1"}``; ts optional."""
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PushRejected(400, f"webhook body is not JSON ({exc})") from None
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        raise PushRejected(400, 'webhook JSON must be an object with a string "event"')
    ts = message.get("ts", now)
    if isinstance(ts, str):
        ts = _iso(ts, now)
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not math.isfinite(ts):
        raise PushRejected(400, '"ts" must be Unix seconds or an ISO 8601 time')
    state = message.get("state", "active")
    channel = message.get("channel")
    return _event(message["event"], str(state).lower(), float(ts), None if channel is None else str(channel))


def _event(event_type: str, state: str, ts: float, video: str | None) -> CameraEvent:
    name = event_type.lower()
    channel = _EVENT_CHANNELS.get(name)
    if name in ("heartbeat", "keepalive"):
        return CameraEvent(None, math.nan, ts, video)
    if channel is None:
        raise PushRejected(
            422, f"unknown event type {event_type[:40]!r} (known: {', '.join(sorted(_EVENT_CHANNELS))})"
        )
    state = state.lower()
    if state in _ON:
        value = _ON[state]
    elif state in _OFF:
        value = _OFF[state]
    else:
        raise PushRejected(400, f"unknown event state {state[:20]!r} (active/inactive, Start/Stop)")
    return CameraEvent(channel, value, ts, video)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _iso(text: str | None, now: float) -> float:
    """A camera's ISO time; a time without a zone or an unreadable one is taken as 'now'."""
    if not text:
        return now
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PushRejected(400, f"dateTime {text[:40]!r} is not an ISO 8601 time") from None
    return now if moment.tzinfo is None else moment.timestamp()
