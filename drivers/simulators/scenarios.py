"""What field devices measure over time, in three modes, for each shipped device profile.

- ``normal``: plausible values with a little noise.
- ``exceedance``: for ``excursion_s`` of every ``period_s`` (starting ``start_s``
  into the period) the regulated quantity rises past its limit and falls back.
- ``sensor_fault``: one sensor is stuck or out of range, or the device flags a fault.

Transport faults (slow, silent or garbled answers) belong to the transport, not here.
"""

from __future__ import annotations

import abc
import math
import random
from typing import Literal, get_args

Mode = Literal["normal", "exceedance", "sensor_fault"]
MODES: tuple[str, ...] = get_args(Mode)


class FieldScenario(abc.ABC):
    """A device's readings as a function of time since it started."""

    def __init__(
        self,
        mode: Mode = "normal",
        *,
        period_s: float = 60.0,
        start_s: float = 10.0,
        excursion_s: float = 20.0,
        seed: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown scenario mode {mode!r}; use one of {', '.join(MODES)}")
        self.mode = mode
        self.period_s = period_s
        self.start_s = start_s
        self.excursion_s = excursion_s
        self._rng = random.Random(seed)

    @abc.abstractmethod
    def values(self, t: float) -> dict[str, float]:
        """Every channel's engineering value ``t`` seconds after the device started."""

    def surge(self, t: float) -> float:
        """How far into an excursion ``t`` is: 0 outside one (always, unless exceedance), up to 1.

        The curve is flat-topped, so the value stays past its limit for most
        of the excursion rather than touching it for an instant.
        """
        if self.mode != "exceedance":
            return 0.0
        phase = t % self.period_s - self.start_s
        if not 0 <= phase < self.excursion_s:
            return 0.0
        return float(math.sin(math.pi * phase / self.excursion_s) ** 0.3)

    def noisy(self, mean: float, sd: float) -> float:
        """``mean`` plus gaussian noise, never below zero (most quantities cannot be)."""
        return max(0.0, self._rng.gauss(mean, sd))


class DustMonitorScenario(FieldScenario):
    """Construction dust; exceedance drives PM10 past 150 µg/m³, a fault pins it at -9999."""

    def values(self, t: float) -> dict[str, float]:
        pm10 = self.noisy(60.0, 4.0) + (230.0 - 60.0) * self.surge(t)
        return {
            "tsp": pm10 * 1.6 + self.noisy(5.0, 2.0),
            "pm10": -9999.0 if self.mode == "sensor_fault" else pm10,
            "pm25": pm10 * 0.55 + self.noisy(2.0, 1.0),
            "noise": self.noisy(58.0, 1.5),
            "temperature": self._rng.gauss(16.5, 0.2),
            "humidity": self.noisy(48.0, 0.5),
            "wind_speed": self.noisy(2.0, 0.5),
            "wind_direction": round(self._rng.gauss(200.0, 20.0)) % 360,
        }


class OilFumeScenario(FieldScenario):
    """A kitchen exhaust; exceedance: the purifier stops and fume passes 2.0 mg/m³.

    A sensor fault freezes the fume reading at one value.
    """

    def values(self, t: float) -> dict[str, float]:
        surge = self.surge(t)
        purifier_on = surge < 0.5
        fume = self.noisy(0.6, 0.05) + (3.5 - 0.6) * surge
        return {
            "fume": 1.23 if self.mode == "sensor_fault" else fume,
            "particulates": self.noisy(1.5, 0.1) + 4.0 * surge,
            "nmhc": self.noisy(4.0, 0.3),
            "temperature": self._rng.gauss(35.0, 0.5),
            "humidity": self.noisy(55.0, 1.0),
            "fan_current": self.noisy(2.4, 0.05),
            "fan_state": 1.0,
            "purifier_current": self.noisy(1.1, 0.05) if purifier_on else 0.0,
            "purifier_state": 1.0 if purifier_on else 0.0,
        }


class ManholeCoverScenario(FieldScenario):
    """A manhole cover; exceedance lifts it past 10° of tilt and flags it open.

    A sensor fault sets the fault bit and the gas reading goes to full scale.
    """

    def values(self, t: float) -> dict[str, float]:
        tilt_x = self._rng.gauss(0.8, 0.1) + 24.0 * self.surge(t)
        fault = self.mode == "sensor_fault"
        battery = self.noisy(3.6, 0.01)
        return {
            "tilt_x": tilt_x,
            "tilt_y": self._rng.gauss(-0.5, 0.1),
            "displacement": self.noisy(0.3, 0.05),
            "water_level": self.noisy(12.0, 0.5),
            "ch4": 6553.5 if fault else self.noisy(2.0, 0.3),
            "h2s": self.noisy(0.5, 0.1),
            "battery": battery,
            "cover_open": 1.0 if tilt_x > 10.0 else 0.0,
            "water_alarm": 0.0,
            "low_battery": 1.0 if battery < 3.3 else 0.0,
            "sensor_fault": 1.0 if fault else 0.0,
        }


class SmokePanelScenario(FieldScenario):
    """An eight-zone smoke panel; exceedance raises zone 1's alarm, a fault flags zone 1."""

    ZONES = 8
    FLAGS = ("alarm", "silenced", "fault", "tamper", "low_battery")

    def values(self, t: float) -> dict[str, float]:
        flags = {f"z{z}_{flag}": 0.0 for z in range(1, self.ZONES + 1) for flag in self.FLAGS}
        if self.surge(t) > 0.0:
            flags["z1_alarm"] = 1.0
        if self.mode == "sensor_fault":
            flags["z1_fault"] = 1.0
        return flags


SCENARIOS: dict[str, type[FieldScenario]] = {
    "dust-monitor": DustMonitorScenario,
    "oil-fume-monitor": OilFumeScenario,
    "manhole-cover": ManholeCoverScenario,
    "smoke-panel": SmokePanelScenario,
}
