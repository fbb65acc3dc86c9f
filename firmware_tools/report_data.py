"""What a commissioning report holds, gathered from the site config, the wire and the alarm tests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from drivers.modbus.access import register_access
from drivers.modbus.spec import BUSES
from firmware_tools.alarm_test import AlarmTestResult
from firmware_tools.broker_target import BrokerTarget
from firmware_tools.probe import Probe, ProbeTarget, Sample
from firmware_tools.report_broker import broker_samples
from gateway import __version__
from gateway.config import GatewayConfig, load_config
from gateway.timestamps import iso_utc

PHOTO_SLOTS = ("Cabinet, closed", "Cabinet, open: wiring and terminals", "Gateway and RS-485 adapter")


@dataclass
class DeviceEntry:
    id: str
    driver: str
    profile: str
    where: str
    sample: Sample | None = None
    note: str = ""


@dataclass
class Commissioning:
    config_path: str
    config: GatewayConfig
    digest: str
    technician: str
    generated_at: str
    devices: list[DeviceEntry]
    alarm_tests: list[AlarmTestResult]
    photos: list[tuple[str, Path | None]] = field(default_factory=list)
    version: str = __version__


async def gather(
    config_path: str,
    *,
    technician: str,
    alarm_tests: list[AlarmTestResult],
    photos: dict[str, Path] | None = None,
    read_devices: bool = True,
    broker: BrokerTarget | None = None,
    listen_s: float = 30.0,
) -> Commissioning:
    """Load the config and read each Modbus device once: over the wire, or from ``broker``'s telemetry.

    Without ``read_devices`` no device is read.
    """
    config, digest = load_config(config_path)
    from_broker: dict[str, Sample] = {}
    if read_devices and broker is not None:
        modbus = {
            d.id: a.channels
            for d in config.devices
            if (a := register_access(d, config.section(BUSES.key))) is not None
        }
        from_broker = await broker_samples(broker, config.gateway.id, modbus, listen_s)
    devices = []
    for device in config.devices:
        access = register_access(device, config.section(BUSES.key))
        profile = str(getattr(device, "profile", None) or "own register map")
        if access is None:
            devices.append(
                DeviceEntry(device.id, device.driver, profile, "pushes its data", note="not polled")
            )
            continue
        entry = DeviceEntry(device.id, device.driver, profile, f"{access.bus.where()} unit {access.unit}")
        if device.id in from_broker:
            entry.sample = from_broker[device.id]
            entry.note = entry.sample.error or ""
        elif read_devices:
            target = ProbeTarget(
                device.id,
                access.bus,
                access.unit,
                access.channels,
                timeout_s=access.timeout_s,
                retries=access.retries,
            )
            probe = Probe(target)
            try:
                entry.sample = await probe.sample()
            finally:
                probe.close()
            if entry.sample.error:
                entry.note = entry.sample.error
        devices.append(entry)
    slots = list(PHOTO_SLOTS) + [f"Device {d.id}" for d in devices]
    given = dict(photos or {})
    photo_list: list[tuple[str, Path | None]] = [(slot, given.pop(slot, None)) for slot in slots]
    photo_list += list(given.items())
    return Commissioning(
        config_path=config_path,
        config=config,
        digest=digest,
        technician=technician,
        generated_at=iso_utc(time.time()),
        devices=devices,
        alarm_tests=alarm_tests,
        photos=photo_list,
    )


def gateway_rows(report: Commissioning) -> list[tuple[str, str]]:
    """The report's facts about the gateway, as label and value, the same in HTML and PDF."""
    gw, up = report.config.gateway, report.config.uplink
    where = "—"
    if gw.location is not None:
        where = f"{gw.location.lat:.5f}, {gw.location.lon:.5f} {gw.location.address}"
    return [
        ("Gateway id", gw.id),
        ("Site", gw.site),
        ("Grid cell", gw.grid_cell),
        ("Location", where),
        ("Software", f"gridgate {report.version}"),
        ("Config", f"{report.config_path} (digest {report.digest})"),
        ("Uplink", f"{up.where}, {'TLS' if up.tls else 'no TLS'}, prefix {up.topic_prefix}"),
        ("Report made", report.generated_at),
    ]


def reading_rows(entry: DeviceEntry) -> list[tuple[str, str, str]]:
    """(channel, value with unit, check) for each channel of a device's reading."""
    if entry.sample is None or entry.sample.error:
        return []
    rows = []
    for check in entry.sample.checks:
        value = "—" if check.value is None else f"{check.value:.7g} {check.unit}".strip()
        verdict = {"ok": "ok", "no_range": "", "missing": "missing", "out_of_range": "OUT OF RANGE"}[
            check.check
        ]
        rows.append((check.channel, value, "; ".join(v for v in (verdict, *check.notes) if v)))
    return rows


def counters_text(entry: DeviceEntry) -> str:
    if entry.sample is None:
        return ""
    c = entry.sample.counters
    faults = ", ".join(f"{k} {v:g}" for k, v in c.items() if k not in ("requests", "ok", "busy_s") and v)
    return f"requests {c.get('requests', 0):g}, ok {c.get('ok', 0):g}" + (f", {faults}" if faults else "")
