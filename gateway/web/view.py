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

from drivers.modbus.bus import ModbusBus
from gateway import __version__
from gateway.config.models import GatewayConfig
from gateway.events import AlarmBook
from gateway.events.devices import DeviceEvents
from gateway.outbox import Outbox
from gateway.poll import DevicePoller
from gateway.readings import Quality
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
    pollers: Sequence[DevicePoller]
    alarms: AlarmBook
    device_events: DeviceEvents
    pipeline: Pipeline
    uplink: UplinkClient
    buses: Mapping[str, ModbusBus]
    started: float = field(default_factory=time.time)
    log: RecentLog = field(default_factory=RecentLog)

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
        return [self.device(p) for p in self.pollers]

    def device(self, poller: DevicePoller) -> dict[str, Any]:
        config = next(d for d in self.config.devices if d.id == poller.device)
        units = {ch.id: ch.unit for ch in config.channels}
        batch = self.pipeline.latest.get(poller.device)
        values = []
        if batch is not None:
            for channel, value, quality in zip(
                batch.channels, batch.values.tolist(), batch.quality.tolist(), strict=True
            ):
                values.append(
                    {
                        "channel": channel,
                        "value": None if math.isnan(value) else value,
                        "unit": units.get(channel, ""),
                        "quality": Quality(quality).name.lower(),
                    }
                )
        return {
            "id": poller.device,
            "driver": config.driver,
            "state": poller.state or "unknown",
            "since": iso_utc(poller.since),
            "reason": poller.reason,
            "polls": poller.polls,
            "failures": poller.failures,
            "last_ok": None if poller.last_ok is None else iso_utc(poller.last_ok),
            "read_at": None if batch is None else iso_utc(float(batch.ts.max())),
            "read_age_s": None if batch is None else max(time.time() - float(batch.ts.max()), 0.0),
            "values": values,
        }

    def open_events(self) -> list[dict[str, Any]]:
        events = [*self.alarms.open_alarms, *self.device_events.open_events]
        return sorted(events, key=lambda e: str(e.get("raised_at", "")), reverse=True)

    def poller(self, device: str) -> DevicePoller | None:
        return next((p for p in self.pollers if p.device == device), None)


def versions() -> dict[str, str]:
    found = {"gridgate": __version__, "python": platform.python_version()}
    for package in ("numba", "pymodbus", "aiomqtt", "paho-mqtt"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "?"
    found["platform"] = f"{platform.machine()} {sys.platform}"
    return found
