"""The explicit list of drivers the gateway can load, by the name used in configs."""

from __future__ import annotations

from drivers.base import DeviceConfig, PolledDriver
from drivers.hj212.stream import Hj212Stream
from drivers.modbus.bus import ModbusBus
from drivers.modbus.config import ModbusConfig
from drivers.modbus.device import ModbusBusDriver
from drivers.modbus.tcp import ModbusTcpDriver
from drivers.stream import StreamDriver

DRIVERS: dict[str, type[PolledDriver] | type[StreamDriver]] = {  # type: ignore[type-arg]
    "modbus_tcp": ModbusTcpDriver,
    # A device on a shared ``[[buses]]`` entry (RS-485 RTU, RTU over TCP, Modbus TCP gateway).
    "modbus": ModbusBusDriver,
    # Pushed, not polled: gateway.service.streams builds one stream for all its devices.
    "hj212": Hj212Stream,
}


def config_models() -> tuple[type[DeviceConfig], ...]:
    """Every driver's config model, for the config loader's tagged union."""
    return tuple(driver.config_model for driver in DRIVERS.values())


def is_polled(config: DeviceConfig) -> bool:
    """Whether the device is read by a poller (else a stream receives what it pushes)."""
    return issubclass(DRIVERS[config.driver], PolledDriver)


def create(config: DeviceConfig, buses: dict[str, ModbusBus]) -> PolledDriver:  # type: ignore[type-arg]
    """A driver instance for a validated device config of a polled driver.

    A device on a bus shares the bus object with the other devices on it.
    """
    if isinstance(config, ModbusConfig):
        return ModbusBusDriver(config, buses[config.bus])
    driver = DRIVERS[config.driver]
    assert issubclass(driver, PolledDriver), f"{config.driver} is not polled"
    return driver(config)
