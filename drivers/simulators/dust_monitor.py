"""The demo's construction-dust monitor on Modbus TCP: PM10 over its limit every period.

It is the ``dust-monitor`` profile (configs/profiles/dust-monitor.toml: TSP,
PM10, PM2.5 and noise as float32 from register 0, temperature, humidity, wind
speed and direction after them) in the profile's exceedance scenario: about
10 s into every period PM10 climbs past 150 µg/m³ for 20 s.

Run ``python -m drivers.simulators.dust_monitor --port 15020``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from drivers.modbus.profiles import default_profile_dirs, load_profile
from drivers.simulators.field_devices import make_device, serve

PROFILE = "dust-monitor"
# What the demo and the tests configure the gateway to read: all but the wind vane.
CHANNELS = tuple(
    ch for ch in load_profile(PROFILE, default_profile_dirs()).channels if ch.id != "wind_direction"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=15020)
    parser.add_argument("--unit-id", type=int, default=1)
    parser.add_argument("--period", type=float, default=60.0, help="seconds between PM10 excursions")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s simulator: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    device, scenario = make_device(PROFILE, args.unit_id, "exceedance")
    scenario.period_s = args.period
    logging.getLogger(__name__).info(
        "dust monitor listening on %s:%d (unit %d)", args.host, args.port, args.unit_id
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(device, scenario, args.host, args.port, step_s=0.5))


if __name__ == "__main__":
    main()
