"""What every driver is: a config model plus one class, used as ``async with``.

A polled driver (Modbus) answers :meth:`PolledDriver.read` with one batch per
call; the poller in ``gateway.poll`` owns the schedule, backoff and
availability. Drivers raise only :class:`gateway.errors.DriverError` subclasses.
"""

from __future__ import annotations

import abc
import re
from types import TracebackType
from typing import ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from gateway.readings import ReadingBatch

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
NAME_RE = re.compile(NAME_PATTERN)


class StrictModel(BaseModel):
    """A config model that refuses unknown keys, so typos are never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelConfig(StrictModel):
    """One measured quantity of a device."""

    id: str = Field(pattern=NAME_PATTERN, description="channel name, e.g. pm10, tilt_x")
    unit: str = ""


class DeviceConfig(StrictModel):
    """Settings every device has, whatever its driver."""

    id: str = Field(pattern=NAME_PATTERN, description="device name, unique on this gateway")
    driver: str
    poll_interval_s: float = Field(default=5.0, gt=0, le=86_400)
    timeout_s: float = Field(default=1.0, gt=0, le=60)
    offline_after: int = Field(
        default=3, ge=1, le=100, description="polls failed in a row before the device is offline"
    )
    retry_max_s: float = Field(
        default=60.0, gt=0, le=3600, description="longest wait between tries of an offline device"
    )
    channels: tuple[ChannelConfig, ...] = Field(min_length=1)


ConfigT = TypeVar("ConfigT", bound=DeviceConfig)


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

    config_model: ClassVar[type[DeviceConfig]]

    def __init__(self, config: ConfigT) -> None:
        self.config = config
        self.channel_ids: tuple[str, ...] = tuple(ch.id for ch in config.channels)
        # Set by the poller while the device is offline: try once, and only when the wire is free.
        self.probing = False

    async def __aenter__(self) -> PolledDriver[ConfigT]:
        return self

    @abc.abstractmethod
    async def read(self) -> ReadingBatch:
        """Read every channel once; raise a DriverError when the device cannot be read."""
