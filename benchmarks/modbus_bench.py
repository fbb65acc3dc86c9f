"""Modbus polling figures: a crowded 9600-baud RS-485 bus, and many Modbus TCP devices.

1. 32 devices (8 of each shipped profile) on one RTU line over a pty whose
   simulator takes the time the bytes would take at 9600 baud 8N1: requests per
   poll cycle, estimated and measured cycle time and bus occupancy at a 5 s
   poll period, with coalescing (the profile's planned reads) and without (one
   read per channel).
2. Eight devices on one such line, one of them dead for a while: the poll
   periods of the seven others, and how soon the dead one is reported offline
   and online again.
3. 200 devices × 20 registers over Modbus TCP (one connection each, pymodbus
   server in another process): readings per second and gateway CPU seconds per
   1,000 readings, for the poll loop and drivers (detection excluded).

Run ``.venv/bin/python -m benchmarks.modbus_bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import resource
import statistics
import subprocess
import sys
import time

from benchmarks.gateway_bench import _pct
from drivers.modbus.bus import ModbusBus
from drivers.modbus.config import BusConfig, ModbusConfig
from drivers.modbus.device import ModbusBusDriver
from drivers.modbus.plan import bus_plans, device_requests
from drivers.modbus.registers import ModbusChannel
from drivers.modbus.tcp import ModbusTcpConfig, ModbusTcpDriver
from drivers.simulators.field_devices import make_device
from drivers.simulators.modbus_device import SimulatedModbusDevice
from drivers.simulators.rtu_server import RtuLineServer
from firmware_tools.local_broker import free_port, wait_for_port
from gateway.poll import DevicePoller

PROFILES = ("dust-monitor", "oil-fume-monitor", "manhole-cover", "smoke-panel")
BAUD = 9600
PERIOD_S = 5.0
TCP_DEVICES = 200
TCP_REGISTERS = 20


async def rtu_bus(devices: int = 32) -> None:
    sims = [make_device(PROFILES[i % 4], i + 1, seed=i)[0] for i in range(devices)]
    server = RtuLineServer(sims, baudrate=BAUD)
    path = await server.serve_pty()
    bus_config = BusConfig(id="rs485-1", device=path, baudrate=BAUD)
    configs = [
        ModbusConfig(
            id=f"dev-{s.unit_id}",
            driver="modbus",
            bus="rs485-1",
            unit_id=s.unit_id,
            channels=tuple(s.channels.values()),
            poll_interval_s=PERIOD_S,
            timeout_s=1.0,
        )
        for s in sims
    ]
    print(f"{devices} devices on one RTU line at {BAUD} 8N1 (wire time simulated), poll every {PERIOD_S:g} s")
    try:
        for coalesce in (True, False):
            [plan] = bus_plans([bus_config], configs, coalesce=coalesce)
            bus = ModbusBus(bus_config)
            drivers = [ModbusBusDriver(c, bus) for c in configs]
            for driver in drivers:
                driver.plan = list(device_requests(driver.config, coalesce=coalesce))
            started = time.perf_counter()
            await asyncio.gather(*(d.read() for d in drivers))  # every device once, queued on the bus
            cycle = time.perf_counter() - started
            bus.close()
            label = "coalesced" if coalesce else "one read per channel"
            print(
                f"  {label:>21}: {plan.requests_per_cycle:4d} requests/cycle, cycle estimated"
                f" {plan.cycle_s:6.2f} s, measured {cycle:6.2f} s, occupancy {cycle / PERIOD_S:6.1%}"
                f" (estimated {plan.occupancy:6.1%}), failed {bus.counters.requests - bus.counters.ok}",
                flush=True,
            )
    finally:
        await server.stop()


async def dead_device(seconds: float = 20.0, period: float = 1.0) -> None:
    """Eight devices (two per profile) on one 9600-baud line, unit 8 dead, then back."""
    sims = [make_device(PROFILES[i // 2], i + 1, seed=i)[0] for i in range(8)]
    server = RtuLineServer(sims, baudrate=BAUD)
    bus = ModbusBus(BusConfig(id="rs485-1", device=await server.serve_pty(), baudrate=BAUD))
    stamps: dict[str, list[float]] = {f"dev-{s.unit_id}": [] for s in sims}
    changes: list[tuple[str, str | None, float]] = []
    pollers = [
        DevicePoller(
            ModbusBusDriver(
                ModbusConfig(
                    id=f"dev-{s.unit_id}",
                    driver="modbus",
                    bus="rs485-1",
                    unit_id=s.unit_id,
                    channels=tuple(s.channels.values()),
                    poll_interval_s=period,
                    timeout_s=0.3,
                    retry_max_s=period,
                ),
                bus,
            ),
            lambda batch: stamps[batch.device].append(time.monotonic()),
            lambda p: changes.append((p.device, p.state, time.monotonic())),
        )
        for s in sims
    ]
    sims[7].silent = True
    started = time.monotonic()
    tasks = [asyncio.create_task(p.run()) for p in pollers]
    await asyncio.sleep(seconds)
    sims[7].silent = False
    back = time.monotonic()
    await asyncio.sleep(3 * period)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    bus.close()
    await server.stop()
    periods = [b - a for d in list(stamps)[:7] for a, b in itertools.pairwise(stamps[d])]
    down = next(t for d, s, t in changes if d == "dev-8" and s == "offline") - started
    up = next(t for d, s, t in changes if d == "dev-8" and s == "online") - back
    print(
        f"8 devices on one {BAUD}-baud line, unit 8 dead for {seconds:g} s, poll period {period:g} s,"
        f" timeout 0.3 s, 1 retry:\n  the seven others: period mean {statistics.fmean(periods):.3f} s,"
        f" p95 {_pct(periods, 95):.3f} s, max {max(periods):.3f} s ({len(periods)} intervals)\n"
        f"  unit 8 offline after {down:.2f} s ({down / period:.1f} periods),"
        f" online {up:.2f} s after it answered again ({up / period:.1f} periods)",
        flush=True,
    )


def serve_tcp_devices(port: int) -> None:
    """The simulator process: one pymodbus server answering for every unit id.

    Unit 1's first register goes to 65,000 for 2 s every 5 s, so a rule on it
    (high 60,000) raises and clears an alarm over and over.
    """
    from pymodbus.server import ModbusTcpServer

    channels = tuple(ModbusChannel(id=f"r{i}", address=i, type="uint16") for i in range(TCP_REGISTERS))
    sims = [SimulatedModbusDevice(channels, unit_id=u) for u in range(1, TCP_DEVICES + 1)]
    for sim in sims:
        for i, ch in enumerate(channels):
            sim.set(ch.id, sim.unit_id * 100 + i)

    async def main() -> None:
        server = ModbusTcpServer([s.sim_device() for s in sims], address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        while True:
            await asyncio.sleep(3.0)
            sims[0].set("r0", 65_000)
            await asyncio.sleep(2.0)
            sims[0].set("r0", 100)

    asyncio.run(main())


async def tcp_devices(seconds: float, interval: float) -> None:
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "benchmarks.modbus_bench", "--serve", str(port)])
    try:
        channels = tuple(ModbusChannel(id=f"r{i}", address=i, type="uint16") for i in range(TCP_REGISTERS))
        readings = 0

        def count(batch) -> None:  # type: ignore[no-untyped-def]
            nonlocal readings
            readings += len(batch)

        pollers = [
            DevicePoller(
                ModbusTcpDriver(
                    ModbusTcpConfig(
                        id=f"dev-{u}",
                        driver="modbus_tcp",
                        host="127.0.0.1",
                        port=port,
                        unit_id=u,
                        channels=channels,
                        poll_interval_s=interval,
                        timeout_s=2.0,
                    )
                ),
                count,
            )
            for u in range(1, TCP_DEVICES + 1)
        ]
        wait_for_port(port, timeout_s=30)  # the simulator process has started
        tasks = [asyncio.create_task(p.run()) for p in pollers]
        await asyncio.sleep(2.0)  # connections made
        readings, cpu0, wall0 = 0, time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall, got = time.process_time() - cpu0, time.perf_counter() - wall0, readings
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        failures = sum(p.failures for p in pollers)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{TCP_DEVICES} Modbus TCP devices × {TCP_REGISTERS} registers, poll every {interval:g} s:"
            f" {got / wall:8.0f} readings/s, gateway CPU {1000 * cpu / max(got, 1):.4f} s per 1,000"
            f" readings ({cpu / wall:.0%} of a core), failed polls {failures}, RSS {rss:.0f} MB",
            flush=True,
        )
    finally:
        sim.terminate()
        sim.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if args.serve:
        serve_tcp_devices(args.serve)
        return
    print(f"cpu cores: {os.cpu_count()}", flush=True)
    asyncio.run(rtu_bus())
    asyncio.run(dead_device())
    for interval in (1.0, 0.1):
        asyncio.run(tcp_devices(args.seconds, interval))


if __name__ == "__main__":
    main()
