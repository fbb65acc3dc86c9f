"""A subscriber that collects what the gateway publishes, as a command center would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import aiomqtt

from gateway.config import GatewayConfig
from gateway.service.daemon import Daemon
from tests.contract import ContractViolation, check, schema_for_topic


@dataclass(frozen=True)
class Received:
    topic: str
    payload: dict[str, Any]
    retain: bool
    correlation: bytes | None = None


class Subscriber:
    """``async with Subscriber(host, port, "prefix/#") as sub: await sub.wait_for(...)``.

    Every message received is checked against the JSON Schema for its topic
    (docs/schemas, see tests/contract.py) or against ``schema`` when given;
    the block fails on leaving if any message broke the contract.
    """

    def __init__(
        self, host: str, port: int, topic_filter: str, *, schema: str | None = None, protocol: str = "3.1.1"
    ) -> None:
        version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311
        self._client = aiomqtt.Client(host, port, protocol=version)
        self._filter = topic_filter
        self._schema = schema
        self.violations: list[str] = []
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
        if self.violations and exc_type is None:
            raise ContractViolation("\n".join(self.violations))

    async def _collect(self) -> None:
        async for message in self._client.messages:
            topic = str(message.topic)
            try:
                schema = self._schema or schema_for_topic(topic)
                if schema is None:
                    continue  # sent to the gateway, not by it
                payload = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                check(schema, payload, where=topic)
            except (ValueError, ContractViolation) as exc:
                self.violations.append(f"{topic}: {exc}")
                continue
            correlation = getattr(message.properties, "CorrelationData", None)
            self.received.append(Received(topic, payload, bool(message.retain), correlation))
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

    async def reading(self, device: str, channel: str, value: float, *, after: int = 0) -> Received:
        """The first telemetry of ``device`` carrying ``value`` on ``channel``: the gateway has read it.

        Detection runs on the same batch before its telemetry is committed, so
        whatever the reading causes is decided by the time it arrives.
        """
        return await self.wait_for(
            lambda m: (
                m.topic.endswith(f"/telemetry/{device}") and m.payload["readings"].get(channel) == value
            ),
            after=after,
        )

    async def alive_past(self, ts: float, device: str = "dust-01") -> None:
        """Wait for telemetry read at or after ``ts`` (epoch s): the gateway was running all along.

        What a test asserts did *not* happen by then cannot pass because the gateway stalled.
        """
        await self.wait_for(
            lambda m: m.topic.endswith(f"/telemetry/{device}") and epoch(m.payload["ts"]) >= ts
        )

    def events(self, state: str | None = None) -> list[dict[str, Any]]:
        return [
            m.payload
            for m in self.received
            if m.topic.endswith("/events") and (state is None or m.payload["state"] == state)
        ]


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@contextlib.asynccontextmanager
async def running_gateway(
    config: GatewayConfig, *, digest: str = "test", config_path: Path | None = None
) -> AsyncIterator[Daemon]:
    """The daemon in this process, ready (kernels compiled, pollers started) inside the block."""
    daemon = Daemon(config, config_digest=digest, flush_s=3.0, config_path=config_path)
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


ROOT = Path(__file__).resolve().parent.parent


async def run_gridgate(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """``gridgate ARGS`` as a technician runs it, without blocking the loop: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
