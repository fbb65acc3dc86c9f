"""The Modbus driver kinds: devices on a shared ``[[buses]]`` line, and direct Modbus TCP devices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from contracts.config import DeviceConfig
from contracts.errors import ConfigError
from contracts.profiles import ProfileFile
from contracts.spec import DriverSpec, Indexed, Runners, Section
from drivers.modbus.bus import ModbusBus
from drivers.modbus.config import BusConfig, ModbusConfig
from drivers.modbus.device import ModbusBusDriver
from drivers.modbus.outputs import writable_channels
from drivers.modbus.profiles import load_profile
from drivers.modbus.tcp import ModbusTcpConfig, ModbusTcpDriver

BUSES = Section(
    key="buses",
    model=BusConfig,
    many=True,
    description="shared Modbus lines (RS-485, RTU through a device server, a Modbus TCP gateway)",
)


def check_buses(devices: Indexed, buses: Sequence[BusConfig]) -> Iterable[str]:
    """No two buses on one wire, a device names a configured bus, and no two share its unit id."""
    units: dict[str, dict[int, str]] = {bus.id: {} for bus in buses}
    endpoints: dict[str, str] = {}
    for i, bus in enumerate(buses):
        if bus.where() in endpoints and endpoints[bus.where()] != bus.id:
            yield f"buses[{i}]: {bus.where()} is already bus {endpoints[bus.where()]!r}"
        endpoints.setdefault(bus.where(), bus.id)
    for i, device in devices:
        assert isinstance(device, ModbusConfig)
        on_bus = units.get(device.bus)
        if on_bus is None:
            yield f"devices[{i}].bus: no bus {device.bus!r} (buses: {', '.join(sorted(units)) or 'none'})"
        elif device.unit_id in on_bus:
            yield (
                f"devices[{i}].unit_id: unit {device.unit_id} is already device"
                f" {on_bus[device.unit_id]!r} on bus {device.bus!r}"
            )
        else:
            on_bus[device.unit_id] = device.id


def build_bus_devices(devices: Sequence[DeviceConfig], buses: Sequence[BusConfig]) -> Runners:
    """One bus object per line, shared by the devices on it; each bus is closed at the end."""
    lines = {bus.id: ModbusBus(bus) for bus in buses}
    drivers = []
    for device in devices:
        assert isinstance(device, ModbusConfig)
        drivers.append(ModbusBusDriver(device, lines[device.bus]))

    def close() -> None:
        for line in lines.values():
            line.close()

    return Runners(polled=list(drivers), buses=lines, close=close)


def build_tcp_devices(devices: Sequence[DeviceConfig], section: Any) -> Runners:
    drivers = []
    for device in devices:
        assert isinstance(device, ModbusTcpConfig)
        drivers.append(ModbusTcpDriver(device))
    return Runners(polled=list(drivers))


def check_profile(profile: ProfileFile, search: Sequence[Path]) -> Iterable[str]:
    try:
        load_profile(profile.name, search)
    except ConfigError as exc:
        return exc.problems
    return ()


def device_outputs(device: DeviceConfig) -> frozenset[str]:
    assert isinstance(device, ModbusConfig | ModbusTcpConfig)
    return writable_channels(device.channels)


BUS_SPEC = DriverSpec(
    name="modbus",
    device_model=ModbusConfig,
    section=BUSES,
    check=check_buses,
    build=build_bus_devices,
    check_profile=check_profile,
    entry=lambda device: device.bus if isinstance(device, ModbusConfig) else "",
    outputs=device_outputs,
)
TCP_SPEC = DriverSpec(
    name="modbus_tcp",
    device_model=ModbusTcpConfig,
    build=build_tcp_devices,
    check_profile=check_profile,
    outputs=device_outputs,
)
