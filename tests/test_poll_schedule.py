"""The poll schedule of many devices on one period, read from a real Modbus TCP simulator."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict

from contracts.readings import ReadingBatch
from drivers.modbus.tcp import ModbusTcpConfig, ModbusTcpDriver
from drivers.simulators.modbus_device import SimulatedModbusDevice
from gateway.poll.poller import PHASE_GROUPS, DevicePoller

PERIOD_S = 0.2


async def test_devices_on_one_period_are_read_in_groups_spread_over_it_each_on_its_period(
    dust_monitor: SimulatedModbusDevice,
) -> None:
    """Not all at the same instant: a burst of hundreds of reads made every reading of it wait."""
    seen: dict[str, list[float]] = defaultdict(list)

    def keep(batch: ReadingBatch) -> None:
        seen[batch.device].append(time.monotonic())

    pollers = [
        DevicePoller(
            ModbusTcpDriver(
                ModbusTcpConfig(
                    id=f"dust-{n:02d}",
                    driver="modbus_tcp",
                    host="127.0.0.1",
                    port=dust_monitor.port,
                    poll_interval_s=PERIOD_S,
                    channels=tuple(dust_monitor.channels.values()),
                )
            ),
            keep,
        )
        for n in range(24)
    ]
    started = time.monotonic()
    tasks = [asyncio.create_task(p.run()) for p in pollers]
    await asyncio.sleep(6.5 * PERIOD_S)
    for poller in pollers:
        poller.stop()
    await asyncio.gather(*tasks, return_exceptions=True)

    phases = set()
    for device, reads in seen.items():
        assert reads[0] - started < PERIOD_S / 2, f"{device}: the first read at once"
        gaps = [b - a for a, b in itertools.pairwise(reads[1:])]
        assert len(gaps) >= 4 and all(abs(g - PERIOD_S) < 0.05 for g in gaps), (device, gaps)
        phases.add(round(((reads[1] - started) % PERIOD_S) / (PERIOD_S / PHASE_GROUPS)) % PHASE_GROUPS)
    assert len(seen) == 24
    assert 2 <= len(phases) <= PHASE_GROUPS, phases
