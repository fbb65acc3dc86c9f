"""What the status page and metrics cost: the same gateway without ``[web]``, with it idle, and in use.

One dust monitor polled every second against a local broker. Each case runs a
fresh gateway with the same config but for ``[web]``; after the same warm-up
its CPU time is read over ``--seconds`` and its resident memory at the end,
both from /proc. "In use" keeps a live page open (server-sent events) and
scrapes /metrics every 5 s, as Prometheus would. The cases take turns for
``--rounds`` rounds, so drift on a shared machine falls on all of them; the
figures are medians over the rounds, with the spread. The first line is what
the imports alone cost in a fresh interpreter that already holds the daemon.

    .venv/bin/python -m benchmarks.web_bench [--rounds 3] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from benchmarks.gateway_bench import ROOT, Gateway, _rss_mb
from drivers.simulators.dust_monitor import CHANNELS
from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker, free_port

WARM_UP_S = 8.0  # past the first health message (5 s) and the first polls
CASES = (("without [web]", False, False), ("[web], idle", True, False), ("[web], in use", True, True))
IMPORT_COST = """
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
import gateway.service.daemon
base = rss()
import gateway.web.server
server = rss()
import gateway.web.metrics
print(f"{server - base:.1f} {rss() - base:.1f}")
"""


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
) -> tuple[float, float, int]:
    """(CPU % of a core, RSS MB at the end, live updates) of one fresh gateway."""
    port = free_port() if web else None
    config = work / f"{name}.toml"
    storage = Path(tempfile.mkdtemp(dir=work))
    config.write_text(_config(broker, modbus, storage, port))
    gateway = Gateway(config, work / "numba")
    try:
        await asyncio.sleep(WARM_UP_S)
        pid = gateway.process.pid
        cpu0, t0 = _cpu_s(pid), time.monotonic()
        updates = await _use(f"http://127.0.0.1:{port}", seconds) if use else 0
        await asyncio.sleep(max(seconds - (time.monotonic() - t0), 0))
        cpu = (_cpu_s(pid) - cpu0) / (time.monotonic() - t0)
        rss, _ = _rss_mb(pid)
    finally:
        gateway.stop()
    return cpu * 100, rss, updates


def _import_cost() -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_COST], env=env, check=True, capture_output=True, text=True
    ).stdout
    server, metrics = out.split()
    return float(server), float(metrics)


def _spread(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    server, metrics = _import_cost()
    print(f"imports: status server +{server:.1f} MB, and the metrics at the first scrape +{metrics:.1f} MB")
    device = SimulatedModbusDevice(CHANNELS)
    for channel in device.channels:
        device.set(channel, 20.0)
    modbus = free_port()
    await device.serve_tcp("127.0.0.1", modbus)
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _, _ in CASES}
    with tempfile.TemporaryDirectory() as tmp, LocalBroker(free_port()) as broker:
        work = Path(tmp)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(work / "numba")}
        subprocess.run([sys.executable, "-m", "gateway", "warm"], env=env, check=True, capture_output=True)
        for round_ in range(args.rounds):
            order = CASES[round_ % len(CASES) :] + CASES[: round_ % len(CASES)]
            for name, web, use in order:
                results[name].append(
                    await case(name, work, broker.port, modbus, web=web, use=use, seconds=args.seconds)
                )
    await device.stop()
    print(f"{args.rounds} round(s) of {args.seconds:.0f} s after {WARM_UP_S:.0f} s warm-up; median (min–max)")
    base_cpu = statistics.median(r[0] for r in results[CASES[0][0]])
    base_rss = statistics.median(r[1] for r in results[CASES[0][0]])
    for name, _, use in CASES:
        cpu, rss = [r[0] for r in results[name]], [r[1] for r in results[name]]
        extra = f", {min(r[2] for r in results[name])}+ live update(s)" if use else ""
        d_cpu, d_rss = statistics.median(cpu) - base_cpu, statistics.median(rss) - base_rss
        print(
            f"{name:<15} CPU {_spread(cpu, 2)} % of a core  RSS {_spread(rss, 1)} MB"
            f"  Δ CPU {d_cpu:+.2f} %  Δ RSS {d_rss:+.1f} MB{extra}"
        )


if __name__ == "__main__":
    asyncio.run(main())
