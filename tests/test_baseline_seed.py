"""``gridgate baseline seed``: baselines learned from known-good history are there at the first start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from contracts.readings import ReadingBatch
from gateway.cli import EXIT_CONFIG, main
from gateway.config import load_config
from gateway.detect.engine import DetectionEngine
from gateway.detect.persist import STATE_FILE, load_state
from tests.conftest import gateway_toml

T0 = 1_764_547_200.0  # 2025-12-01T00:00:00Z
RULES = """
[[rules]]
device = "dust-01"
channel = "pm10"
category = "anomaly.dust.pm10"
anomaly = { method = ["shift"] }
"""


def _site(tmp_path: Path) -> Path:
    path = tmp_path / "site.toml"
    text = gateway_toml(broker_port=1883, modbus_port=502, storage=tmp_path, prefix="gg/v1", rules=RULES)
    path.write_text(text)
    return path


def _history(tmp_path: Path, hours: float) -> Path:
    rng = np.random.default_rng(4)
    path = tmp_path / "good.csv"
    lines = ["timestamp,device,channel,value"]
    for k in range(int(hours * 3600)):
        lines.append(f"{T0 + k:.0f},dust-01,pm10,{60.0 + rng.normal(0, 2.0):.2f}")
        lines.append(f"{T0 + k:.0f},dust-01,pm25,{30.0 + rng.normal(0, 1.0):.2f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _first_minutes(engine: DetectionEngine, start: float) -> list[str]:
    """Four minutes of live readings, the last two of them shifted by ten sd."""
    rng = np.random.default_rng(5)
    said = []
    for k in range(240):
        value = 60.0 + rng.normal(0, 2.0) + (20.0 if k >= 120 else 0.0)
        batch = ReadingBatch.at("dust-01", ("pm10",), [value], start + k)
        said += [f"{'+' if t.raised else '-'}{t.facet}" for t in engine.evaluate(batch)]
    return said


def test_a_seeded_baseline_judges_from_the_first_minutes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, history = _site(tmp_path), _history(tmp_path, 2.0)
    assert main(["baseline", "seed", "--config", str(site), "--from", str(history)]) == 0
    assert "seeded 14400 reading(s) of 2 channel(s) over 2.0 h" in capsys.readouterr().out
    assert (tmp_path / STATE_FILE).exists()

    config, _ = load_config(site)
    started = DetectionEngine(config.rules, config.cross_rules, config.multivariate)
    assert load_state(config.storage.directory, started) > 0
    assert _first_minutes(started, T0 + 3 * 3600) == ["+shift"]
    fresh = DetectionEngine(config.rules, config.cross_rules, config.multivariate)
    assert _first_minutes(fresh, T0 + 3 * 3600) == []  # still learning: its warm-up is 5 minutes


def test_a_bad_history_line_is_named_and_nothing_is_saved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = _site(tmp_path)
    history = tmp_path / "bad.csv"
    history.write_text(
        "timestamp,device,channel,value\n"
        "2025-12-01T08:00:00+08:00,dust-01,pm10,61.0\n"
        "2025-12-01T08:00:01+08:00,dust-01,pm10,n/a x\n"
    )
    assert main(["baseline", "seed", "--config", str(site), "--from", str(history)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "bad.csv: 1 problem(s)" in err and "line 3:" in err
    assert not (tmp_path / STATE_FILE).exists()


def test_history_that_goes_back_in_time_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = _site(tmp_path)
    history = tmp_path / "shuffled.csv"
    history.write_text("timestamp,device,channel,value\n100,dust-01,pm10,61.0\n99,dust-01,pm10,60.0\n")
    assert main(["baseline", "seed", "--config", str(site), "--from", str(history)]) == EXIT_CONFIG
    assert "line 3: dust-01 goes back in time from line 2" in capsys.readouterr().err
