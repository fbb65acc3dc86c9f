"""What the status page and metrics cost: gateway CPU and RSS without ``[web]``, with it idle, and in use.

One dust monitor polled every second against a local broker; each case runs a
fresh gateway for ``--seconds`` after a warm-up, and reads its CPU time and
resident memory from /proc. "In use" keeps a live page open (server-sent
events) and scrapes /metrics every 5 s, as Prometheus would.

    .venv/bin/python -m benchmarks.web_bench [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from benchmarks.gateway_bench import Gateway, _rss_mb
from drivers.simulators.dust_monitor import CHANNELS
from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker, free_port

WARM_UP_S = 5.0


def _config(broker: int, modbus: int, storage: Path, web_port: int | None) -> str:
    channels = ",\n".join(
        f'{{ id = "{c.id}", address = {c.address}, type = "{c.type}", scale = {c.scale} }}' for c in CHANNELS
    )
    web = f"[web]\nport = {web_port}\n" if web_port else ""
    return (
        '[gateway]\nid = "gw-web-bench"\nsite = "bench"\ngrid_cell = "C1"\n'
        f'[uplink]\nhost = "127.0.0.1"\nport = {broker}\n[storage]\ndirectory = "{storage}"\n{web}'
        f'[[devices]]\nid = "dust-01"\ndriver = "modbus_tcp"\nhost = "127.0.0.1"\nport = {modbus}\n'
        f"poll_interval_s = 1.0\nchannels = [\n{channels}\n]\n"
    )


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _use(url: str, seconds: float) -> int:
    """Keep the live page open and scrape the metrics every 5 s; the number of live updates received."""
    updates = 0

    async def follow(http: aiohttp.ClientSession) -> None:
        nonlocal updates
        async with http.get(f"{url}/live?page=/devices/dust-01") as stream:
            async for line in stream.content:
                updates += line.startswith(b"data: ")

    async with aiohttp.ClientSession() as http:
        live = asyncio.create_task(follow(http))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            async with http.get(f"{url}/metrics") as response:
                await response.read()
            await asyncio.sleep(min(5.0, max(deadline - time.monotonic(), 0)))
        live.cancel()
    return updates


async def case(
    name: str, work: Path, broker: int, modbus: int, *, web: bool, use: bool, seconds: float
) -> None:
    port = free_port() if web else None
    config = work / f"{name}.toml"
    config.write_text(_config(broker, modbus, work / f"state-{name}", port))
    gateway = Gateway(config, work / "numba")
    try:
        await asyncio.sleep(WARM_UP_S)
        pid = gateway.process.pid
        cpu0, t0 = _cpu_s(pid), time.monotonic()
        updates = await _use(f"http://127.0.0.1:{port}", seconds) if use else 0
        if not use:
            await asyncio.sleep(seconds)
        cpu = (_cpu_s(pid) - cpu0) / (time.monotonic() - t0)
        rss, _ = _rss_mb(pid)
    finally:
        gateway.stop()
    extra = f", {updates} live update(s)" if use else ""
    print(f"{name:<24} CPU {cpu * 100:5.2f} % of a core   RSS {rss:6.1f} MB{extra}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    device = SimulatedModbusDevice(CHANNELS)
    for channel in device.channels:
        device.set(channel, 20.0)
    modbus = free_port()
    await device.serve_tcp("127.0.0.1", modbus)
    with tempfile.TemporaryDirectory() as tmp, LocalBroker(free_port()) as broker:
        work = Path(tmp)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(work / "numba")}
        subprocess.run([sys.executable, "-m", "gateway", "warm"], env=env, check=True, capture_output=True)
        for name, web, use in (
            ("without [web]", False, False),
            ("[web], idle", True, False),
            ("[web], in use", True, True),
        ):
            await case(name, work, broker.port, modbus, web=web, use=use, seconds=args.seconds)
    await device.stop()


if __name__ == "__main__":
    asyncio.run(main())
