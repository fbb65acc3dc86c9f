"""HJ 212 figures: frames parsed per second, and a gateway serving 200 dataloggers.

Part 1 parses the real frames of tests/data in a loop (CRC, length, fields and
CP), then the same through framing and mapping to a batch: as the standard
says, and as firmware that deviates sends it with the device configured to
tolerate it (CRC-16/MODBUS, CRC unchecked, lower-case CRC without CRLF).
Part 2 starts Mosquitto and the gateway (``gridgate run``, a separate process)
with an HJ 212 listener and N dataloggers configured, connects N simulated
dataloggers that each send a real-time frame a second asking for an answer,
and prints the gateway's CPU share, its RSS and the 9014 answer latency
(frame sent → answer received, the readings stored in the outbox between).

    python benchmarks/hj212_bench.py [--dataloggers 200] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.proc import cpu_seconds, rss_mb  # noqa: E402
from drivers.hj212.codec import Frame, parse  # noqa: E402
from drivers.hj212.config import Hj212DeviceConfig  # noqa: E402
from drivers.hj212.mapping import DataloggerMap  # noqa: E402
from drivers.hj212.session import Hj212Counters, Session  # noqa: E402
from drivers.simulators.hj212_datalogger import Hj212Datalogger  # noqa: E402
from drivers.simulators.hj212_dialect import Dialect  # noqa: E402
from firmware_tools.local_broker import LocalBroker, free_port, wait_for_port  # noqa: E402

FRAMES = [
    line.strip().encode()
    for line in (ROOT / "tests" / "data" / "hj212_frames.txt").read_text().splitlines()
    if line.startswith("##")
]


def parse_rate(seconds: float = 2.0) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for raw in FRAMES:
            parse(raw)
        count += len(FRAMES)
    return count / (time.perf_counter() - started)


def pipeline_rate(seconds: float = 2.0, *, dialect: Dialect | None = None, crc: str = "standard") -> float:
    """Framing + authentication + mapping to a batch, per frame (the LXHB real-time frame)."""
    raw = FRAMES[-1] + b"\r\n"
    if dialect is not None:
        frame = parse(raw)
        raw = dialect.encode(Frame(frame.header, frame.cp))
    device = Hj212DeviceConfig.model_validate(
        {
            "id": "dust-01",
            "driver": "hj212",
            "mn": "LXHB0CS0306310",
            "pw": "123456",
            "crc": crc,
            "channels": [
                {"id": c, "code": code, "unit": "x"}
                for c, code in (("pm25", "a34004"), ("pm10", "a34002"), ("tsp", "a34001"), ("noise", "LA"))
            ],
        }
    )
    batches: list[object] = []
    session = Session("bench", DataloggerMap([device]), batches.append, Hj212Counters())
    chunk = raw * 100
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.feed(chunk)
        count += 100
        batches.clear()
    return count / (time.perf_counter() - started)


def _site(n: int, broker_port: int, listen_port: int, storage: Path) -> str:
    devices = "".join(
        f"""
[[devices]]
id = "dust-{i:03d}"
driver = "hj212"
mn = "BENCH{i:05d}"
pw = "123456"
channels = [
    {{ id = "tsp", code = "a34001", unit = "µg/m³" }},
    {{ id = "pm10", code = "a34002", unit = "µg/m³" }},
    {{ id = "pm25", code = "a34004", unit = "µg/m³" }},
    {{ id = "noise", code = "LA", unit = "dB(A)" }},
    {{ id = "temperature", code = "a01001", unit = "°C" }},
    {{ id = "humidity", code = "a01002", unit = "%RH" }},
    {{ id = "wind_speed", code = "a01007", unit = "m/s" }},
]

[[rules]]
device = "dust-{i:03d}"
channel = "pm10"
high = 150.0
hysteresis = 10.0
"""
        for i in range(n)
    )
    return f"""
[gateway]
id = "gw-bench"
site = "bench"
grid_cell = "bench"

