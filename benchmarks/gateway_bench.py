"""End-to-end figures of the gateway as a real process.

Prints: alarm latency (reading taken → subscriber, and register change →
subscriber), daemon RSS, and start-up time to the first publish with a cold
and a warm Numba cache.

    .venv/bin/python -m benchmarks.gateway_bench [--alarms 200] [--starts 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiomqtt

from drivers.simulators.dust_monitor import CHANNELS
from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker, free_port

ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.05


def _config(broker_port: int, modbus_port: int, storage: Path) -> str:
    channels = ",\n".join(
        f'{{ id = "{c.id}", address = {c.address}, type = "{c.type}", scale = {c.scale} }}' for c in CHANNELS
    )
    return f"""
[gateway]
id = "gw-bench"
site = "bench"
grid_cell = "330106001001"
[uplink]
host = "127.0.0.1"
port = {broker_port}
[storage]
directory = "{storage}"
[events]
flap_window_s = 0  # every clear is published at once, so each toggle is one measured message
[[devices]]
id = "dust-01"
driver = "modbus_tcp"
host = "127.0.0.1"
port = {modbus_port}
poll_interval_s = {POLL_S}
channels = [
{channels}
]
[[rules]]
device = "dust-01"
channel = "pm10"
high = 150.0
hysteresis = 10.0
category = "env.dust.pm10"
"""


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Gateway:
    def __init__(self, config: Path, cache_dir: Path) -> None:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT)}
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(config), "--log-level", "WARNING"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


async def _first_message(client: aiomqtt.Client, suffix: str) -> float:
    async for message in client.messages:
        if str(message.topic).endswith(suffix):
            return time.monotonic()
    raise RuntimeError("subscription ended")


async def start_up(broker: LocalBroker, modbus_port: int, work: Path, cache: Path) -> float:
    storage = Path(tempfile.mkdtemp(dir=work))
    config = storage / "site.toml"
    config.write_text(_config(broker.port, modbus_port, storage))
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe("gridgate/v1/gw-bench/state", qos=1)
        # the retained state of an earlier run arrives first; drain it
        await asyncio.sleep(0.2)
        while len(client.messages):
            await anext(aiter(client.messages))
        gateway = Gateway(config, cache)
        try:
            arrived = await asyncio.wait_for(_first_message(client, "/state"), 120)
        finally:
            gateway.stop()
    return arrived - gateway.started


async def latency(
    broker: LocalBroker, device: SimulatedModbusDevice, modbus_port: int, work: Path, cache: Path, alarms: int
) -> None:
    storage = Path(tempfile.mkdtemp(dir=work))
    config = storage / "site.toml"
    config.write_text(_config(broker.port, modbus_port, storage))
    gateway = Gateway(config, cache)
    from_reading: list[float] = []
    from_change: list[float] = []
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe("gridgate/v1/gw-bench/events", qos=1)
            await asyncio.sleep(3.0)
            messages = aiter(client.messages)
            for i in range(alarms):
                value = 200.0 if i % 2 == 0 else 50.0
                changed = time.time()
                device.set("pm10", value)
                message = await asyncio.wait_for(anext(messages), 10)
                arrived = time.time()
                event = json.loads(bytes(message.payload))
                from_reading.append((arrived - _epoch(event["ts"])) * 1000)
                from_change.append((arrived - changed) * 1000)
            rss, hwm = _rss_mb(gateway.process.pid)
    finally:
        gateway.stop()
    print(f"alarm latency over {alarms} events (raise and clear), fsync on, QoS 1:")
    waits = f"register change → subscriber (includes up to {POLL_S * 1000:.0f} ms poll wait)"
    for name, samples in (("reading taken → subscriber", from_reading), (waits, from_change)):
        print(
            f"  {name}: p50 {_pct(samples, 50):.1f} ms, p99 {_pct(samples, 99):.1f} ms,"
            f" max {max(samples):.1f} ms (mean {statistics.fmean(samples):.1f})"
        )
    print(f"daemon RSS after the run: {rss:.1f} MB (peak {hwm:.1f} MB)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=200)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    modbus_port = free_port()
    device = SimulatedModbusDevice(CHANNELS)
    for channel in device.channels:
        device.set(channel, 20.0)
    await device.serve_tcp("127.0.0.1", modbus_port)
    with LocalBroker() as broker, tempfile.TemporaryDirectory(prefix="gridgate-bench-") as tmp:
        work = Path(tmp)
        warm_cache = work / "warm-cache"
        cold, warm = [], []
        for _ in range(args.starts):
            cold.append(await start_up(broker, modbus_port, work, Path(tempfile.mkdtemp(dir=work))))
        await start_up(broker, modbus_port, work, warm_cache)
        for _ in range(args.starts):
            warm.append(await start_up(broker, modbus_port, work, warm_cache))
        print(f"start-up to first publish (spawn → retained birth at a subscriber), {args.starts} runs each:")
        for name, runs in (("cold", cold), ("warm", warm)):
            listed = ", ".join(f"{s:.2f}" for s in runs)
            print(f"  {name} Numba cache: median {statistics.median(runs):.2f} s  (runs: {listed})")
        await latency(broker, device, modbus_port, work, warm_cache, args.alarms)
    await device.stop()


if __name__ == "__main__":
    import logging

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    asyncio.run(main())
