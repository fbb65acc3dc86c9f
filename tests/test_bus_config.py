"""Buses and profiles in the site config: what a technician writes, and what `check` says of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from contracts.errors import ConfigError
from drivers.modbus.config import ModbusConfig
from gateway.config import load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "configs" / "rs485.toml"


def _problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="site.toml", check_files=False, **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


def test_the_sample_cabinet_takes_its_register_maps_from_the_shipped_profiles() -> None:
    config, _ = load_config(SAMPLE, check_files=False)  # its broker CA is the cabinet's, not here
    dust = next(d for d in config.devices if d.id == "dust-01")
    assert isinstance(dust, ModbusConfig) and dust.profile == "dust-monitor"
    ids = [ch.id for ch in dust.channels]
    assert "pm10" in ids and "wind_direction" not in ids, "the override left the vane out"
    assert [b.id for b in config.section("buses")] == ["rs485-1", "rs485-2"]


BROKEN = [
    (
        "typo in a bus key",
        ('device = "/dev/serial/by-id/', 'devicex = "/dev/serial/by-id/'),
        ["buses[0].devicex: unknown key (check its spelling against the documentation)"],
    ),
    (
        "serial port missing",
        ('device = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K5XYZ-if00-port0"\n', ""),
        ["buses[0]: device: required for transport 'rtu' (e.g. /dev/ttyUSB0)"],
    ),
    (
        "device server with no port",
        ("port = 8899\n", ""),
        ["buses[1]: host and port: required for transport 'rtu_tcp'"],
    ),
    (
        "device on a bus that is not there",
        ('bus = "rs485-2"', 'bus = "rs485-9"'),
        ["devices[4].bus: no bus 'rs485-9' (buses: rs485-1, rs485-2)"],
    ),
    (
        "two devices answering to one address",
        ("unit_id = 12", "unit_id = 11"),
        ["devices[3].unit_id: unit 11 is already device 'manhole-017' on bus 'rs485-1'"],
    ),
    ("unit id out of range", ("unit_id = 12", "unit_id = 248"), ["devices[3].unit_id: must be ≤ 247"]),
    ("bad parity", ('parity = "N"', 'parity = "X"'), ["buses[0].parity: must be 'N', 'E' or 'O'"]),
]


@pytest.mark.parametrize(("change", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_a_broken_bus_setup_names_what_and_where(change: tuple[str, str], expected: list[str]) -> None:
    text = SAMPLE.read_text()
    assert change[0] in text
    assert _problems(text.replace(change[0], change[1], 1)) == expected


def test_an_unknown_profile_lists_the_ones_there_are() -> None:
    text = SAMPLE.read_text().replace('profile = "smoke-panel"', 'profile = "smoke-pannel"')
    [problem] = _problems(text)
    assert problem.startswith("devices[4].profile: profile 'smoke-pannel'")
    for name in ("dust-monitor", "manhole-cover", "oil-fume-monitor", "smoke-panel"):
        assert name in problem


def test_a_bad_override_is_reported_at_the_device() -> None:
    text = SAMPLE.read_text().replace(
        '{ id = "wind_direction", enabled = false }', '{ id = "pm10", scale = "ten" }'
    )
    assert _problems(text) == [
        "devices[0].channels[1].scale: Input should be a valid number, unable to parse string as a number"
    ]


def test_a_site_profile_beside_the_config_shadows_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "smoke-panel.toml").write_text(
        'description = "our panel: one zone"\n'
        '[[channels]]\nid = "z1_alarm"\naddress = 0\ntype = "bits"\nbit = 0\n'
    )
    site = tmp_path / "site.toml"
    site.write_text(SAMPLE.read_text())
    config, _ = load_config(site, check_files=False)
    panel = next(d for d in config.devices if d.id == "smoke-panel-01")
    assert [ch.id for ch in panel.channels] == ["z1_alarm"]


def test_check_explain_shows_each_bus_plan_and_its_time_at_the_baud_rate(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("a CA certificate\n")
    site = tmp_path / "site.toml"
    site.write_text(SAMPLE.read_text().replace("/etc/gridgate/ca.pem", str(ca)))
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "check", "--explain", str(site)],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    bus = next(line for line in lines if line.startswith("bus rs485-1"))
    assert "9600 8N1" in bus and "4 request(s) per cycle" in bus
    dust = next(line for line in lines if "dust-01" in line)
    # 8-byte request + 5 + 2×11-byte answer at 10 bits per character, two 3.6 ms gaps: ~44 ms
    assert "1 read(s) [holding 0+11], ~44 ms every 5 s" in dust
