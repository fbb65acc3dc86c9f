"""Uplink figures: outbox → real Mosquitto with durable commits, fsync on.

Prints: sustained publish rate (messages/s and readings/s); drain rate of a
10-minute outage backlog; alarm latency from acceptance (before the commit)
to PUBACK, p50/p99, under telemetry load; RSS while holding a large backlog.

    python benchmarks/uplink_bench.py [--devices 200] [--backlog-mb 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware_tools.local_broker import LocalBroker
from gateway.config.models import GatewayIdentity, Uplink
from gateway.outbox import Outbox, Priority
from gateway.uplink import UplinkClient

READINGS = 20  # registers per device, as in DESIGN.md's throughput target
IDENTITY = GatewayIdentity(id="gw-bench", site="bench", grid_cell="330106001001")


class TimedOutbox(Outbox):
    """Notes when each message id was acknowledged by the broker."""

    acked_at: dict[int, float]

    def ack_many(self, message_ids: Iterable[int]) -> None:
        ids = list(message_ids)
        super().ack_many(ids)
        now = time.perf_counter()
        for message_id in ids:
            self.acked_at[message_id] = now


def telemetry(device: int, tick: int) -> dict[str, object]:
    readings = {f"r{n:02d}": round(20.0 + (device * 7 + n + tick) % 50 / 3, 2) for n in range(READINGS)}
    return {"ts": "2026-11-22T08:00:00.000Z", "device": f"dev-{device:03d}", "readings": readings}


def tick_items(devices: int, tick: int) -> list[tuple[Priority, str, dict[str, object], bool]]:
    return [(Priority.TELEMETRY, f"telemetry/dev-{d:03d}", telemetry(d, tick), False) for d in range(devices)]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def with_uplink(outbox: Outbox, port: int, body) -> None:  # type: ignore[no-untyped-def]
    config = Uplink(host="127.0.0.1", port=port, topic_prefix="bench", inflight_window=64)
    uplink = UplinkClient(config, IDENTITY, outbox, version="bench", config_digest="bench")
    stopping = asyncio.Event()
    task = asyncio.create_task(uplink.run(stopping))
    await asyncio.wait_for(uplink.connected.wait(), 10)
    try:
        await body()
    finally:
        stopping.set()
        await task


async def sustained(directory: Path, port: int, devices: int, seconds: float) -> None:
    outbox = Outbox(directory, IDENTITY.id)
    tick = 0

    async def produce() -> None:
        nonlocal tick
        start_pending = outbox.pending()
        cpu0, t0 = time.process_time(), time.perf_counter()
        sent = 0
        while time.perf_counter() - t0 < seconds:
            if outbox.pending() < 4 * devices:  # keep the uplink fed, not buried
                outbox.enqueue_many(tick_items(devices, tick))  # one group commit per tick
                sent += devices
                tick += 1
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - t0
        delivered = sent + start_pending - outbox.pending()
        cpu = time.process_time() - cpu0
        print(
            f"sustained: {delivered / elapsed:,.0f} messages/s, "
            f"{delivered * READINGS / elapsed:,.0f} readings/s "
            f"({devices} devices x {READINGS} readings per message, group commit per tick), "
            f"{cpu / max(delivered * READINGS, 1) * 1000 * 1000:.3f} CPU-s per 1,000,000 readings"
        )

    await with_uplink(outbox, port, produce)
    outbox.close()


async def drain_backlog(directory: Path, port: int, devices: int, minutes: float) -> None:
    outbox = Outbox(directory, IDENTITY.id, max_bytes=4 * 1024**3)
    ticks = int(minutes * 60)
    for tick in range(ticks):  # 1 Hz per device while the broker is away
        outbox.enqueue_many(tick_items(devices, tick))
    backlog = outbox.pending()
    t0 = time.perf_counter()

    async def wait_empty() -> None:
        while outbox.pending() > 0:
            await asyncio.sleep(0.05)

    await with_uplink(outbox, port, wait_empty)
    elapsed = time.perf_counter() - t0
    print(
        f"drain after a {minutes:g}-minute outage: {backlog:,} messages in {elapsed:.1f} s = "
        f"{backlog / elapsed:,.0f} messages/s, {backlog * READINGS / elapsed:,.0f} readings/s"
    )
    outbox.close()


async def alarm_latency(directory: Path, port: int, devices: int, alarms: int) -> None:
    outbox = TimedOutbox(directory, IDENTITY.id)
    outbox.acked_at = {}
    latencies: list[float] = []

    async def measure() -> None:
        for n in range(alarms):
            outbox.enqueue_many(tick_items(devices // 10, n))  # background telemetry
            t0 = time.perf_counter()
            outbox.enqueue(Priority.EVENT, "events", {"ts": "2026-11-22T08:00:00.000Z", "n": n})
            message_id = outbox.last_id()
            while message_id not in outbox.acked_at:
                await asyncio.sleep(0.0005)
            latencies.append((outbox.acked_at[message_id] - t0) * 1000)
            await asyncio.sleep(0.02)

    await with_uplink(outbox, port, measure)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"alarm latency, acceptance (commit, fsync) to PUBACK, {alarms} alarms under telemetry: "
        f"p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms"
    )
    outbox.close()


async def big_backlog_rss(directory: Path, port: int, megabytes: int) -> None:
    outbox = Outbox(directory, IDENTITY.id, max_bytes=(megabytes + 64) * 1024**2)
    before = rss_mb()
    pad = "x" * 4000
    tick = 0
    while outbox.bytes_used < megabytes * 1024**2:
        outbox.enqueue_many(
            [
                (Priority.TELEMETRY, "telemetry/big", {"n": tick * 250 + i, "pad": pad}, False)
                for i in range(250)
            ]
        )
        tick += 1
    outbox.close()
    outbox = Outbox(directory, IDENTITY.id, max_bytes=(megabytes + 64) * 1024**2)
    held = outbox.bytes_used / 1024**2
    peak = 0.0

    async def drain_a_while() -> None:
        nonlocal peak
        for _ in range(50):
            peak = max(peak, rss_mb())
            await asyncio.sleep(0.1)

    await with_uplink(outbox, port, drain_a_while)
    print(
        f"RSS holding a {held:,.0f} MB backlog: {rss_mb():.0f} MB now, {peak:.0f} MB peak draining "
        f"(process max {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
        f"{before:.0f} MB before filling)"
    )
    outbox.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--outage-min", type=float, default=10.0)
    parser.add_argument("--alarms", type=int, default=300)
    parser.add_argument("--backlog-mb", type=int, default=1024)
    parser.add_argument(
        "--broker-nodelay", action="store_true", help="Mosquitto set_tcp_nodelay (not its default)"
    )
    args = parser.parse_args()
    broker_config = "set_tcp_nodelay true\n" if args.broker_nodelay else ""
    with (
        LocalBroker(extra_config=broker_config) as broker,
        tempfile.TemporaryDirectory(prefix="uplink-bench-") as tmp,
    ):
        root = Path(tmp)
        print(f"rss at start: {rss_mb():.0f} MB; SQLite WAL, synchronous=FULL; Mosquitto on 127.0.0.1")
        await sustained(root / "sustained", broker.port, args.devices, args.seconds)
        await drain_backlog(root / "drain", broker.port, args.devices, args.outage_min)
        await alarm_latency(root / "latency", broker.port, args.devices, args.alarms)
        await big_backlog_rss(root / "big", broker.port, args.backlog_mb)


if __name__ == "__main__":
    asyncio.run(main())
