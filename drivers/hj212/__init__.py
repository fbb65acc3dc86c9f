"""HJ 212-2017 (and 2005) dataloggers: codec, framing, mapping to readings, TCP and serial links."""

from drivers.hj212.codec import CrcMode, Frame, FrameError, crc16, encode, parse
from drivers.hj212.config import Hj212Channel, Hj212DeviceConfig, Hj212Listener
from drivers.hj212.framing import FrameSplitter
from drivers.hj212.replies import data_answer
from drivers.hj212.stream import Hj212Stream

__all__ = [
    "CrcMode",
    "Frame",
    "FrameError",
    "FrameSplitter",
    "Hj212Channel",
    "Hj212DeviceConfig",
    "Hj212Listener",
    "Hj212Stream",
    "crc16",
    "data_answer",
    "encode",
    "parse",
]
