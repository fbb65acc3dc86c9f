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
import tempfile
import time
from pathlib import Path

from drivers.modbus.config import BusConfig
from drivers.modbus.profiles import available_profiles, default_profile_dirs, load_profile
from drivers.modbus.scan import COMMON_BAUDRATES, COMMON_PARITIES, LineSetting, ScanPlan, scan
from drivers.simulators.field_devices import make_device
from drivers.simulators.rtu_server import RtuLineServer
from firmware_tools.alarm_test import AlarmTestResult
from firmware_tools.probe import Probe, ProbeTarget
from firmware_tools.report_data import gather
from firmware_tools.report_html import render_html
from firmware_tools.report_pdf import render_pdf


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


async def probe_figures(seconds: float = 5.0) -> None:
    """Back-to-back refreshes of a manhole cover, the line timed as at its 4800 baud."""
    server = cabinet()
    server.baudrate = 4800
    path = await server.serve_pty()
    profile = load_profile("manhole-cover", default_profile_dirs())
    probe = Probe(
        ProbeTarget(
            "manhole-011", BusConfig(id="b", device=path, baudrate=4800, parity="O"), 11, profile.channels
        )
    )
    try:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            await probe.sample()
        rate = probe.reads / (time.monotonic() - started)
    finally:
        probe.close()
        await server.stop()
    print(
        f"probe: {rate:.1f} refreshes/s back to back (one 8-register read at 4800 baud); "
        "shown every poll interval by default"
    )


SITE = """
[gateway]
id = "gw-bench"
site = "bench"
grid_cell = "330105002042"
[uplink]
host = "127.0.0.1"
[[buses]]
id = "rs485-1"
device = "{path}"
{devices}
"""


async def report_figures() -> None:
    """Five devices read over the pty, three alarm tests, HTML and PDF."""
    server = cabinet()
    server.settings = {}
    path = await server.serve_pty()
    units = {
        1: "dust-monitor",
        2: "oil-fume-monitor",
        11: "manhole-cover",
        21: "smoke-panel",
        5: "manhole-cover",
    }
    devices = "".join(
        f'[[devices]]\nid = "{p}-{u}"\ndriver = "modbus"\nbus = "rs485-1"\nunit_id = {u}\nprofile = "{p}"\n'
        f"timeout_s = 0.3\n"
        for u, p in units.items()
    )
    tests = [
        AlarmTestResult("gw-bench", f"manhole-cover-{u}", "municipal.manhole.tilt", "t", "pass", "d")
        for u in (11, 5, 11)
    ]
    with tempfile.TemporaryDirectory() as directory:
        site = Path(directory) / "site.toml"
        site.write_text(SITE.format(path=path, devices=devices))
        started = time.monotonic()
        report = await gather(str(site), technician="bench", alarm_tests=tests)
        read = time.monotonic()
        (Path(directory) / "r.html").write_text(render_html(report))
        render_pdf(report, Path(directory) / "r.pdf")
        done = time.monotonic()
    await server.stop()
    print(
        f"report: 5 devices (one dead, 0.3 s timeout) and 3 alarm tests: "
        f"devices read in {read - started:.2f} s, HTML + PDF rendered in {done - read:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["scan", "probe", "report"])
    args = parser.parse_args()
    if args.only in (None, "scan"):
        started = time.monotonic()
        asyncio.run(scan_figures())
        print(f"(wall {time.monotonic() - started:.1f} s)")
    if args.only in (None, "probe"):
        asyncio.run(probe_figures())
    if args.only in (None, "report"):
        asyncio.run(report_figures())


if __name__ == "__main__":
    main()
