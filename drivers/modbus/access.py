"""How a configured Modbus device's registers are reached, whichever Modbus driver it uses.

Commissioning tools read a device of a site config through a bus of their
own (never the gateway's): this gives them the line, unit id and register map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.config import DeviceConfig
from drivers.modbus.config import BusConfig, ModbusConfig
from drivers.modbus.registers import ModbusChannel
from drivers.modbus.tcp import ModbusTcpConfig


@dataclass(frozen=True, slots=True)
class RegisterAccess:
    bus: BusConfig
    unit: int
    channels: tuple[ModbusChannel, ...]
    timeout_s: float
    retries: int


def register_access(device: DeviceConfig, buses: Sequence[BusConfig]) -> RegisterAccess | None:
    """The line, unit and map of a Modbus device; None for a device of another driver."""
    if isinstance(device, ModbusConfig):
        bus = next(b for b in buses if b.id == device.bus)
        return RegisterAccess(bus, device.unit_id, device.channels, device.timeout_s, device.retries)
    if isinstance(device, ModbusTcpConfig):
        bus = BusConfig(id=device.id, transport="tcp", host=device.host, port=device.port)
        return RegisterAccess(bus, device.unit_id, device.channels, device.timeout_s, 1)
    return None
