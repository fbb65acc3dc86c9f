"""``gridgate probe`` and ``gridgate read`` against simulated units on a pty line, without a broker."""

from __future__ import annotations

import json
from pathlib import Path

from drivers.modbus.config import BusConfig
from drivers.modbus.profiles import default_profile_dirs, load_profile
from firmware_tools.probe import STUCK_READS, Probe, ProbeTarget
from firmware_tools.probe_cli import render
from tests.test_scan import _cabinet, _gridgate

SITE = """
[gateway]
id = "gw-1"
site = "bench"
grid_cell = "330106001001"
[uplink]
host = "127.0.0.1"
[[buses]]
id = "rs485-1"
device = "{path}"
baudrate = 4800
[[devices]]
id = "manhole-011"
driver = "modbus"
bus = "rs485-1"
unit_id = 11
profile = "manhole-cover"
poll_interval_s = 0.2
"""


async def test_read_prints_one_reading_as_json_with_checks_and_counters(tmp_path: Path) -> None:
    server = _cabinet()
    del server.settings[11]  # answers at any setting: glibc may refuse parity when a pty is reopened
    path = await server.serve_pty()
    server.devices[11].set("tilt_x", 0.6)
    server.devices[11].set("battery", 0.0)  # a flat battery, or a wrong register
    site = tmp_path / "site.toml"
    site.write_text(SITE.format(path=path))
    try:
        status, out, err = await _gridgate("read", "manhole-011", "--config", str(site))
        assert status == 0, err
        reading = json.loads(out)
        assert reading["readings"]["tilt_x"] == {"value": 0.6, "unit": "°", "check": "ok"}
        assert reading["readings"]["battery"]["check"] == "out_of_range"
        assert reading["counters"]["requests"] == 1 and reading["counters"]["ok"] == 1
        assert reading["bus"] == f"{path} 4800 8N1"

        status, out, err = await _gridgate("probe", "manhole-011", "--config", str(site), "--count", "3")
        assert status == 0, err
        assert out.count("manhole-011 unit 11") == 3 and "\033[" not in out  # no terminal: plain blocks
        assert "OUT OF RANGE 2–15" in out and "3 read(s)" in out

        status, out, err = await _gridgate(
            "read", "--serial", path, "--baud", "9600", "--unit", "5", "--profile", "manhole-cover"
        )
        assert status == 3 and "no answer" in json.loads(out)["error"]  # the dead unit
    finally:
        await server.stop()


async def test_probe_flags_stuck_values_and_a_swapped_word_order() -> None:
    server = _cabinet()
    path = await server.serve_pty()
    dust = server.devices[1]
    dust.set("pm10", 87.5)
    # The map says ABCD; this unit sends CDAB for pm25 (a common vendor difference).
    registers = dust.holding[4:6]
    dust.holding[4:6] = [registers[1], registers[0]]
    profile = load_profile("dust-monitor", default_profile_dirs())
    target = ProbeTarget("dust-1", BusConfig(id="b", device=path), 1, profile.channels)
    probe = Probe(target)
    try:
        for _ in range(STUCK_READS):
            sample = await probe.sample()
    finally:
        probe.close()
        await server.stop()
    checks = {c.channel: c for c in sample.checks}
    assert checks["pm10"].value == 87.5 and checks["pm10"].check == "ok"
    assert any("stuck?" in note for note in checks["pm10"].notes)
    assert any("word order? with word_order = 'little'" in note for note in checks["pm25"].notes)
    lines = render(target, sample, reads=probe.reads, rate=5.0, color=False)
    assert all(len(line) <= 80 for line in lines)
    assert sample.counters["requests"] == STUCK_READS and sample.counters["timeouts"] == 0
