"""What every driver is: a config model plus a class used as ``async with``, polled or pushed.

A polled driver (Modbus) answers :meth:`PolledDriver.read` with one batch per
call; the poller in ``gateway.poll`` owns the schedule, backoff and
availability. A stream (HJ 212, an IoT platform) receives what its devices
send, for every device of one listener or connection; the gateway watches
their heartbeats. Drivers raise only :class:`contracts.errors.DriverError`
subclasses.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar

from contracts.config import DeviceConfig, PolledDeviceConfig
from contracts.errors import NotWritable
from contracts.readings import ReadingBatch

ConfigT = TypeVar("ConfigT", bound=PolledDeviceConfig)


class ClosedOnExit(abc.ABC):
    """Leaving ``async with`` releases what the driver holds, however the block ended."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections, ports and listeners; safe to call more than once."""


class PolledDriver(ClosedOnExit, Generic[ConfigT]):
    """A device that is asked for its values; one :meth:`read` is one poll."""

    shares_line: ClassVar[bool] = False
    """Whether its requests queue on a line shared with other devices (a serial bus): the poller
    then spreads its devices over more phases, since polling them together saves nothing."""

    def __init__(self, config: ConfigT) -> None:
        self.config = config
        self.channel_ids: tuple[str, ...] = tuple(ch.id for ch in config.channels)
        # Set by the poller while the device is offline: try once, and only when the wire is free.
        self.probing = False
        self.outputs: frozenset[str] = frozenset()  # the channels :meth:`write` may switch

    async def __aenter__(self) -> PolledDriver[ConfigT]:
        return self

    @abc.abstractmethod
    async def read(self) -> ReadingBatch:
        """Read every channel once; raise a DriverError when the device cannot be read."""

    async def write(self, values: Mapping[str, int]) -> dict[str, float]:
        """Switch outputs (channel: 0 or 1) and return what they read back afterwards.

        Raises NotWritable for a channel outside :attr:`outputs`, before anything is
        sent, and a DriverError when the device cannot be written or read back.
        """
        raise NotWritable(self.config.id, f"{self.config.driver} devices have no outputs to switch")

    def status_fields(self) -> dict[str, Any]:
        """What this driver adds to the device's status message (its wire, its counters)."""
        return {}


def _nobody(device: str, ts: float) -> None:
    """The default of :attr:`StreamDriver.seen`: nobody watches."""


def _nobody_pictured(device: str, ts: float, jpeg: bytes) -> None:
    """The default of :attr:`StreamDriver.picture`: nobody keeps pictures."""


class StreamDriver(ClosedOnExit):
    """Receives what devices send; ``name`` names its task in the supervisor.

    Used as ``async with stream: await stream.run(on_batch)``: entering opens
    its listeners or connections (raising DeviceUnreachable when it cannot),
    ``run`` hands each batch to ``on_batch`` until cancelled, leaving closes
    everything. Every batch counts as a sign of life of its device; a message
    that carries no values (a heartbeat) is reported through :attr:`seen`.
    """

    name: str
    devices: Sequence[DeviceConfig]  # the devices this stream receives from
    # True when the stream tells its devices their data is stored (HJ 212 CN 9014): each batch is
    # then committed to disk before ``on_batch`` returns, at the price of a commit per batch.
    answers: bool = False
    # Set by the gateway before ``run``: device id and Unix time of a message without values.
    seen: Callable[[str, float], None] = staticmethod(_nobody)
    # Set by the gateway before ``run``: device id, Unix time and JPEG of a picture sent with an alarm.
    picture: Callable[[str, float, bytes], None] = staticmethod(_nobody_pictured)

    async def __aenter__(self) -> StreamDriver:
        await self.open()
        return self

    @abc.abstractmethod
    async def open(self) -> None:
        """Open listeners and ports; raise DeviceUnreachable when one cannot be opened."""

    @abc.abstractmethod
    async def run(self, on_batch: Callable[[ReadingBatch], None]) -> None:
        """Hand every batch received to ``on_batch`` until cancelled."""

    def status_fields(self, device: str) -> dict[str, Any]:
        """What this driver adds to ``device``'s status message (its counters)."""
        return {}

    def status(self) -> dict[str, Any]:
        """The stream as a whole, for the health message (its connection, messages for no device)."""
        return {}