[uplink]
host = "127.0.0.1"
port = {broker_port}
topic_prefix = "bench/v1"

[storage]
directory = "{storage}"

[hj212]
host = "127.0.0.1"
port = {listen_port}
max_connections = {n + 10}
max_per_address = {n + 10}  # every simulated datalogger comes from 127.0.0.1
{devices}"""


async def _load(n: int, port: int, seconds: float, warmup: float) -> list[Hj212Datalogger]:
    loggers = [
        Hj212Datalogger(mn=f"BENCH{i:05d}", pw="123456", interval_s=1.0, minute_s=3600, seed=i)
        for i in range(n)
    ]

    async def one(logger: Hj212Datalogger) -> None:
        await asyncio.sleep(random.uniform(0, 1.0))  # dataloggers are not in step
        await logger.run("127.0.0.1", port, duration_s=warmup + seconds)

    await asyncio.gather(*(one(logger) for logger in loggers))
    return loggers


def gateway_under_load(n: int, seconds: float, warmup: float = 5.0) -> None:
    with tempfile.TemporaryDirectory(prefix="gridgate-bench-") as tmp, LocalBroker() as broker:
        listen_port = free_port()
        site = Path(tmp) / "site.toml"
        site.write_text(_site(n, broker.port, listen_port, Path(tmp) / "state"))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(Path(tmp) / "numba")}
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(site), "--log-level", "ERROR"],
            cwd=ROOT,
            env=env,
            stderr=open(Path(tmp) / "gateway.log", "wb"),  # noqa: SIM115
        )
        try:
            wait_for_port(listen_port, timeout_s=120)

            async def measure() -> tuple[list[Hj212Datalogger], float, float, float]:
                load = asyncio.create_task(_load(n, listen_port, seconds, warmup))
                await asyncio.sleep(warmup)
                cpu0, wall0 = cpu_seconds(gateway.pid), time.monotonic()
                await asyncio.sleep(seconds)
                cpu1, wall1 = cpu_seconds(gateway.pid), time.monotonic()
                rss = rss_mb(gateway.pid)
                return await load, (cpu1 - cpu0) / (wall1 - wall0), rss, wall1 - wall0

            loggers, cpu_share, rss, wall = asyncio.run(measure())
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
    latencies = sorted(x for logger in loggers for x in logger.latencies_s)
    sent = sum(logger.sent for logger in loggers)
    ms = [x * 1000 for x in latencies]
    q = statistics.quantiles(ms, n=100) if len(ms) > 100 else [float("nan")] * 99
    print(f"{n} dataloggers × 1 frame/s, {wall:.0f} s measured after {warmup:.0f} s warm-up:")
    print(f"  frames sent {sent}, answers received {len(latencies)}")
    print(
        f"  gateway CPU share {cpu_share * 100:.1f} % of one core"
        f" ({cpu_share / (n or 1) * 1000:.2f} ms CPU per frame), RSS {rss:.0f} MB"
    )
    print(f"  9014 answer latency: p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, max {ms[-1]:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataloggers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(f"parse (CRC, length, fields, CP) of real frames: {parse_rate():,.0f} frames/s")
    print(f"framing + MN/PW check + mapping to a batch: {pipeline_rate():,.0f} frames/s")
    for what, dialect, crc in (
        ("standard frames, device set to crc = modbus", None, "modbus"),
        ("CRC-16/MODBUS frames, crc = modbus", Dialect(modbus_crc=True), "modbus"),
        ("CRC-16/MODBUS frames, crc = none", Dialect(modbus_crc=True), "none"),
        ("lower-case CRC, no CRLF", Dialect(lower_case_crc=True, crlf=False), "standard"),
    ):
        print(f"  tolerated: {what}: {pipeline_rate(dialect=dialect, crc=crc):,.0f} frames/s")
    if args.dataloggers <= 0:
        return
    gateway_under_load(args.dataloggers, args.seconds)


if __name__ == "__main__":
    main()
