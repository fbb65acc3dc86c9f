"""Which path a config change takes, and what it says changed (the ``apply`` of config/status)."""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from gateway.service.changes import changes_between
from tests.conftest import gateway_toml

BUS = """
[[buses]]
id = "line-1"
transport = "tcp"
host = "127.0.0.1"
port = 1502

[[devices]]
id = "fume-01"
driver = "modbus"
bus = "line-1"
unit_id = 1
channels = [{ id = "fume", address = 0, type = "uint16", unit = "mg/m3" }]
"""


def _site(tmp_path: Path, extra: str = "") -> str:
    extra += "\n[commands]\napply_window_s = 3.0\n"
    return gateway_toml(broker_port=1883, modbus_port=1502, storage=tmp_path, prefix="test/c", extra=extra)


def test_what_takes_which_path(tmp_path: Path) -> None:
    site = _site(tmp_path, BUS)
    old = parse_config(site)
    cases = {
        "a bus's port": (
            site.replace("port = 1502\n\n[[devices]]", "port = 1503\n\n[[devices]]"),
            "piecewise",
        ),
        "the uplink": (site.replace("health_s = 0.5", "health_s = 1.0"), "restart"),
        "a rule": (site.replace("high = 150.0", "high = 140.0"), "restart"),
        "the commands' window": (site.replace("apply_window_s = 3.0", "apply_window_s = 5.0"), "piecewise"),
    }
    seen = {}
    for name, (text, path) in cases.items():
        assert text != site, name
        changes = changes_between(old, parse_config(text))
        seen[name] = (changes.path, changes.as_status()["changed"], changes.as_status()["restarted"])
        assert changes.path == path, (name, seen[name])
    assert seen["a bus's port"] == ("piecewise", ["buses"], ["modbus:line-1"])
    assert seen["the uplink"][1] == ["uplink"] and seen["the uplink"][2] == []
    assert seen["the commands' window"] == ("piecewise", ["commands"], [])
    assert changes_between(old, parse_config(site)).as_status()["changed"] == []


def test_a_device_moved_to_another_bus_restarts_both_buses(tmp_path: Path) -> None:
    two = BUS + BUS.split("[[devices]]")[0].replace("line-1", "line-2").replace("1502", "1504")
    old = parse_config(_site(tmp_path, two))
    new = parse_config(_site(tmp_path, two.replace('bus = "line-1"', 'bus = "line-2"')))
    changes = changes_between(old, new)
    assert changes.path == "piecewise"
    assert sorted(changes.restarted) == ["modbus:line-1", "modbus:line-2"]
    assert changes.added == () and changes.removed == ()
