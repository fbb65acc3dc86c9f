"""The explicit list of drivers the gateway can load, by the name used in configs."""

from __future__ import annotations

from drivers.base import DeviceConfig, PolledDriver
from drivers.modbus.tcp import ModbusTcpDriver

DRIVERS: dict[str, type[PolledDriver]] = {  # type: ignore[type-arg]
    "modbus_tcp": ModbusTcpDriver,
}


def config_models() -> tuple[type[DeviceConfig], ...]:
    """Every driver's config model, for the config loader's tagged union."""
    return tuple(driver.config_model for driver in DRIVERS.values())


def create(config: DeviceConfig) -> PolledDriver:  # type: ignore[type-arg]
    """A driver instance for a validated device config."""
    return DRIVERS[config.driver](config)
