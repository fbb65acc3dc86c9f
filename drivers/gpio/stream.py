"""Dry contacts on GPIO lines: edge events from the kernel (debounced there), NO/NC applied here.

libgpiod's bindings are imported when the stream opens, so a gateway without
GPIO inputs (and CI, which has no GPIO chip) never loads them. Each edge
becomes a reading of its channel (1: the contact is in its alarm position);
every ``heartbeat_s`` the lines are read as they are, so a contact that never
moves still shows the device alive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from contracts.driver import StreamDriver
from contracts.errors import DeviceUnreachable
from contracts.readings import ReadingBatch
from drivers.gpio.config import GpioChannel, GpioDeviceConfig, alarm_value

if TYPE_CHECKING:
    import gpiod


def line_settings(channel: GpioChannel) -> gpiod.LineSettings:
    """The libgpiod settings of one input: both edges, its bias, polarity and kernel debounce."""
    import gpiod
    from gpiod.line import Bias, Direction, Edge

    bias = {
        "pull_up": Bias.PULL_UP,
        "pull_down": Bias.PULL_DOWN,
        "disabled": Bias.DISABLED,
        "as_is": Bias.AS_IS,
    }
    return gpiod.LineSettings(
        direction=Direction.INPUT,
        edge_detection=Edge.BOTH,
        bias=bias[channel.bias],
        active_low=channel.active_low,
        debounce_period=timedelta(milliseconds=channel.debounce_ms),
    )


def edge_batch(device: GpioDeviceConfig, events: Sequence[Any], *, now: float, now_ns: int) -> ReadingBatch:
    """The readings of a read of edge events (``gpiod.EdgeEvent``), timed on the wall clock.

    Event times are on the monotonic clock; ``now``/``now_ns`` are the wall
    and monotonic clocks read together, to convert them.
    """
    from gpiod import EdgeEvent

    by_line = {ch.line: ch for ch in device.channels}
    channels, values, stamps = [], [], []
    for event in events:
        channel = by_line.get(event.line_offset)
        if channel is None:
            continue
        closed = event.event_type is EdgeEvent.Type.RISING_EDGE  # rising = to active = contact closed
        channels.append(channel.id)
        values.append(alarm_value(channel, closed))
        stamps.append(now - (now_ns - event.timestamp_ns) / 1e9)
    batch = ReadingBatch.at(device.id, tuple(channels), values, now)
    batch.ts[:] = stamps
    return batch


class GpioStream(StreamDriver):
    """One device's GPIO inputs."""

    def __init__(self, device: GpioDeviceConfig) -> None:
        self.name = f"gpio:{device.id}"
        self.devices = (device,)
        self._device = device
        self._request: Any = None
        self.edges = 0

    async def open(self) -> None:
        device = self._device
        try:
            import gpiod
        except ImportError as exc:
            raise DeviceUnreachable(
                device.id, "GPIO inputs need libgpiod's bindings: pip install 'gridgate[gpio]'"
            ) from exc
        config: dict[Any, gpiod.LineSettings | None] = {ch.line: line_settings(ch) for ch in device.channels}
        try:
            self._request = gpiod.request_lines(device.chip, consumer="gridgate", config=config)
        except (OSError, ValueError) as exc:
            raise DeviceUnreachable(device.id, f"cannot request lines of {device.chip}: {exc}") from exc

    async def run(self, on_batch: Callable[[ReadingBatch], None]) -> None:
        request = self._request
        assert request is not None, "open the stream first"
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(request.fd, readable.set)
        try:
            while True:
                on_batch(self._levels())
                try:
                    await asyncio.wait_for(readable.wait(), self._device.heartbeat_s or 3600.0)
                except asyncio.TimeoutError:
                    continue
                readable.clear()
                while request.wait_edge_events(timedelta(0)):
                    events = request.read_edge_events()
                    self.edges += len(events)
                    on_batch(edge_batch(self._device, events, now=time.time(), now_ns=time.monotonic_ns()))
        finally:
            loop.remove_reader(request.fd)

    def _levels(self) -> ReadingBatch:
        from gpiod.line import Value

        device = self._device
        levels = self._request.get_values([ch.line for ch in device.channels])
        values = [
            alarm_value(ch, level is Value.ACTIVE) for ch, level in zip(device.channels, levels, strict=True)
        ]
        return ReadingBatch.at(device.id, tuple(ch.id for ch in device.channels), values, time.time())

    async def aclose(self) -> None:
        request, self._request = self._request, None
        if request is not None:
            request.release()

    def status_fields(self, device: str) -> dict[str, Any]:
        return {"counters": {"edges": self.edges}}
