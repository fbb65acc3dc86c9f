"""Polling: one poller owns a device's I/O, schedule and availability."""

from gateway.poll.pacing import PollPacing
from gateway.poll.poller import DevicePoller

__all__ = ["DevicePoller", "PollPacing"]
