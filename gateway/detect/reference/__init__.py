"""Pure-Python twins of the detection kernels, written for reading, not speed.

Tests feed the same random streams to a kernel and its twin and require
identical output; the benchmark measures how much faster the kernel is.
"""

from gateway.detect.reference.channel import ChannelLimits, ChannelTwin
from gateway.detect.reference.cross import CrossTwin
from gateway.detect.reference.multivariate import HotellingTwin

__all__ = ["ChannelLimits", "ChannelTwin", "CrossTwin", "HotellingTwin"]
