"""A construction-dust monitor on Modbus TCP whose PM10 exceeds its limit every so often.

Register map (holding registers, big-endian words): TSP 0–1, PM10 2–3, PM2.5 4–5
and noise 6–7 as float32; temperature 8 (int16 × 0.1 °C), humidity 9
(uint16 × 0.1 %RH), wind speed 10 (uint16 × 0.1 m/s).

Run ``python -m drivers.simulators.dust_monitor --port 15020``. The same device,
with wind direction and fault modes, is the ``dust-monitor`` profile in
:mod:`drivers.simulators.field_devices`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import random

from drivers.modbus.registers import ModbusChannel
from drivers.simulators.modbus_device import SimulatedModbusDevice

CHANNELS = (
    ModbusChannel(id="tsp", address=0, type="float32", unit="µg/m³"),
    ModbusChannel(id="pm10", address=2, type="float32", unit="µg/m³"),
    ModbusChannel(id="pm25", address=4, type="float32", unit="µg/m³"),
    ModbusChannel(id="noise", address=6, type="float32", unit="dB(A)"),
    ModbusChannel(id="temperature", address=8, type="int16", scale=0.1, unit="°C"),
    ModbusChannel(id="humidity", address=9, type="uint16", scale=0.1, unit="%RH"),
    ModbusChannel(id="wind_speed", address=10, type="uint16", scale=0.1, unit="m/s"),
)


class DustScenario:
    """Normal air with noise; for ``excursion_s`` of each ``period_s``, PM10 climbs to ``peak``."""

    def __init__(
        self, *, period_s: float = 60.0, start_s: float = 10.0, excursion_s: float = 20.0,
        peak: float = 230.0, seed: int | None = None,
    ) -> None:
        self.period_s = period_s
        self.start_s = start_s
        self.excursion_s = excursion_s
        self.peak = peak
        self._rng = random.Random(seed)

    def values(self, t: float) -> dict[str, float]:
        """The monitor's readings ``t`` seconds after it started."""
        rng = self._rng
        phase = t % self.period_s - self.start_s
        pm10 = 60.0 + rng.gauss(0, 4)
        if 0 <= phase < self.excursion_s:
            pm10 += (self.peak - 60.0) * math.sin(math.pi * phase / self.excursion_s) ** 0.3
        return {
            "tsp": pm10 * 1.6 + rng.gauss(0, 5),
            "pm10": pm10,
            "pm25": pm10 * 0.55 + rng.gauss(0, 2),
            "noise": 58.0 + rng.gauss(0, 1.5),
            "temperature": 16.5 + rng.gauss(0, 0.2),
            "humidity": 48.0 + rng.gauss(0, 0.5),
            "wind_speed": abs(2.0 + rng.gauss(0, 0.5)),
        }


async def run(
    host: str, port: int, scenario: DustScenario, *, unit_id: int = 1, step_s: float = 0.5
) -> None:
    device = SimulatedModbusDevice(CHANNELS, unit_id=unit_id)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for channel, value in scenario.values(0.0).items():
        device.set(channel, value)
    await device.serve_tcp(host, port)
    logging.getLogger(__name__).info(
        "dust monitor listening on %s:%d (unit %d)", host, port, unit_id
    )
    try:
        while True:
            for channel, value in scenario.values(loop.time() - started).items():
                device.set(channel, value)
            await asyncio.sleep(step_s)
    finally:
        await device.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=15020)
    parser.add_argument("--unit-id", type=int, default=1)
    parser.add_argument(
        "--period", type=float, default=60.0, help="seconds between PM10 excursions"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s simulator: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    scenario = DustScenario(period_s=args.period)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.host, args.port, scenario, unit_id=args.unit_id))


if __name__ == "__main__":
    main()
