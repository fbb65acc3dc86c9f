"""A street cabinet's RS-485 line: several simulated devices of the shipped profiles on one bus.

Served as RTU over TCP (as through a serial device server) or on a pty pair
whose path is printed, each device moved by its profile's scenario every
second. A device can be made to misbehave from the command line, to see how
the gateway reports it.

    python -m drivers.simulators.cabinet_line --port 15021 \\
        --device manhole-cover:11:exceedance --device smoke-panel:21 --outage 90:30:21
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from drivers.simulators.field_devices import apply, make_device
from drivers.simulators.modbus_device import SimulatedModbusDevice
from drivers.simulators.rtu_server import RtuLineServer
from drivers.simulators.scenarios import MODES, FieldScenario

log = logging.getLogger("simulator")


def _device(spec: str, period: float) -> tuple[SimulatedModbusDevice, FieldScenario]:
    """``profile:unit[:mode]`` → a device and its scenario."""
    profile, unit, *mode = spec.split(":")
    device, scenario = make_device(profile, int(unit), (mode or ["normal"])[0], seed=int(unit))  # type: ignore[arg-type]
    scenario.period_s, scenario.start_s, scenario.excursion_s = period, period / 6, period / 3
    return device, scenario


async def run(
    devices: list[tuple[SimulatedModbusDevice, FieldScenario]],
    *,
    port: int | None,
    outage: tuple[float, float, int] | None,
) -> None:
    """Serve until cancelled; ``outage`` = (after_s, for_s, unit): that unit goes silent a while."""
    server = RtuLineServer([d for d, _ in devices])
    if port is None:
        print(f"serial line (pty): {await server.serve_pty()}", flush=True)
    else:
        await server.serve_tcp("127.0.0.1", port)
        log.info("RTU over TCP on 127.0.0.1:%d, units %s", port, sorted(server.devices))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        while True:
            await asyncio.sleep(1.0)
            t = loop.time() - started
            for device, scenario in devices:
                apply(device, scenario, t)
            if outage is not None:
                after, length, unit = outage
                silent = after <= t % (after + length) < after + length
                if server.devices[unit].silent != silent:
                    log.info("unit %d %s", unit, "stops answering" if silent else "answers again")
                    server.devices[unit].silent = silent
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device",
        action="append",
        required=True,
        metavar="PROFILE:UNIT[:MODE]",
        help=f"a device on the line; MODE is one of {', '.join(MODES)}",
    )
    parser.add_argument("--port", type=int, help="RTU over TCP on this port (default: a pty)")
    parser.add_argument("--period", type=float, default=60.0, help="seconds between excursions")
    parser.add_argument(
        "--outage",
        metavar="AFTER:FOR:UNIT",
        help="that unit stops answering AFTER s into every AFTER+FOR s, for FOR s",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s simulator: %(message)s")
    outage = None
    if args.outage:
        after, length, unit = args.outage.split(":")
        outage = (float(after), float(length), int(unit))
    devices = [_device(spec, args.period) for spec in args.device]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(devices, port=args.port, outage=outage))


if __name__ == "__main__":
    main()
