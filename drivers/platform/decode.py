"""From one platform message to one batch of readings, as a device's config says.

Each device's config is compiled once (:class:`DeviceDecoder`): paths parsed,
the byte layout turned into struct readers, the status table keyed. A message
then yields a :class:`ReadingBatch` stamped with the message time, ``None``
for a message that only says the device is alive (a heartbeat, or nothing
mapped in it), or a :class:`DecodeError` naming what was wrong and where.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from contracts.readings import Quality, ReadingBatch
from drivers.platform.config import PlatformDeviceConfig, StatusEffect, parse_path, status_key
from drivers.platform.errors import DecodeError, Reason
from drivers.platform.formats import Envelope, follow, present
from drivers.platform.layout import ByteLayout

_PATH, _FIELD, _STATUS = 0, 1, 2


def number(value: Any, where: str) -> float:
    """A JSON value as a reading: numbers, true/false, and numbers sent as text ("060", "+27.90")."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    kind = type(value).__name__ if not isinstance(value, str) else f"text {value[:32]!r}"
    raise DecodeError(Reason.WRONG_TYPE, f"{where}: {kind} is not a number")


class DeviceDecoder:
    """Turns the messages of one configured device into batches."""

    def __init__(self, config: PlatformDeviceConfig) -> None:
        self.device = config.id
        self._layout = ByteLayout(config.layout) if config.layout else None
        status_set = config.status.channels if config.status is not None else set()
        self._channels: tuple[tuple[str, int, Any, float, float, bool, str], ...] = tuple(
            (
                ch.id,
                _STATUS if ch.id in status_set else _PATH if ch.path is not None else _FIELD,
                parse_path(ch.path) if ch.path is not None else ch.field,
                ch.scale,
                ch.offset,
                ch.optional,
                ch.path or ch.field or "status",
            )
            for ch in config.channels
        )
        self._all_ids = tuple(ch.id for ch in config.channels)
        status = config.status
        self._status_path = parse_path(status.path) if status is not None and status.path else None
        self._status_field = status.field if status is not None else None
        self._effects: dict[int | str, StatusEffect] = status.effects() if status is not None else {}
        self._has_status = status is not None
        self._status_where = (status.path or f"field {status.field}") if status is not None else ""

    def decode(self, envelope: Envelope, ts: float, *, late: bool = False) -> ReadingBatch | None:
        """The message's readings at ``ts``; None when it maps nothing (a heartbeat)."""
        fields = None
        if self._layout is not None and envelope.raw is not None:
            fields = self._layout.read(envelope.raw)
        effect = self._status(envelope, fields) if self._has_status else None
        if effect is not None and effect.heartbeat:
            return None
        document = envelope.document
        ids: list[str] = []
        values: list[float] = []
        for cid, kind, source, scale, offset, optional, where in self._channels:
            if kind == _STATUS:
                assert effect is not None
                ids.append(cid)
                values.append(effect.set.get(cid, 0.0))
                continue
            if kind == _PATH:
                value = follow(document, source)
                if not present(value):
                    if optional:
                        continue
                    raise DecodeError(Reason.MISSING_FIELD, f"{where}: not in the message (channel {cid})")
                reading = number(value, where)
            else:
                if fields is None:
                    if optional:
                        continue
                    detail = f"no raw payload in the message for field {where} (channel {cid})"
                    raise DecodeError(Reason.MISSING_FIELD, detail)
                reading = fields[source]
            ids.append(cid)
            values.append(reading * scale + offset)
        if not ids:
            return None
        n = len(ids)
        quality = effect.batch_quality if effect is not None else None
        return ReadingBatch(
            device=self.device,
            channels=tuple(ids) if n != len(self._all_ids) else self._all_ids,
            values=np.array(values, dtype=np.float64),
            ts=np.full(n, ts, dtype=np.float64),
            quality=np.full(n, Quality.OK if quality is None else quality, dtype=np.uint8),
            late=late,
        )

    def _status(self, envelope: Envelope, fields: dict[str, float] | None) -> StatusEffect:
        if self._status_path is not None:
            value = follow(envelope.document, self._status_path)
            if not present(value):
                raise DecodeError(Reason.MISSING_FIELD, f"{self._status_where}: no status in the message")
            if isinstance(value, (dict, list)):
                detail = f"{self._status_where}: a status must be a number or text"
                raise DecodeError(Reason.WRONG_TYPE, detail)
        else:
            if fields is None:
                detail = f"no raw payload in the message for {self._status_where}"
                raise DecodeError(Reason.MISSING_FIELD, detail)
            value = fields[self._status_field]  # type: ignore[index]
        effect = self._effects.get(status_key(value))
        if effect is None:
            known = ", ".join(str(k) for k in self._effects)
            raise DecodeError(
                Reason.UNKNOWN_STATUS, f"{self._status_where}: status {value!r} is not in the table ({known})"
            )
        return effect
