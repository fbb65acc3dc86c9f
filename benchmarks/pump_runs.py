"""Short test-bench runs of a water pump: twenty minutes at 1 Hz, eight channels, one fault each.

The skid runs of :mod:`benchmarks.detect_quality` are three hours long; field
checks and test benches record much shorter runs, shorter than a detector that
learns for half an hour ever judges. These are generated here, seeded, with
the shape such recordings have: a pump's two vibration RMS channels (g), its
motor current (A), outlet pressure (bar, coarsely quantised), motor
temperature (°C, warming up through the run), a thermocouple in the water
(°C), supply voltage (V, noisy) and volume flow (l/min, whole numbers); each
run at its own operating point, with autocorrelated noise; after a normal
first part, one fault that lasts a quarter to a third of the run, sometimes to
its end:

- ``outlet``: a valve after the pump closes part way: flow falls, pressure rises,
  the current eases;
- ``inlet``: a valve before the pump closes part way: flow and pressure fall, the
  pump vibrates more and less evenly (cavitation);
- ``imbalance``: the rotor is unbalanced: both vibration channels rise and scatter;
- ``leak``: the circuit leaks: pressure falls and flow rises.

Each change is a few to several standard deviations of its channel and comes
in over 10 to 30 s, as a valve turns. Nothing here comes from any recorded data
set; the defaults are chosen on the development seed only.
"""

from __future__ import annotations

import numpy as np

from benchmarks.quality_series import Series

# name, (low, high) of the run's operating point, noise sd, resolution
PUMP = (
    ("vibration1_g", (0.200, 0.230), 0.004, 0.0001),
    ("vibration2_g", (0.250, 0.290), 0.005, 0.0001),
    ("current_a", (0.6, 2.2), 0.25, 0.01),
    ("pressure_bar", (0.10, 0.40), 0.06, 0.033),
    ("motor_temp_c", (68.0, 80.0), 0.3, 0.01),
    ("water_temp_c", (24.0, 30.0), 0.1, 0.01),
    ("voltage_v", (225.0, 236.0), 1.5, 0.1),
    ("flow_lpm", (30.0, 33.0), 0.4, 1.0),
)
V1, V2, CURRENT, PRESSURE, MOTOR_T, WATER_T, VOLTAGE, FLOW = range(len(PUMP))
KINDS = ("outlet", "inlet", "imbalance", "leak")


def pump_run(rng: np.random.Generator, k: int) -> Series:
    """One run: the channels above, one labelled fault after the normal first part."""
    n = int(rng.uniform(18.0, 22.0) * 60)
    p = len(PUMP)
    base = np.array([rng.uniform(*span) for _, span, _, _ in PUMP])
    sd = np.array([s for _, _, s, _ in PUMP])
    phi = rng.uniform(0.5, 0.8)
    noise = np.zeros((n, p))
    for i in range(1, n):
        noise[i] = phi * noise[i - 1] + rng.normal(0.0, np.sqrt(1.0 - phi * phi), p)
    t = np.arange(n, dtype=np.float64)
    level = np.tile(base, (n, 1))
    level[:, MOTOR_T] += rng.uniform(0.0, 8.0) * (1.0 - np.exp(-t / rng.uniform(300.0, 900.0)))
    level[:, WATER_T] += np.cumsum(rng.normal(0.0, 0.004, n))  # the tank warms and cools slowly
    scale = np.ones((n, p))
    onset = int(n * rng.uniform(0.40, 0.65))
    end = min(onset + int(n * rng.uniform(0.22, 0.35)), n - 1)
    ramp = np.clip((t - onset) / rng.uniform(10.0, 30.0), 0.0, 1.0)
    ramp[end + 1 :] = 0.0
    kind = KINDS[int(rng.integers(0, len(KINDS)))]
    sign = rng.uniform(0.6, 1.0)  # how far the valve turns, or how bad the fault is
    if kind == "outlet":
        level[:, FLOW] -= ramp * sign * rng.uniform(3.0, 8.0)
        level[:, PRESSURE] += ramp * sign * rng.uniform(0.2, 0.5)
        level[:, CURRENT] -= ramp * sign * rng.uniform(0.1, 0.3)
    elif kind == "inlet":
        level[:, FLOW] -= ramp * sign * rng.uniform(2.0, 6.0)
        level[:, PRESSURE] -= ramp * sign * rng.uniform(0.15, 0.35)
        level[:, CURRENT] -= ramp * sign * rng.uniform(0.1, 0.3)
        scale[:, V1] += ramp * rng.uniform(1.0, 2.5)
        scale[:, V2] += ramp * rng.uniform(1.0, 2.5)
    elif kind == "imbalance":
        level[:, V1] += ramp * sign * rng.uniform(3.0, 6.0) * sd[V1]
        level[:, V2] += ramp * sign * rng.uniform(3.0, 6.0) * sd[V2]
        scale[:, V1] += ramp * rng.uniform(0.5, 1.5)
        scale[:, V2] += ramp * rng.uniform(0.5, 1.5)
    else:
        level[:, PRESSURE] -= ramp * sign * rng.uniform(0.1, 0.3)
        level[:, FLOW] += ramp * sign * rng.uniform(1.0, 3.0)
    resolution = np.array([r for _, _, _, r in PUMP])
    values = np.round((level + sd * noise * scale) / resolution) * resolution
    return Series(
        f"pump-{k:02d}",
        tuple(name for name, _, _, _ in PUMP),
        1_763_800_000.0 + t,
        values,
        ((onset, end),),
        backlog=1,
        kinds=(kind,),
    )
