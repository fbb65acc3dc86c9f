"""Scale figures: N gateways × D devices through one Mosquitto to a command center subscribed to all.

Each gateway is an uplink with its own outbox (fsync on), publishing what a
gateway of D polled devices does with the shipped defaults: one telemetry
message per device every ``--poll-s`` (default 5 s), every device's retained
status on connecting and every 60 s, its health on connecting and every 60 s.
Payloads are the documented examples (docs/mqtt-api.md) with each gateway's and
device's own ids. Prints, per gateway: messages and bytes per second (topic +
payload as the subscriber receives them), retained bytes on the broker; and the
broker's CPU per message in and out.

    python benchmarks/scale_bench.py [--gateways 50] [--devices 50] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import json

import aiomqtt

from firmware_tools.local_broker import LocalBroker
from gateway.config.models import GatewayIdentity, Uplink
from gateway.outbox import Outbox, Priority
from gateway.uplink import UplinkClient

PREFIX = "gridgate/v1"
DOC = Path(__file__).resolve().parent.parent / "docs" / "mqtt-api.md"
STATUS_EVERY_S = 60.0
HEALTH_EVERY_S = 60.0


def example(schema: str) -> dict[str, object]:
    """The first documented example of ``schema``, without the envelope the outbox adds."""
    block = re.search(rf"<!-- schema: {re.escape(schema)} -->\n```json\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert block is not None, schema
    body: dict[str, object] = json.loads(block.group(1))
    for key in ("gateway", "seq"):
        body.pop(key)
    return body


def broker_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Everything:
    """The command center: every message of every gateway, counted with its size."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages = 0
        self.bytes = 0
        self.retained: dict[str, int] = {}
        self.ready = asyncio.Event()

    async def run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port, max_queued_incoming_messages=0) as client:
            await client.subscribe(f"{PREFIX}/#", qos=1)
            self.ready.set()
            async for message in client.messages:
                size = len(str(message.topic)) + len(message.payload)
                self.messages += 1
                self.bytes += size
                kind = str(message.topic).split("/", 3)[3]
                if kind in ("state", "health", "open_events") or kind.endswith("/status"):
                    self.retained[str(message.topic)] = size


def device_status(device: str) -> dict[str, object]:
    return {**example("device-status.json"), "device": device}


async def gateway(n: int, args: argparse.Namespace, port: int, root: Path, stopping: asyncio.Event) -> None:
    identity = GatewayIdentity(id=f"gw-{n:05d}", site="bench", grid_cell="330106001001")
    outbox = Outbox(root / identity.id, identity.id)
    config = Uplink(host="127.0.0.1", port=port, topic_prefix=PREFIX)
    uplink = UplinkClient(config, identity, outbox, version="bench", config_digest="bench")
    devices = [f"dev-{d:03d}" for d in range(args.devices)]
    telemetry = example("telemetry.json")
    health = example("health.json")
    open_events = example("open-events.json")

    def retained_state() -> None:
        outbox.enqueue_many(
            [(Priority.STATE, f"devices/{d}/status", device_status(d), True) for d in devices]
            + [(Priority.STATE, "health", health, True), (Priority.STATE, "open_events", open_events, True)]
        )

    uplink.on_connect(retained_state)
    link = asyncio.create_task(uplink.run(stopping))
    await asyncio.sleep(n % 50 * args.poll_s / 50)  # gateways are not in step
    last_state = time.monotonic()
    while not stopping.is_set():
        outbox.enqueue_many(
            [(Priority.TELEMETRY, f"telemetry/{d}", {**telemetry, "device": d}, False) for d in devices]
        )
        if time.monotonic() - last_state >= min(STATUS_EVERY_S, HEALTH_EVERY_S):
            retained_state()
            last_state = time.monotonic()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stopping.wait(), args.poll_s)
    await asyncio.wait_for(link, 30)
    outbox.close()


async def bench(args: argparse.Namespace) -> None:
    # Mosquitto queues at most 1,000 messages for a subscriber by default and drops the rest: a
    # command center's broker must not, or the burst of retained state on connecting is lost.
    queue = "max_queued_messages 0\n"
    with LocalBroker(extra_config=queue) as broker, tempfile.TemporaryDirectory() as directory:
        center = Everything(broker.port)
        listening = asyncio.create_task(center.run())
        await center.ready.wait()
        stopping = asyncio.Event()
        gateways = [
            asyncio.create_task(gateway(n, args, broker.port, Path(directory), stopping))
            for n in range(args.gateways)
        ]
        await asyncio.sleep(args.poll_s * 2)  # connected, first retained state out
        m0, b0, cpu0, t0 = center.messages, center.bytes, broker_cpu_s(broker.pid), time.monotonic()
        await asyncio.sleep(args.seconds)
        m1, b1, cpu1, t1 = center.messages, center.bytes, broker_cpu_s(broker.pid), time.monotonic()
        stopping.set()
        await asyncio.gather(*gateways)
        await asyncio.sleep(1.0)
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    elapsed = t1 - t0
    message_rate = (m1 - m0) / elapsed / args.gateways
    byte_rate = (b1 - b0) / elapsed / args.gateways
    retained = sum(center.retained.values()) / args.gateways
    status_size = (
        sum(v for k, v in center.retained.items() if k.endswith("/status")) / args.gateways / args.devices
    )
    state_rate = (args.devices / STATUS_EVERY_S) + 1 / HEALTH_EVERY_S
    print(
        f"{args.gateways} gateways x {args.devices} devices, poll {args.poll_s:g} s, {elapsed:.0f} s measured"
    )
    print(
        f"per gateway: {message_rate:.2f} msg/s, {byte_rate:,.0f} B/s measured, of which retained state "
        f"{state_rate:.2f} msg/s, {state_rate * status_size:,.0f} B/s (every 60 s); "
        f"retained on the broker {retained:,.0f} B ({len(center.retained) // args.gateways} topics)"
    )
    per_message_us = (cpu1 - cpu0) / max(m1 - m0, 1) * 1e6
    print(
        f"broker: {(cpu1 - cpu0) / elapsed * 100:.1f} % of a core for {(m1 - m0) / elapsed:,.0f} msg/s in "
        f"(and as many out), {per_message_us:.1f} CPU-us per message in+out"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", type=int, default=50)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--poll-s", type=float, default=5.0, help="poll_interval_s of every device")
    parser.add_argument("--seconds", type=float, default=30.0)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
