"""Simulated field devices: a shipped profile's register map fed by its scenario.

Run ``python -m drivers.simulators.field_devices --profile dust-monitor --port 15021
--mode exceedance`` to serve one device over Modbus TCP, updated every second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from drivers.modbus.profiles import default_profile_dirs, load_profile
from drivers.simulators.modbus_device import SimulatedModbusDevice
from drivers.simulators.scenarios import MODES, SCENARIOS, FieldScenario, Mode


def make_device(
    profile_name: str,
    unit_id: int = 1,
    scenario_mode: Mode = "normal",
    seed: int | None = None,
    *,
    search: Sequence[Path] | None = None,
) -> tuple[SimulatedModbusDevice, FieldScenario]:
    """A device with the register map of ``profile_name`` and the scenario that feeds it.

    The scenario's values for t = 0 are already in the register image.
    """
    if profile_name not in SCENARIOS:
        known = ", ".join(sorted(SCENARIOS))
        raise ValueError(f"no scenario for profile {profile_name!r}; there are: {known}")
    profile = load_profile(profile_name, search if search is not None else default_profile_dirs())
    device = SimulatedModbusDevice(profile.channels, unit_id=unit_id)
    scenario = SCENARIOS[profile_name](scenario_mode, seed=seed)
    apply(device, scenario, 0.0)
    return device, scenario


def apply(device: SimulatedModbusDevice, scenario: FieldScenario, t: float) -> dict[str, float]:
    """Write the scenario's values at ``t`` into the device's registers; return them."""
    values = scenario.values(t)
    for channel, value in values.items():
        device.set(channel, value)
    return values


async def serve(
    device: SimulatedModbusDevice,
    scenario: FieldScenario,
    host: str,
    port: int,
    *,
    step_s: float = 1.0,
) -> None:
    """Serve Modbus TCP on ``host:port``, moving the scenario each ``step_s``, until cancelled."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await device.serve_tcp(host, port)
    try:
        while True:
            await asyncio.sleep(step_s)
            apply(device, scenario, loop.time() - started)
    finally:
        await device.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--mode", default="normal", choices=MODES)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=15021)
    parser.add_argument("--unit-id", type=int, default=1)
    parser.add_argument("--period", type=float, default=60.0, help="seconds between excursions")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s simulator: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    device, scenario = make_device(args.profile, args.unit_id, args.mode, args.seed)
    # Keep the default shape: the excursion starts a sixth into the period and lasts a third.
    scenario.period_s = args.period
    scenario.start_s = args.period / 6
    scenario.excursion_s = args.period / 3
    logging.getLogger(__name__).info(
        "%s (%s) listening on %s:%d, unit %d",
        args.profile,
        args.mode,
        args.host,
        args.port,
        args.unit_id,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(device, scenario, args.host, args.port))


if __name__ == "__main__":
    main()
