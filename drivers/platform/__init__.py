"""Devices behind an IoT platform (ChirpStack LoRaWAN, carrier NB-IoT): its MQTT broker in, batches out."""

from drivers.platform.config import (
    LayoutField,
    PlatformChannel,
    PlatformConnection,
    PlatformDeviceConfig,
    StatusTable,
    cross_check,
)
from drivers.platform.decode import DeviceDecoder
from drivers.platform.errors import DecodeError, Reason
from drivers.platform.formats import Envelope, reader
from drivers.platform.stream import PlatformStream

__all__ = [
    "DecodeError",
    "DeviceDecoder",
    "Envelope",
    "LayoutField",
    "PlatformChannel",
    "PlatformConnection",
    "PlatformDeviceConfig",
    "PlatformStream",
    "Reason",
    "StatusTable",
    "cross_check",
    "reader",
]
