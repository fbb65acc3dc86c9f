"""The GPIO driver kind: dry contacts on the board's header, one stream per device (chip)."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.config import DeviceConfig
from contracts.spec import DriverSpec, Runners
from drivers.gpio.config import GpioDeviceConfig
from drivers.gpio.stream import GpioStream


def build(devices: Sequence[DeviceConfig], section: None) -> Runners:
    return Runners(streams=[GpioStream(d) for d in devices if isinstance(d, GpioDeviceConfig)])


SPEC = DriverSpec(name="gpio", device_model=GpioDeviceConfig, build=build)
