"""Devices that push their data: one stream per driver, kept open for the life of the gateway."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from drivers.hj212 import Hj212DeviceConfig, Hj212Stream
from drivers.stream import StreamDriver
from gateway.config.models import GatewayConfig
from gateway.errors import DriverError
from gateway.readings import ReadingBatch
from gateway.uplink.backoff import backoff_delays

log = logging.getLogger(__name__)


def build_streams(config: GatewayConfig) -> list[StreamDriver]:
    """The streams the config asks for (HJ 212: when it has a listener or such devices)."""
    hj212 = [d for d in config.devices if isinstance(d, Hj212DeviceConfig)]
    if not hj212 and config.hj212 is None:
        return []
    return [Hj212Stream(hj212, listener=config.hj212)]


async def feed(stream: StreamDriver, on_batch: Callable[[ReadingBatch], None]) -> None:
    """Run ``stream`` into ``on_batch`` until cancelled; if it cannot open, retry with backoff."""
    delays = backoff_delays(1.0, 60.0)
    while True:
        try:
            async with stream:
                await stream.run(on_batch)
        except DriverError as exc:
            delay = next(delays)
            log.error("%s: %s; retrying in %.0f s", stream.name, exc, delay)
            await asyncio.sleep(delay)
