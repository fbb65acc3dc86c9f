"""``gridgate scan`` on a pty line with units at different baud rates and parities, and over TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contracts.errors import DeviceUnreachable
from drivers.modbus.config import BusConfig
from drivers.modbus.lines import SerialLine
from drivers.modbus.profiles import available_profiles, default_profile_dirs, load_profile
from drivers.modbus.scan import LineSetting, ScanPlan, scan
from drivers.simulators.field_devices import make_device
from drivers.simulators.rtu_server import RtuLineServer
from firmware_tools.local_broker import free_port
from gateway.config import parse_config
from tests.helpers import run_gridgate

PROFILES = [load_profile(name, default_profile_dirs()) for name in available_profiles(default_profile_dirs())]


def _cabinet() -> RtuLineServer:
    """A dust monitor at 9600 8N1, an oil-fume monitor at 19200 8O1, a manhole cover at 4800 8O1,
    a smoke panel at 9600 8N1 and a dead unit that never answers (a pty cannot show even parity)."""
    units = {
        1: "dust-monitor",
        2: "oil-fume-monitor",
        11: "manhole-cover",
        21: "smoke-panel",
        5: "manhole-cover",
    }
    devices = [make_device(profile, unit, seed=unit)[0] for unit, profile in units.items()]
    server = RtuLineServer(devices)
    server.settings = {1: (9600, "N"), 2: (19200, "O"), 11: (4800, "O"), 21: (9600, "N")}
    server.devices[5].silent = True
    return server


@pytest.fixture
async def cabinet_pty() -> AsyncIterator[tuple[RtuLineServer, str]]:
    server = _cabinet()
    path = await server.serve_pty()
    yield server, path
    await server.stop()


async def _gridgate(*args: str) -> tuple[int, str, str]:
    return await run_gridgate(*args, timeout=120)


async def test_scan_finds_each_unit_at_its_own_setting_and_names_its_profile(
    cabinet_pty: tuple[RtuLineServer, str], tmp_path: Path
) -> None:
    _, path = cabinet_pty
    skeleton = tmp_path / "found.toml"
    status, out, err = await _gridgate(
        "scan",
        "--serial",
        path,
        "--baud",
        "9600,19200,4800",
        "--units",
        "1-12,21",
        "--write-config",
        str(skeleton),
    )
    assert status == 0, err
    rows = {
        tuple(line.split()[:3]): line for line in out.splitlines() if line[:1].isdigit() and "8" in line[:9]
    }
    assert set(rows) == {
        ("9600", "8N1", "1"),
        ("9600", "8N1", "21"),
        ("19200", "8O1", "2"),
        ("4800", "8O1", "11"),
    }
    assert "dust-monitor" in rows[("9600", "8N1", "1")]
    assert "smoke-panel" in rows[("9600", "8N1", "21")]
    assert "oil-fume-monitor" in rows[("19200", "8O1", "2")]
    assert "manhole-cover" in rows[("4800", "8O1", "11")]
    assert "4 unit(s) answered" in out and " 5 " not in "".join(rows.values())
    # Not a terminal: the progress is plain lines with an estimate, no carriage returns.
    assert "\r" not in err and "left" in err and "100%" in err

    text = skeleton.read_text()
    assert 'profile = "manhole-cover"' in text and "baudrate = 9600" in text
    assert "# answered at 19200 8O1: set the unit to 9600 8N1" in text
    site = '[gateway]\nid = "gw-1"\nsite = "s"\ngrid_cell = "1"\n[uplink]\nhost = "h"\n' + text
    config = parse_config(site)
    assert {d.id for d in config.devices} == {
        "dust-monitor-1",
        "smoke-panel-21",
        "oil-fume-monitor-2",
        "manhole-cover-11",
    }


async def test_the_budget_stops_a_scan_and_says_what_was_not_tried(
    cabinet_pty: tuple[RtuLineServer, str],
) -> None:
    _, path = cabinet_pty
    settings = [LineSetting(b, p) for p in ("N", "E") for b in (9600, 19200)]  # type: ignore[arg-type]
    plan = ScanPlan(transport="rtu", units=range(1, 13), settings=settings, device=path, budget_s=2.0)
    assert plan.estimate_s() > 2.0
    result = await scan(plan, PROFILES)
    assert result.skipped and result.elapsed_s < 2.5
    assert [f.unit for f in result.found] == [1]  # 9600 8N1 was tried first


async def test_scan_over_rtu_tcp_finds_every_unit_behind_the_server() -> None:
    server = _cabinet()
    server.settings = {}  # the device server's serial side is set in its own web page
    port = free_port()
    await server.serve_tcp("127.0.0.1", port)
    try:
        plan = ScanPlan(transport="rtu_tcp", units=range(1, 25), host="127.0.0.1", port=port, reply_s=0.1)
        result = await scan(plan, PROFILES)
    finally:
        await server.stop()
    assert {(f.unit, f.profile) for f in result.found} == {
        (1, "dust-monitor"),
        (2, "oil-fume-monitor"),
        (11, "manhole-cover"),
        (21, "smoke-panel"),
    }


async def test_a_port_in_use_by_a_gateway_is_refused(cabinet_pty: tuple[RtuLineServer, str]) -> None:
    _, path = cabinet_pty
    gateway_side = SerialLine("rs485-1", path, baudrate=9600, bytesize=8, parity="N", stopbits=1)
    await gateway_side.open()
    try:
        plan = ScanPlan(transport="rtu", units=[1], settings=[LineSetting(9600, "N")], device=path)
        with pytest.raises(DeviceUnreachable, match="in use by another program"):
            await scan(plan, PROFILES)
        assert BusConfig(id="x", device=path).where() == path
    finally:
        gateway_side.close()
