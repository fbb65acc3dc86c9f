"""Platform message → command center event: latency through the whole gateway, and what it costs.

Two Mosquittos (the IoT platform's and the command center's) and the gateway
(``gridgate run``, a separate process) with ``--devices`` NB-IoT smoke
detectors behind a China Telecom AEP-style platform, a smoke rule on each.
A publisher sends each detector's reports in turn at ``--rate`` messages/s,
alternating smoke and normal, each stamped (``timestamp``, ms) with the time
it is published; the gateway raises and clears an event per alarm, carrying
that time. The figure is the time from the platform's publish to the event
arriving at a command-center subscriber (p50/p99/max), with the events
expected against those received, and the gateway's CPU share and RSS.

    python benchmarks/platform_latency.py [--devices 1000] [--rate 200] [--seconds 20]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.proc import cpu_seconds, rss_mb  # noqa: E402
from drivers.simulators.platform_devices import NORMAL, SMOKE, smoke_report  # noqa: E402
from firmware_tools.local_broker import LocalBroker  # noqa: E402

TOPIC = "aep/dataReport"
PREFIX = "bench"
GATEWAY = "gw-bench-01"


def imei(i: int) -> str:
    return f"86037405{i:07d}"


def site(n: int, uplink: int, platform: int, storage: Path) -> str:
    devices = "".join(
        f"""
[[devices]]
id = "smoke-{i:04d}"
profile = "nbiot-smoke-detector"
platform = "aep"
match = "{imei(i)}"

[[rules]]
device = "smoke-{i:04d}"
channel = "smoke_alarm"
high = 0.5
hold_s = 0.0
severity = "urgent"
category = "fire.smoke"
"""
        for i in range(n)
    )
    return f"""
[gateway]
id = "{GATEWAY}"
site = "bench"
grid_cell = "330106001001"

[uplink]
host = "127.0.0.1"
port = {uplink}
topic_prefix = "{PREFIX}"

[storage]
directory = "{storage}"

[events]
flap_window_s = 0

[[platforms]]
id = "aep"
host = "127.0.0.1"
port = {platform}
format = "nbiot_json"
topics = ["{TOPIC}"]
{devices}"""


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def measure(n: int, rate: float, seconds: float, uplink: int, platform: int, pid: int) -> None:
    latencies: dict[str, list[float]] = {"raised": [], "cleared": []}
    received = asyncio.Event()

    async def collect(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            event = json.loads(bytes(message.payload))
            if event.get("category") == "fire.smoke" and event["state"] in latencies:
                latencies[event["state"]].append(time.time() - _epoch(event["ts"]))
                received.set()

    async with aiomqtt.Client("127.0.0.1", uplink) as center, aiomqtt.Client("127.0.0.1", platform) as aep:
        await center.subscribe(f"{PREFIX}/{GATEWAY}/events", qos=1)
        collecting = asyncio.create_task(collect(center))
        # Everyone normal first; wait until the gateway is mapping (its first events would be lost).
        for i in range(n):
            await aep.publish(TOPIC, smoke_report(imei(i), NORMAL, ts=time.time()), qos=1)
        await aep.publish(TOPIC, smoke_report(imei(0), SMOKE, ts=time.time()), qos=1)
        await asyncio.wait_for(received.wait(), 120)
        await aep.publish(TOPIC, smoke_report(imei(0), NORMAL, ts=time.time()), qos=1)
        await asyncio.sleep(2)
        for values in latencies.values():
            values.clear()
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        sent = alarms = 0
        state = [NORMAL] * n
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            i = sent % n
            state[i] = SMOKE if state[i] == NORMAL else NORMAL
            alarms += state[i] == SMOKE
            await aep.publish(TOPIC, smoke_report(imei(i), state[i], ts=time.time(), smoke=1.8), qos=1)
            sent += 1
            delay = start + sent / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        clears = sent - alarms
        await asyncio.sleep(3)  # the last events on their way
        cpu1, wall1 = cpu_seconds(pid), time.monotonic()
        collecting.cancel()
    share = (cpu1 - cpu0) / (wall1 - wall0)
    print(f"{n} NB-IoT smoke detectors, {sent} platform messages at {rate:g}/s for {seconds:g} s:")
    for state_name, expected in (("raised", alarms), ("cleared", clears)):
        ms = sorted(x * 1000 for x in latencies[state_name])
        q = statistics.quantiles(ms, n=100) if len(ms) > 100 else [float("nan")] * 99
        print(
            f"  {state_name:<8} events {len(ms)} of {expected} expected:"
            f" platform publish → command center p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms,"
            f" max {ms[-1] if ms else float('nan'):.1f} ms"
        )
    print(f"  gateway CPU share {share * 100:.1f} % of one core, RSS {rss_mb(pid):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="platform messages per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    queue = "max_queued_messages 100000\nmax_inflight_messages 0\n"
    with (
        tempfile.TemporaryDirectory(prefix="gridgate-bench-") as tmp,
        LocalBroker(extra_config=queue) as uplink,
        LocalBroker(extra_config=queue) as platform,
    ):
        config = Path(tmp) / "site.toml"
        config.write_text(site(args.devices, uplink.port, platform.port, Path(tmp) / "state"))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(config), "--log-level", "ERROR"],
            cwd=ROOT,
            env=env,
            stderr=open(Path(tmp) / "gateway.log", "wb"),  # noqa: SIM115
        )
        try:
            asyncio.run(
                measure(args.devices, args.rate, args.seconds, uplink.port, platform.port, gateway.pid)
            )
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)


if __name__ == "__main__":
    main()
