"""What the platform bridge tests share: fixtures on disk, profiles as device entries, a running bridge."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt

from contracts.profiles import default_profile_dirs, with_profile
from contracts.readings import ReadingBatch
from drivers.platform import PlatformConnection, PlatformDeviceConfig, PlatformStream

DATA = Path(__file__).resolve().parent / "data" / "platform"


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def profile_device(name: str, **entry: Any) -> PlatformDeviceConfig:
    """A device entry merged over a shipped profile, as the config loader merges it."""
    merged = with_profile({"profile": name, **entry}, default_profile_dirs())
    return PlatformDeviceConfig.model_validate(merged)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


class Bridge:
    """A running PlatformStream and what it handed on."""

    def __init__(self, stream: PlatformStream) -> None:
        self.stream = stream
        self.batches: list[ReadingBatch] = []
        self.seen: list[tuple[str, float]] = []
        stream.seen = lambda device, ts: self.seen.append((device, ts))

    def values(self, i: int = -1) -> dict[str, float]:
        batch = self.batches[i]
        return dict(zip(batch.channels, batch.values.tolist(), strict=True))


@contextlib.asynccontextmanager
async def running_bridge(
    connection: PlatformConnection, devices: list[PlatformDeviceConfig]
) -> AsyncIterator[Bridge]:
    stream = PlatformStream(connection, devices)
    bridge = Bridge(stream)

    async def feed() -> None:
        async with stream:
            await stream.run(bridge.batches.append)

    task = asyncio.create_task(feed(), name=f"bridge:{connection.id}")
    try:
        await until(lambda: stream.connected or task.done())
        if task.done():
            task.result()
        yield bridge
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def publish(port: int, *messages: tuple[str, bytes]) -> None:
    """Publish as the platform does, QoS 1, in order."""
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)
