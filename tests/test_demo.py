"""The README's first command: the demo starts every simulated device, and its alarms reach the board."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_demo_shows_alarms_from_modbus_hj212_platform_devices_and_a_camera_with_pictures(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "firmware_tools.demo",
            "--period",
            "30",
            "--duration",
            "45",
            "--view",
            "lines",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    for line in (
        "GATEWAY ONLINE",
        "DEVICE smoke-nb-01 ONLINE",
        "DEVICE cover-lora-01 ONLINE",
        "DEVICE fume-01 ONLINE",
        "ALARM RAISED  env.dust.pm10 dust-01/pm10",
        "ALARM RAISED  fire.smoke smoke-nb-01/smoke_alarm",
        "ALARM CLEARED fire.smoke smoke-nb-01/smoke_alarm",
        "ALARM RAISED  municipal.manhole.tilt manhole-01/tilt_x",
        "ALARM RAISED  security.intrusion cam-01/intrusion",
    ):
        assert line in out, f"{line!r} not shown by the demo"
    pictured = [line for line in out.splitlines() if " pictures cam-01 (" in line]
    assert any("security.intrusion cam-01/intrusion" in line for line in pictured), "no pushed picture shown"
    assert any("EVENT UPDATED" in line and "env.dust.pm10" in line for line in pictured), "no snapshot shown"
    assert "demo stopped" in out
