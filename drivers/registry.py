"""The explicit list of driver kinds the gateway can load; adding one is one line here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from contracts.profiles import ProfileFile
from contracts.spec import DriverSpec
from drivers.camera.spec import SPEC as CAMERA
from drivers.gpio.spec import SPEC as GPIO
from drivers.hj212.spec import SPEC as HJ212
from drivers.modbus.spec import BUS_SPEC as MODBUS
from drivers.modbus.spec import TCP_SPEC as MODBUS_TCP
from drivers.platform.spec import SPEC as PLATFORM

__all__ = ["SPECS", "profile_problems"]

SPECS: dict[str, DriverSpec] = {
    spec.name: spec
    for spec in (
        MODBUS_TCP,
        MODBUS,  # a device on a shared [[buses]] entry (RS-485 RTU, RTU over TCP, Modbus TCP gateway)
        HJ212,  # pushed, not polled: one stream for the listener and every datalogger
        CAMERA,  # pushed over HTTP: one receiver for every IP camera
        GPIO,  # dry contacts on the board header (libgpiod, optional)
        PLATFORM,  # pushed through an IoT platform's broker (ChirpStack, NB-IoT): a stream per [[platforms]]
    )
}


def profile_problems(profile: ProfileFile, search: Sequence[Path]) -> list[str]:
    """What is wrong with ``profile`` for its driver (a profile without ``driver`` is a Modbus one)."""
    spec = SPECS.get(profile.driver or MODBUS.name)
    if spec is None:
        return [f"driver: unknown driver {profile.driver!r} (one of {', '.join(sorted(SPECS))})"]
    return list(spec.check_profile(profile, search))
