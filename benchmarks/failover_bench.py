"""Failover figures: the broker node in use is killed, again and again; how long until the gateway
publishes via another, and what is lost or duplicated.

Three Mosquitto processes stand for three cluster nodes (each its own broker,
so a subscriber listens on every one and the union is what a command center
behind the cluster would see). The gateway (uplink and outbox, fsync on)
publishes telemetry at ``--rate`` messages/s; each round kills (SIGKILL) the
node in use and starts the previous victim again, so two are always up.

Failover time: from the kill to the first message arriving via another node.
Lost: messages enqueued that no node delivered (must be 0). Duplicated:
messages delivered more than once (re-sends of what was in flight).

    python benchmarks/failover_bench.py [--kills 10] [--rate 50] [--reconnect-min 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiomqtt

from firmware_tools.local_broker import LocalBroker
from gateway.config.models import GatewayIdentity, Uplink
from gateway.outbox import Outbox, Priority
from gateway.uplink import UplinkClient

IDENTITY = GatewayIdentity(id="gw-failover", site="bench", grid_cell="330106001001")
PREFIX = "bench"


class NodeWatcher:
    """A command center on one node: (seq, arrival time) of every telemetry message."""

    def __init__(self, broker: LocalBroker) -> None:
        self.broker = broker
        self.arrivals: list[tuple[int, float]] = []
        self.ready = asyncio.Event()

    async def run(self) -> None:
        client = aiomqtt.Client("127.0.0.1", self.broker.port, identifier=f"cc-{self.broker.port}")
        while True:
            try:
                async with client:
                    await client.subscribe(f"{PREFIX}/+/telemetry/+", qos=1)
                    self.ready.set()
                    async for message in client.messages:
                        seq = json.loads(message.payload)["seq"]
                        self.arrivals.append((seq, time.monotonic()))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)


async def produce(outbox: Outbox, sent: list[int], rate: float, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        sent.append(outbox.enqueue(Priority.TELEMETRY, "telemetry/dev-1", {"n": len(sent)}))
        await asyncio.sleep(1 / rate)


async def bench(args: argparse.Namespace) -> None:
    with contextlib.ExitStack() as stack:
        brokers = [stack.enter_context(LocalBroker()) for _ in range(3)]
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        watchers = [NodeWatcher(b) for b in brokers]
        watching = [asyncio.create_task(w.run()) for w in watchers]
        await asyncio.gather(*(w.ready.wait() for w in watchers))
        config = Uplink(
            servers=[f"127.0.0.1:{b.port}" for b in brokers],
            topic_prefix=PREFIX,
            reconnect_min_s=args.reconnect_min,
            reconnect_max_s=max(args.reconnect_min, 10.0),
        )
        outbox = Outbox(directory, IDENTITY.id)
        uplink = UplinkClient(config, IDENTITY, outbox, version="bench", config_digest="bench")
        stopping, done = asyncio.Event(), asyncio.Event()
        link = asyncio.create_task(uplink.run(stopping))
        sent: list[int] = []
        producer = asyncio.create_task(produce(outbox, sent, args.rate, done))
        await asyncio.wait_for(uplink.connected.wait(), 10)
        await asyncio.sleep(1.0)
        failovers: list[float] = []
        victim: LocalBroker | None = None
        for _ in range(args.kills):
            using = next(b for b in brokers if uplink.broker == f"127.0.0.1:{b.port}")
            others = [w for w in watchers if w.broker is not using]
            seen = [len(w.arrivals) for w in others]
            killed_at = time.monotonic()
            using.kill()
            while not any(len(w.arrivals) > n for w, n in zip(others, seen, strict=True)):
                await asyncio.sleep(0.005)
            first = min(w.arrivals[n][1] for w, n in zip(others, seen, strict=True) if len(w.arrivals) > n)
            failovers.append(first - killed_at)
            if victim is not None:
                victim.start()
            victim = using
            await asyncio.sleep(args.between)
        if victim is not None:
            victim.start()
        done.set()
        await producer
        while outbox.pending():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        stopping.set()
        await asyncio.wait_for(link, 15)
        for task in watching:
            task.cancel()
        await asyncio.gather(*watching, return_exceptions=True)
        outbox.close()
    counts = collections.Counter(seq for w in watchers for seq, _ in w.arrivals)
    lost = [seq for seq in sent if seq not in counts]
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    ms = sorted(1000 * f for f in failovers)
    print(
        f"failover over {len(ms)} kills (reconnect_min_s {args.reconnect_min:g}, {args.rate:g} msg/s): "
        f"p50 {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms, min {ms[0]:.0f} ms"
    )
    print(f"messages: {len(sent):,} enqueued, {len(lost)} lost, {duplicated} duplicated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--rate", type=float, default=50.0, help="telemetry messages per second")
    parser.add_argument("--reconnect-min", type=float, default=1.0, help="[uplink] reconnect_min_s")
    parser.add_argument("--between", type=float, default=2.0, help="seconds between kills")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
