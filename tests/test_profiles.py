"""Device profiles: the shipped ones are sound, lookups and overrides behave, errors say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.errors import ConfigError
from contracts.profiles import read_profile, resolve_channels
from drivers.modbus.profiles import (
    SHIPPED_PROFILES,
    available_profiles,
    default_profile_dirs,
    load_profile,
)
from drivers.modbus.registers import WIDTH, ModbusChannel

SHIPPED = ["di-8", "dust-monitor", "manhole-cover", "oil-fume-monitor", "relay-8", "smoke-panel"]


def test_every_shipped_profile_is_listed() -> None:
    assert available_profiles(default_profile_dirs()) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_profile_loads_with_unique_ids_and_no_overlapping_registers(name: str) -> None:
    profile = load_profile(name, default_profile_dirs())
    assert profile.name == name and profile.description
    ids = [ch.id for ch in profile.channels]
    assert len(ids) == len(set(ids))
    owner: dict[tuple[str, int], str] = {}
    bits_owner: dict[tuple[str, int, int], str] = {}
    for ch in profile.channels:
        for register in range(ch.address, ch.address + WIDTH[ch.type]):
            key = (ch.table, register)
            claim = "bits" if ch.type == "bits" else ch.id
            assert owner.setdefault(key, claim) == claim, f"{ch.id} overlaps {owner[key]}"
        if ch.type == "bits":
            for bit in range(ch.bit or 0, (ch.bit or 0) + ch.bits):
                key3 = (ch.table, ch.address, bit)
                assert bits_owner.setdefault(key3, ch.id) == ch.id, f"{ch.id} overlaps"


def test_the_smoke_panel_has_five_flags_for_each_of_eight_zones() -> None:
    channels = load_profile("smoke-panel", default_profile_dirs()).channels
    assert {ch.address for ch in channels} == set(range(8))
    assert [ch.id for ch in channels[:5]] == [
        "z1_alarm",
        "z1_silenced",
        "z1_fault",
        "z1_tamper",
        "z1_low_battery",
    ]


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_site_profile_shadows_the_shipped_one(tmp_path: Path) -> None:
    _write(
        tmp_path / "profiles",
        "dust-monitor",
        'description = "ours"\n[[channels]]\nid = "pm10"\naddress = 40\ntype = "float32"\n',
    )
    profile = load_profile("dust-monitor", default_profile_dirs(tmp_path))
    assert profile.description == "ours"
    assert profile.channels == (ModbusChannel(id="pm10", address=40, type="float32"),)
    assert default_profile_dirs(tmp_path) == [tmp_path / "profiles", SHIPPED_PROFILES]


def test_an_unknown_profile_lists_the_available_ones(tmp_path: Path) -> None:
    listed = "available: di-8, dust-monitor, lora-manhole-cover, manhole-cover"
    with pytest.raises(ConfigError, match=listed) as caught:
        load_profile("dust-monitr", [tmp_path, SHIPPED_PROFILES])
    assert "'dust-monitr'" in str(caught.value)
    with pytest.raises(ConfigError, match="no such profile"):
        load_profile("../configs/profiles/dust-monitor", [SHIPPED_PROFILES])


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken", 'description = "x"\n[[channels]\n')
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_profile("broken", [tmp_path])
    assert caught.value.source == str(path)


def test_an_invalid_channel_names_the_file_index_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "status",
        'description = "x"\n'
        '[[channels]]\nid = "ok"\naddress = 0\n'
        '[[channels]]\nid = "door"\naddress = 1\ntype = "bits"\nbit = 16\n'
        '[[channels]]\nid = "ok"\naddress = "two"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_profile("status", [tmp_path])
    assert caught.value.source == str(path)
    problems = "\n".join(caught.value.problems)
    assert "channels[1].bit: Input should be less than or equal to 15" in problems
    assert "channels[2].address:" in problems
    assert "channels[2].id: 'ok' appears more than once" in problems


def test_a_profile_without_channels_or_with_unknown_keys_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "empty", 'description = "x"\nchannel = []\n')
    with pytest.raises(ConfigError) as caught:
        read_profile("empty", [tmp_path])
    assert caught.value.problems == ["channels: needs at least one [[channels]] table"]
    _write(tmp_path, "typo", 'description = "x"\nchanel = 1\n[[channels]]\nid = "a"\naddress = 0\n')
    with pytest.raises(ConfigError) as caught:
        load_profile("typo", [tmp_path])
    assert caught.value.problems == ["chanel: unknown key in a Modbus profile"]


def test_channel_dicts_are_plain_and_unvalidated() -> None:
    tables = read_profile("oil-fume-monitor", default_profile_dirs()).channels
    assert tables[0] == {
        "id": "fume",
        "unit": "mg/m³",
        "address": 0,
        "type": "int32",
        "scale": 0.01,
        "plausible": [0.0, 100.0],
    }


def test_overrides_update_drop_and_add_channels_by_id() -> None:
    profile = [{"id": "pm10", "address": 2, "type": "float32"}, {"id": "noise", "address": 6}]
    merged = resolve_channels(
        profile,
        [
            {"id": "pm10", "scale": 0.1},
            {"id": "noise", "enabled": False},
            {"id": "pm1", "address": 12, "type": "float32", "enabled": True},
        ],
    )
    assert merged == [
        {"id": "pm10", "address": 2, "type": "float32", "scale": 0.1},
        {"id": "pm1", "address": 12, "type": "float32"},
    ]
    assert profile[0] == {"id": "pm10", "address": 2, "type": "float32"}


def test_bad_overrides_are_all_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_channels(
            [{"id": "pm10", "address": 2}],
            [
                {"scale": 0.1},
                {"id": "tsp", "enabled": False},
                {"id": "pm10", "enabled": "no"},
                {"id": "tsp", "address": 0},
            ],
        )
    assert caught.value.problems == [
        "overrides[3].id: 'tsp' appears more than once",
        "overrides[0].id: each override needs the channel's id",
        "overrides[1].id: no channel 'tsp' to disable",
        "overrides[2].enabled: must be true or false",
    ]
