"""A subscriber that collects what the gateway publishes, as a command center would."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiomqtt

from gateway.config import GatewayConfig
from gateway.service import Daemon


@dataclass(frozen=True)
class Received:
    topic: str
    payload: dict[str, Any]
    retain: bool


class Subscriber:
    """``async with Subscriber(host, port, "prefix/#") as sub: await sub.wait_for(...)``."""

    def __init__(self, host: str, port: int, topic_filter: str) -> None:
        self._client = aiomqtt.Client(host, port)
        self._filter = topic_filter
        self.received: list[Received] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Subscriber:
        await self._client.__aenter__()
        await self._client.subscribe(self._filter, qos=1)
        self._task = asyncio.create_task(self._collect(), name="test-subscriber")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(None, None, None)

    async def _collect(self) -> None:
        async for message in self._client.messages:
            payload = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            self.received.append(Received(str(message.topic), payload, bool(message.retain)))
            self._arrived.set()

    async def wait_for(
        self, match: Callable[[Received], bool], *, timeout: float = 10.0, after: int = 0
    ) -> Received:
        """The first message (from index ``after`` on) that ``match`` accepts."""
        async def scan() -> Received:
            seen = after
            while True:
                for message in self.received[seen:]:
                    if match(message):
                        return message
                seen = len(self.received)
                self._arrived.clear()
                await self._arrived.wait()

        return await asyncio.wait_for(scan(), timeout)

    def events(self, state: str | None = None) -> list[dict[str, Any]]:
        return [
            m.payload for m in self.received
            if m.topic.endswith("/events") and (state is None or m.payload["state"] == state)
        ]


@contextlib.asynccontextmanager
async def running_gateway(config: GatewayConfig, *, digest: str = "test") -> AsyncIterator[Daemon]:
    """The daemon in this process, ready (kernels compiled, pollers started) inside the block."""
    daemon = Daemon(config, config_digest=digest, flush_s=3.0)
    task = asyncio.create_task(daemon.run(), name="gateway")
    ready = asyncio.create_task(daemon.ready.wait())
    await asyncio.wait([task, ready], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        await task  # raises what stopped it from starting
    try:
        yield daemon
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 15)
