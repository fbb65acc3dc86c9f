"""The whole path under load: Modbus TCP → detection → outbox → MQTT, 200 devices × 20 registers.

The gateway runs as a user runs it (``gridgate run``, its own process); the 200
devices are one pymodbus server in another process, each with its own
connection; every channel has a threshold rule, so detection does its full
work; unit 1 raises and clears an alarm every 5 s. Readings are counted, and
the alarms and the telemetry timed (reading → arrival), where the command
center would see them, at an MQTT subscriber; the gateway's CPU time and RSS
are read from /proc.

A rate counts as sustained only when what arrives matches what is offered
(within 5 %) and telemetry latency does not grow over the window (median of the
last third within max(250 ms, one poll) of the first third's): an overloaded
gateway draining a backlog delivers at its drain rate, which is not a rate it
can keep up.

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
    lags: list[tuple[float, float]] = []  # (arrival, reading → arrival) of each telemetry message
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
                        now = time.time()
                        lags.append((now, now - _epoch(payload["ts"])))
                    elif payload.get("state") == "raised" and "historical" not in payload:
                        alarms.append(time.time() - _epoch(payload["ts"]))

            counter = asyncio.create_task(count())
            deadline = time.monotonic() + 120
            while readings == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            await asyncio.sleep(5.0)  # every connection made, kernels warm
            got0, cpu0, wall0 = readings, _cpu_s(gateway.pid), time.monotonic()
            alarms.clear()
            lags.clear()
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
    delivered = got / wall
    verdict, lag = _sustained(lags, offered, delivered, interval)
    print(
        f"poll every {interval:g} s ({offered:,.0f} readings/s offered): {delivered:,.0f} readings/s at the"
        f" subscriber, gateway CPU {1000 * cpu / max(got, 1):.4f} s per 1,000 readings"
        f" ({cpu / wall:.0%} of a core), RSS {rss:.0f} MB (peak {peak:.0f} MB);"
        f"\n  telemetry, reading → subscriber: {lag}; {verdict};"
        f" the device simulator used {sim / wall:.0%} of a core;\n  alarm raised, reading → subscriber:"
        f" {len(latencies)} events, max {max(latencies, default=float('nan')) * 1000:.0f} ms"
        f" (median {statistics.median(latencies) * 1000 if latencies else float('nan'):.0f} ms)",
        flush=True,
    )


def _sustained(
    lags: list[tuple[float, float]], offered: float, delivered: float, interval: float
) -> tuple[str, str]:
    """The verdict on a rate, and the telemetry latency figures it rests on."""
    if len(lags) < 30:
        return "NOT sustained (almost nothing arrived)", f"{len(lags)} messages"
    ms = sorted(lag for _, lag in lags)
    third = len(lags) // 3
    first = statistics.median(lag for _, lag in lags[:third])
    last = statistics.median(lag for _, lag in lags[-third:])
    figures = (
        f"p50 {ms[len(ms) // 2] * 1000:.0f} ms, p99 {ms[int(len(ms) * 0.99)] * 1000:.0f} ms,"
        f" median first/last third {first * 1000:.0f}/{last * 1000:.0f} ms"
    )
    ratio = delivered / offered
    growing = last - first > max(0.25, interval)
    if abs(ratio - 1.0) <= 0.05 and not growing:
        return f"sustained (delivered/offered {ratio:.3f}, latency flat)", figures
    why = [f"delivered/offered {ratio:.3f}"] if abs(ratio - 1.0) > 0.05 else []
    why += ["latency growing: a backlog builds"] if growing else []
    return f"NOT sustained ({'; '.join(why)})", figures


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
            env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(work) / "numba")}
            # Kernels compiled ahead of time, as the installer leaves them.
            subprocess.run(
                [sys.executable, "-m", "gateway", "warm"], env=env, check=True, stdout=subprocess.DEVNULL
            )
            for interval in args.intervals:
                asyncio.run(run(interval, args.seconds, broker, modbus, Path(work), simulator.pid))
    finally:
        simulator.terminate()
        simulator.wait()


if __name__ == "__main__":
    main()
