"""Kernels compiled ahead of time by `gridgate warm` decide exactly as the JIT does, without Numba loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Every kind of detector, on readings with a step, a spike, a broken relation and a fan left on.
WORKLOAD = r'''
import json, sys
import numpy as np
from contracts.compat import tomllib
from contracts.readings import ReadingBatch
from gateway.config.rules import CrossRule, MultivariateRule, ThresholdRule
from gateway.detect import jit
from gateway.detect.engine import DetectionEngine

config = tomllib.loads("""
[[rules]]
device = "skid"
channel = "pressure"
high = 6.0
anomaly = {}
[[rules]]
device = "skid"
channel = "vibration"
anomaly = { method = ["spike", "changepoint"] }
[[rules]]
device = "skid"
channel = "fan"
anomaly = { method = ["shift"] }
[[cross_rules]]
device = "skid"
category = "skid.fan_on_at_rest"
hold_s = 5.0
all = [{ channel = "fan", op = ">", value = 0.5 }, { channel = "pressure", op = "<", value = 3.0 }]
[[multivariate]]
device = "skid"
channels = ["pressure", "vibration"]
[[multivariate]]
device = "skid"
channels = ["pressure", "vibration"]
method = "hotelling"
""")
engine = DetectionEngine(
    [ThresholdRule.model_validate(r) for r in config["rules"]],
    [CrossRule.model_validate(r) for r in config["cross_rules"]],
    [MultivariateRule.model_validate(r) for r in config["multivariate"]],
)
engine.warm_up()
rng = np.random.default_rng(7)
n = 7200
load = np.cumsum(rng.normal(0, 0.01, n)) * 0.1
pressure = 4.0 + load + rng.normal(0, 0.02, n)
vibration = 0.03 + 0.008 * load + rng.normal(0, 0.0002, n)
fan = np.where((np.arange(n) // 900) % 2 == 1, 1.0, 0.0) + rng.normal(0, 0.01, n)
pressure[4000:4600] = 2.5          # a drop, with the fan on: the cross rule
vibration[5000:5600] += 0.004      # the relation breaks: the multivariate detectors
pressure[6000] = 9.0               # one spike above the limit
said = []
channels = ("pressure", "vibration", "fan")
for first in range(0, n, 30):      # 30 rows per batch: every row is evaluated in order
    rows = np.column_stack([pressure, vibration, fan])[first:first + 30]
    ts = 1_763_800_000.0 + first + np.arange(len(rows), dtype=np.float64)
    batch = ReadingBatch(
        device="skid", channels=channels * len(rows), values=rows.reshape(-1).copy(),
        ts=np.repeat(ts, 3), quality=np.zeros(rows.size, dtype=np.uint8),
    )
    for t in engine.evaluate(batch):
        said.append([t.rule, t.facet, t.raised, t.condition, round(t.ts, 3), repr(round(t.value, 6))])
print(json.dumps({"compiled": jit.COMPILED is not None, "numba": "numba" in sys.modules, "said": said}))
'''


def _evaluate(mode: str) -> dict[str, object]:
    env = {**os.environ, "GRIDGATE_KERNELS": mode, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WORKLOAD], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_warm_compiles_kernels_that_decide_as_the_jit_does_without_loading_numba() -> None:
    # The session's cache (bootstrap warms it; here it is built when it is not there yet).
    warmed = subprocess.run(
        [sys.executable, "-m", "gateway", "warm"], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert warmed.returncode == 0, warmed.stderr
    assert "compiled kernels in" in warmed.stdout, warmed.stderr

    compiled, jitted = _evaluate("auto"), _evaluate("jit")

    assert compiled["compiled"] and not compiled["numba"], "the compiled kernels load without Numba"
    assert not jitted["compiled"] and jitted["numba"]
    said = jitted["said"]
    assert isinstance(said, list)
    conditions = {entry[3] for entry in said}
    assert len(conditions) >= 4, f"the workload exercises several kinds: {conditions}"
    assert compiled["said"] == said
