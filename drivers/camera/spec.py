"""The camera driver kind: IP cameras push alarms to one ``[cameras]`` HTTP receiver."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.config import DeviceConfig
from contracts.spec import DriverSpec, Runners, Section
from drivers.camera.config import CameraDeviceConfig, CameraReceiver, cross_check
from drivers.camera.receiver import CameraStream

RECEIVER = Section(
    key="cameras", model=CameraReceiver, many=False, description="HTTP receiver for camera alarm pushes"
)


def build(devices: Sequence[DeviceConfig], receiver: CameraReceiver | None) -> Runners:
    """One stream (the receiver) for every camera, when there is a receiver."""
    if receiver is None:
        return Runners()
    cameras = [d for d in devices if isinstance(d, CameraDeviceConfig)]
    return Runners(streams=[CameraStream(cameras, receiver=receiver)])


SPEC = DriverSpec(
    name="camera", device_model=CameraDeviceConfig, section=RECEIVER, check=cross_check, build=build
)
