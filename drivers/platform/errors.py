"""Why a platform message gave no readings: one reason per kind of bad input, counted per device."""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    """What was wrong with a message; the value names its counter."""

    UNDECODABLE = "undecodable"  # not JSON, not an object, bad base64 / hex
    MISSING_FIELD = "missing_field"  # a required path, field or device id is absent
    WRONG_TYPE = "wrong_type"  # a value is there but is no number (or no time)
    OVERSIZED = "oversized"  # longer than the connection's max_message_bytes
    UNKNOWN_DEVICE = "unknown_device"  # no [[devices]] entry matches its id
    UNKNOWN_STATUS = "unknown_status"  # a status value the device's table does not list


class DecodeError(Exception):
    """A message that cannot become readings; ``reason`` is counted, ``detail`` says where."""

    def __init__(self, reason: Reason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}")
