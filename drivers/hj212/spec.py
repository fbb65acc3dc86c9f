"""The HJ 212 driver kind: dataloggers that push frames to one ``[hj212]`` listener or a serial port."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.config import DeviceConfig
from contracts.spec import DriverSpec, Runners, Section
from drivers.hj212.config import Hj212DeviceConfig, Hj212Listener, cross_check
from drivers.hj212.stream import Hj212Stream

LISTENER = Section(
    key="hj212", model=Hj212Listener, many=False, description="TCP listener for HJ 212 dataloggers"
)


def build(devices: Sequence[DeviceConfig], listener: Hj212Listener | None) -> Runners:
    """One stream for every datalogger: the listener and each serial port (when there is anything)."""
    if not devices and listener is None:
        return Runners()
    loggers = [d for d in devices if isinstance(d, Hj212DeviceConfig)]
    return Runners(streams=[Hj212Stream(loggers, listener=listener)])


SPEC = DriverSpec(
    name="hj212", device_model=Hj212DeviceConfig, section=LISTENER, check=cross_check, build=build
)
