"""What the status page and the metrics show: the daemon's parts, read when asked, not copied."""

from __future__ import annotations

import collections
import logging
import math
import platform
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from contracts.config import DeviceConfig
from contracts.readings import Quality
from gateway import __version__
from gateway.config.models import GatewayConfig
from gateway.events import AlarmBook
from gateway.events.devices import DeviceEvents
from gateway.outbox import Outbox
from gateway.poll.availability import Availability
from gateway.service.pipeline import Pipeline
from gateway.timestamps import iso_utc
from gateway.uplink import UplinkClient

LOG_LINES = 200


class RecentLog(logging.Handler):
    """The last ``LOG_LINES`` log lines, for the page's log view."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: collections.deque[dict[str, str]] = collections.deque(maxlen=LOG_LINES)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(
            {"ts": iso_utc(record.created), "level": record.levelname, "message": self.format(record)}
        )


@dataclass
class GatewayView:
    """References to the running daemon's parts; every method reads them as they are now."""

    config: GatewayConfig
    outbox: Outbox
    watches: Sequence[Availability]  # every device's availability, polled or pushed
    alarms: AlarmBook
    device_events: DeviceEvents
    pipeline: Pipeline
    uplink: UplinkClient
    buses: Mapping[str, Any]  # the wires devices share, with their counters
    started: float = field(default_factory=time.time)
    log: RecentLog = field(default_factory=RecentLog)
    _by_device: dict[str, Availability] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.reconfigure(self.config)

    def reconfigure(self, config: GatewayConfig) -> None:
        """Show ``config`` from now on (a piecewise apply changed its devices; ``watches`` is updated)."""
        self.config = config
        # Looked up once per device on every page and live update: by id, not by scanning the list.
        self._by_device = {w.device: w for w in self.watches}

    def gateway(self) -> dict[str, Any]:
        cfg = self.config
        disk = shutil.disk_usage(cfg.storage.directory)
        return {
            "id": cfg.gateway.id,
            "site": cfg.gateway.site,
            "grid_cell": cfg.gateway.grid_cell,
            "uplink": {
                "broker": self.uplink.broker,
                "connected": self.uplink.connected.is_set(),
                "protocol": self.uplink.protocol,
                "tls": cfg.uplink.tls is not None,
            },
            "outbox": {
                "pending": self.outbox.pending(),
                "bytes": self.outbox.bytes_used,
                "max_bytes": self.outbox.max_bytes,
            },
            "disk": {"free_bytes": disk.free, "total_bytes": disk.total},
            "uptime_s": round(time.time() - self.started),
            "versions": versions(),
        }

    def devices(self) -> list[dict[str, Any]]:
        """Every configured device, polled or pushed, in the config's order."""
        return [self._device(config) for config in self.config.devices]

    def device(self, device_id: str) -> dict[str, Any] | None:
        config = next((d for d in self.config.devices if d.id == device_id), None)
        return None if config is None else self._device(config)

    def _device(self, config: DeviceConfig) -> dict[str, Any]:
        units = {ch.id: ch.unit for ch in config.channels}
        order = {ch.id: n for n, ch in enumerate(config.channels)}
        batches = list(self.pipeline.latest.get(config.id, {}).values())  # the newest last
        newest: dict[str, tuple[float, int]] = {}
        for batch in batches:
            pairs = zip(batch.values.tolist(), batch.quality.tolist(), strict=True)
            newest.update(zip(batch.channels, pairs, strict=True))
        values = [
            {
                "channel": channel,
                "value": None if math.isnan(value) else value,
                "unit": _unit(units, channel),
                "quality": Quality(quality).name.lower(),
            }
            for channel, (value, quality) in sorted(
                newest.items(), key=lambda item: (order.get(_base(item[0]), len(order)), item[0])
            )
        ]
        read_at = max((float(b.ts.max()) for b in batches), default=None)
        watch = self.availability(config.id)
        return {
            "id": config.id,
            "driver": config.driver,
            "pushed": watch is not None and watch.mode == "pushed",
            **(_availability(watch) if watch is not None else _UNKNOWN),
            "read_at": None if read_at is None else iso_utc(read_at),
            "read_age_s": None if read_at is None else max(time.time() - read_at, 0.0),
            "values": values,
        }

    def open_events(self) -> list[dict[str, Any]]:
        events = [*self.alarms.open_alarms, *self.device_events.open_events]
        return sorted(events, key=lambda e: str(e.get("raised_at", "")), reverse=True)

    def availability(self, device: str) -> Availability | None:
        return self._by_device.get(device)


# A device nothing watches (none today: every driver's devices have availability).
_UNKNOWN: dict[str, Any] = {
    "state": "unknown",
    "since": None,
    "reason": "",
    "polls": None,
    "failures": None,
    "last_ok": None,
}


def _availability(watch: Availability) -> dict[str, Any]:
    return {
        "state": watch.state or "unknown",
        "since": iso_utc(watch.since),
        "reason": watch.reason,
        "polls": watch.polls,
        "failures": watch.failures,
        "last_ok": None if watch.last_ok is None else iso_utc(watch.last_ok),
    }


def _base(channel: str) -> str:
    """The configured channel a statistic belongs to: ``pm10.minute_avg`` → ``pm10`` (docs/mqtt-api.md)."""
    return channel.partition(".")[0]


def _unit(units: Mapping[str, str], channel: str) -> str:
    """A channel's unit; a mean, minimum or maximum has its channel's, a cumulative amount none known."""
    if channel in units:
        return units[channel]
    return units.get(_base(channel), "") if channel.endswith(("_avg", "_min", "_max")) else ""


def versions() -> dict[str, str]:
    found = {"gridgate": __version__, "python": platform.python_version()}
    for package in ("numba", "pymodbus", "aiomqtt", "paho-mqtt"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "?"
    found["platform"] = f"{platform.machine()} {sys.platform}"
    return found
