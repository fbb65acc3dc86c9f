"""HJ 212 in the site config: `gridgate check` names every problem with its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.errors import ConfigError
from gateway.config import load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent

SITE = """
[gateway]
id = "gw-test-01"
site = "Test site"
grid_cell = "330106001001"

[uplink]
host = "127.0.0.1"

[hj212]
port = 14001
idle_timeout_s = 120

[[devices]]
id = "dust-02"
driver = "hj212"
mn = "010000A8900016F000169DC0"
pw = "123456"
channels = [
    { id = "pm10", code = "a34002", unit = "µg/m³" },
    { id = "tsp", code = "a34001", unit = "µg/m³", scale = 0.001 },
]

[[devices]]
id = "fume-01"
driver = "hj212"
mn = "FUME0001"
pw = "654321"
serial = "/dev/ttyUSB1"
time_zone = "Asia/Urumqi"
channels = [{ id = "fume", code = "YY01", unit = "mg/m³" }]

[[rules]]
device = "dust-02"
channel = "pm10"
high = 150.0
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="site.toml", check_files=False)
    return sorted(caught.value.problems)


def test_a_valid_hj212_site() -> None:
    config = parse_config(SITE)
    assert config.section("hj212") is not None and config.section("hj212").port == 14001
    assert [d.id for d in config.devices] == ["dust-02", "fume-01"]


BROKEN = [
    (
        "bad mn, missing unit, unknown zone",
        lambda t: (
            t.replace('mn = "FUME0001"', 'mn = "FUME;1"')
            .replace(', unit = "mg/m³"', "")
            .replace("Asia/Urumqi", "Mars/Base")
        ),
        [
            "devices[1].channels[0].unit: required",
            "devices[1].mn: must match ^[^;,=&\\s]{1,32}$",
            "devices[1].time_zone: unknown time zone 'Mars/Base' (an IANA name: Asia/Shanghai)",
        ],
    ),
    (
        "code mapped twice",
        lambda t: t.replace('code = "a34001"', 'code = "a34002"'),
        ["devices[0]: code 'a34002' is mapped twice (pm10, tsp)"],
    ),
    (
        "same MN twice",
        lambda t: t.replace('"FUME0001"', '"010000A8900016F000169DC0"'),
        ["devices[1].mn: MN '010000A8900016F000169DC0' is already used by devices[0]"],
    ),
    (
        "TCP device without a listener",
        lambda t: t.replace("[hj212]\nport = 14001\nidle_timeout_s = 120", ""),
        [
            "devices[0]: an hj212 device without `serial` connects over TCP; add an [hj212] section"
            " with the listener's port"
        ],
    ),
    (
        "listener port out of range",
        lambda t: t.replace("port = 14001", "port = 140010"),
        ["hj212.port: must be ≤ 65535"],
    ),
    (
        "unknown CRC mode, no time for a first frame",
        lambda t: t.replace('pw = "654321"', 'pw = "654321"\ncrc = "crc16"').replace(
            "idle_timeout_s = 120", "idle_timeout_s = 120\nfirst_frame_timeout_s = 0"
        ),
        [
            "devices[1].crc: must be 'standard', 'modbus' or 'none'",
            "hj212.first_frame_timeout_s: must be > 0",
        ],
    ),
    (
        "rule on a statistics channel",
        lambda t: t.replace('channel = "pm10"', 'channel = "pm10.hour_avg"'),
        ["rules[0].channel: no channel 'pm10.hour_avg' on device 'dust-02' (channels: pm10, tsp)"],
    ),
]


@pytest.mark.parametrize(("why", "breaks", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_hj212_config_names_every_problem(why: str, breaks, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert _problems(breaks(SITE)) == sorted(expected)


def test_the_shipped_hj212_example_is_valid() -> None:
    config, _ = load_config(ROOT / "configs" / "hj212.toml", check_files=False)
    assert config.section("hj212") is not None and any(d.driver == "hj212" for d in config.devices)
