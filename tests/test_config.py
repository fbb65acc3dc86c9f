"""Broken site configs: every problem reported at once, each with its path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts.errors import ConfigError
from gateway.config import load_config, parse_config
from tests.conftest import gateway_toml

ROOT = Path(__file__).resolve().parent.parent


def _valid(**kwargs: Any) -> str:
    return gateway_toml(broker_port=1883, modbus_port=502, storage=Path("/tmp/x"), prefix="gg/v1", **kwargs)


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="site.toml")
    return caught.value.problems


def test_the_shipped_demo_config_is_valid() -> None:
    config, digest = load_config(ROOT / "configs" / "demo.toml")
    assert config.gateway.id == "gw-demo-01" and len(digest) == 16
    assert [r.channel for r in config.rules] == [
        "pm10",
        "noise",
        "fume",
        "smoke_alarm",
        "tilt_x",
        "z1_alarm",
        "intrusion",
    ]


BROKEN = [
    (
        "port out of range",
        lambda t: t.replace("port = 502", "port = 70000"),
        ["devices[0].port: must be ≤ 65535"],
    ),
    (
        "typo in a key",
        lambda t: t.replace("site =", "sitte ="),
        [
            "gateway.sitte: unknown key (check its spelling against the documentation)",
            "gateway.site: required",
        ],
    ),
    (
        "rule on a missing channel",
        lambda t: t.replace('channel = "pm10"', 'channel = "pm1"'),
        [
            "rules[0].channel: no channel 'pm1' on device 'dust-01' (channels: humidity, noise, pm10, pm25,"
            " temperature, tsp, wind_speed)"
        ],
    ),
    (
        "rule on a missing device",
        lambda t: t.replace('device = "dust-01"', 'device = "dust-02"'),
        ["rules[0].device: no device 'dust-02' (devices: dust-01)"],
    ),
    (
        "unknown driver",
        lambda t: t.replace('driver = "modbus_tcp"', 'driver = "modbus_tpc"'),
        [
            "devices[0].driver: unknown driver 'modbus_tpc'"
            " (one of camera, gpio, hj212, modbus, modbus_tcp, platform)"
        ],
    ),
    (
        "bad register type",
        lambda t: t.replace('type = "float32"', 'type = "float33"', 1),
        [
            "devices[0].channels[0].type: must be 'int16', 'uint16', 'int32', 'uint32', 'float32', "
            "'int64', 'uint64', 'float64' or 'bits'"
        ],
    ),
    (
        "limits the wrong way round",
        lambda t: t.replace("high = 150.0", "high = 150.0\nlow = 200.0"),
        ["rules[0]: low (200.0) must be below high (150.0)"],
    ),
    (
        "rule with no limit",
        lambda t: t.replace("high = 150.0", ""),
        ["rules[0]: give high, low, or one of window, rate, health, anomaly"],
    ),
    ("negative hold", lambda t: t.replace("hold_s = 0.0", "hold_s = -1"), ["rules[0].hold_s: must be ≥ 0"]),
    ("not TOML", lambda t: t + "\n[[devices]\n", None),
    (
        "several problems at once",
        lambda t: t.replace("port = 502", "port = 0").replace(
            'grid_cell = "330106001001"', 'grid_cell = "330 106"'
        ),
        ["gateway.grid_cell: must match ^[0-9A-Za-z-]{1,32}$", "devices[0].port: must be ≥ 1"],
    ),
    (
        "duplicate device",
        lambda t: t + t[t.index("[[devices]]") : t.index("[[rules]]")],
        ["devices[1].id: duplicate device id 'dust-01'"],
    ),
    (
        "a rule's relay on a missing device",
        lambda t: t.replace(
            'category = "env.dust.pm10"',
            'category = "env.dust.pm10"\noutput = { device = "relays", channel = "relay1" }',
        ),
        ["rules[0].output.device: no device 'relays' (devices: dust-01)"],
    ),
    (
        "a rule's relay on a channel that is no writable coil",
        lambda t: t.replace(
            'category = "env.dust.pm10"',
            'category = "env.dust.pm10"\noutput = { device = "dust-01", channel = "pm10" }',
        ),
        [
            "rules[0].output.channel: not a writable output: 'pm10' on device 'dust-01'"
            " (outputs: none; declare a coil with writable = true)"
        ],
    ),
    (
        "a correlation naming a missing device",
        lambda t: (
            t
            + '\n[[correlations]]\nname = "smoke-and-camera"\n'
            + 'members = [{ category = "fire" }, { device = "cam-9" }]\n'
        ),
        [
            "correlations[0].members[1].device: correlation 'smoke-and-camera' names no device 'cam-9'"
            " (devices: dust-01)"
        ],
    ),
]


@pytest.mark.parametrize(("why", "breaks", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_names_every_problem_and_where(why: str, breaks, expected: list[str] | None) -> None:  # type: ignore[no-untyped-def]
    problems = _problems(breaks(_valid()))
    if expected is None:
        assert len(problems) == 1 and problems[0].startswith("not valid TOML: ")
        assert "line" in problems[0]
    else:
        assert sorted(problems) == sorted(expected)


def _gridgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def test_check_prints_a_summary_and_exits_0() -> None:
    result = _gridgate("check", "configs/demo.toml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "configs/demo.toml: ok — gateway gw-demo-01, 7 device(s), 79 channel(s), 7 rule(s)"
    )


def test_check_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "site.toml"
    broken.write_text(
        _valid().replace("port = 502", "port = 70000").replace('channel = "pm10"', 'channel = "pm1"')
    )
    result = _gridgate("check", str(broken))
    assert result.returncode == 2
    assert "devices[0].port: must be ≤ 65535" in result.stderr
    assert result.stdout == ""


def test_check_of_a_missing_file_says_so(tmp_path: Path) -> None:
    result = _gridgate("check", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "cannot read the file: No such file or directory" in result.stderr


def test_version() -> None:
    from gateway import __version__

    result = _gridgate("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"gridgate {__version__}"


def test_a_devices_secret_files_are_resolved_and_checked_like_the_uplinks(tmp_path: Path) -> None:
    site = """
[gateway]
id = "gw-1"
site = "s"
grid_cell = "330106001001"
[uplink]
host = "127.0.0.1"
[cameras]
port = 8090
[[devices]]
id = "cam-01"
driver = "camera"
format = "hikvision"
push_auth = { auth = "digest", username = "cam01", password_file = "credential:cam01-push" }
[devices.snapshot]
url = "http://192.168.1.64/ISAPI/Streaming/channels/101/picture"
username = "gridgate"
password_file = "cam01.pw"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(site, config_dir=tmp_path)
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "devices[0].push_auth.password_file",
        "devices[0].snapshot.password_file",
    ]
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "cam01-push").write_text("s3cret\n")
    (tmp_path / "cam01.pw").write_text("s3cret\n")
    config = parse_config(site.replace('"cam01.pw"', f'"{tmp_path / "cam01.pw"}"'), config_dir=tmp_path)
    camera = config.devices[0]
    assert camera.push_auth.password_file == tmp_path / "credentials" / "cam01-push"  # type: ignore[attr-defined]
