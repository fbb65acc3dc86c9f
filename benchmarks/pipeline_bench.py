"""The whole path under load: Modbus TCP → detection → outbox → MQTT, 200 devices × 20 registers.

The gateway runs as a user runs it (``gridgate run``, its own process); the 200
devices are one pymodbus server in another process, each with its own
connection; every channel has a threshold rule, so detection does its full
work; unit 1 raises and clears an alarm every 5 s. Readings are counted, and
the alarms timed (reading → arrival), where the command center would see them,
at an MQTT subscriber; the gateway's CPU time and RSS are read from /proc.

Run ``.venv/bin/python -m benchmarks.pipeline_bench``.
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
from pathlib import Path

import aiomqtt

from benchmarks.gateway_bench import ROOT, _epoch, _rss_mb
from benchmarks.modbus_bench import TCP_DEVICES, TCP_REGISTERS
from firmware_tools.local_broker import LocalBroker, free_port, wait_for_port

PREFIX = "gridgate/v1/gw-pipeline"


def _config(broker: int, modbus: int, storage: Path, interval: float) -> str:
    channels = ", ".join(f'{{ id = "r{i}", address = {i}, type = "uint16" }}' for i in range(TCP_REGISTERS))
    parts = [
        f"""
[gateway]
id = "gw-pipeline"
site = "benchmark"
grid_cell = "330106001001"

[uplink]
host = "127.0.0.1"
port = {broker}

[storage]
directory = "{storage}"

[events]
flap_window_s = 0.5  # each excursion of unit 1 is its own event
"""
    ]
    for unit in range(1, TCP_DEVICES + 1):
        parts.append(f"""
[[devices]]
id = "dev-{unit:03d}"
driver = "modbus_tcp"
host = "127.0.0.1"
port = {modbus}
unit_id = {unit}
poll_interval_s = {interval}
timeout_s = 2.0
channels = [{channels}]
""")
        for i in range(TCP_REGISTERS):
            parts.append(f"""
[[rules]]
device = "dev-{unit:03d}"
channel = "r{i}"
high = 60000.0
hysteresis = 1.0
category = "bench.level"
""")
    return "".join(parts)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(
    interval: float, seconds: float, broker: LocalBroker, modbus: int, work: Path, simulator: int
) -> None:
    storage = Path(tempfile.mkdtemp(dir=work))
    config = storage / "site.toml"
    config.write_text(_config(broker.port, modbus, storage, interval))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(work / "numba"), "PYTHONPATH": str(ROOT)}
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config), "--log-level", "ERROR"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    readings = 0
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, max_queued_incoming_messages=0) as client:
            await client.subscribe(f"{PREFIX}/telemetry/+", qos=1)
            await client.subscribe(f"{PREFIX}/events", qos=1)
            alarms: list[float] = []

            async def count() -> None:
                nonlocal readings
                async for message in client.messages:
                    payload = json.loads(bytes(message.payload))
                    if "readings" in payload:
                        readings += len(payload["readings"])
                    elif payload.get("state") == "raised" and "historical" not in payload:
                        alarms.append(time.time() - _epoch(payload["ts"]))

            counter = asyncio.create_task(count())
            deadline = time.monotonic() + 120
            while readings == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            await asyncio.sleep(5.0)  # every connection made, kernels warm
            got0, cpu0, wall0 = readings, _cpu_s(gateway.pid), time.monotonic()
            alarms.clear()
            sim0 = _cpu_s(simulator)
            await asyncio.sleep(seconds)
            got, cpu, wall = readings - got0, _cpu_s(gateway.pid) - cpu0, time.monotonic() - wall0
            sim = _cpu_s(simulator) - sim0
            latencies = sorted(alarms)
            rss, peak = _rss_mb(gateway.pid)
            counter.cancel()
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
    offered = TCP_DEVICES * TCP_REGISTERS / interval
    print(
        f"poll every {interval:g} s ({offered:,.0f} readings/s offered): {got / wall:,.0f} readings/s at the"
        f" subscriber, gateway CPU {1000 * cpu / max(got, 1):.4f} s per 1,000 readings"
        f" ({cpu / wall:.0%} of a core), RSS {rss:.0f} MB (peak {peak:.0f} MB);"
        f" the device simulator used {sim / wall:.0%} of a core;\n  alarm raised, reading → subscriber:"
        f" {len(latencies)} events, max {max(latencies, default=float('nan')) * 1000:.0f} ms"
        f" (median {statistics.median(latencies) * 1000 if latencies else float('nan'):.0f} ms)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--intervals", type=float, nargs="+", default=[1.0, 0.1, 0.05])
    args = parser.parse_args()
    print(
        f"{TCP_DEVICES} Modbus TCP devices × {TCP_REGISTERS} registers, a threshold rule on every channel,"
        f" {os.cpu_count()} cores",
        flush=True,
    )
    modbus = free_port()
    simulator = subprocess.Popen([sys.executable, "-m", "benchmarks.modbus_bench", "--serve", str(modbus)])
    try:
        wait_for_port(modbus, timeout_s=30)
        with tempfile.TemporaryDirectory() as work, LocalBroker(free_port()) as broker:
            for interval in args.intervals:
                asyncio.run(run(interval, args.seconds, broker, modbus, Path(work), simulator.pid))
    finally:
        simulator.terminate()
        simulator.wait()


if __name__ == "__main__":
    main()
