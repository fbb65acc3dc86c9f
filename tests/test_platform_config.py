"""Platform config: what a site may write, what is refused and how, profiles merged over entries."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from drivers.platform import PlatformConnection, PlatformDeviceConfig, cross_check
from drivers.platform.config import DEFAULT_TOPICS
from tests.platform_support import profile_device


def _connection(**entry: Any) -> PlatformConnection:
    return PlatformConnection.model_validate(
        {"id": "lora", "host": "cs.local", "format": "chirpstack_v4", **entry}
    )


def _device(**entry: Any) -> dict[str, Any]:
    return {"id": "dev-1", "driver": "platform", "platform": "lora", "match": "a840", **entry}


def _refused(model: type[Any], entry: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(entry)
    assert words in str(caught.value), str(caught.value)


def test_chirpstack_subscribes_to_its_uplink_events_unless_told_otherwise() -> None:
    assert (
        _connection().subscriptions == DEFAULT_TOPICS["chirpstack_v4"] == ("application/+/device/+/event/up",)
    )
    assert _connection(topics=["application/abc/device/+/event/up"]).subscriptions == (
        "application/abc/device/+/event/up",
    )


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"format": "nbiot_json"}, "has no standard topic; give topics"),
        ({"topics": ["a/#/b"]}, "# may only be the last level"),
        ({"topics": ["a/b+"]}, "is not an MQTT topic filter"),
        ({"reconnect_min_s": 5, "reconnect_max_s": 1}, "reconnect_max_s must not be below"),
        (
            {"tls": {"ca_file": "ca.pem", "cert_file": "c.pem"}},
            "cert_file and key_file must be given together",
        ),
        ({"json": {"device_id": "x"}}, "only read with format = json"),
        ({"format": "mqtt"}, "'chirpstack_v4', 'nbiot_json' or 'json'"),
    ],
)
def test_a_bad_platform_entry_says_how_to_fix_it(entry: dict[str, Any], words: str) -> None:
    _refused(
        PlatformConnection, {"id": "lora", "host": "cs.local", "format": "chirpstack_v4", **entry}, words
    )


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"channels": [{"id": "a", "path": "object..x"}]}, "is not a path"),
        ({"channels": [{"id": "a", "path": "x", "field": "y"}]}, "give path (into the message) or field"),
        ({"channels": [{"id": "a", "field": "nope"}]}, "field 'nope' is not in layout"),
        ({"channels": [{"id": "a"}]}, "give path, field, or a status value that sets it"),
        (
            {
                "channels": [{"id": "a", "path": "x"}],
                "status": {"path": "s", "values": {"1": {"set": {"b": 1}}}},
            },
            "status sets b, which are not channels",
        ),
        (
            {
                "channels": [{"id": "a", "path": "x"}],
                "status": {"path": "s", "values": {"1": {}, "0x01": {}}},
            },
            "two status values are the same number",
        ),
        (
            {"channels": [{"id": "a", "path": "x"}], "status": {"values": {"1": {}}}},
            "give path (into the message) or field (of the byte layout) for the status",
        ),
        (
            {
                "channels": [{"id": "a", "path": "x"}],
                "status": {"path": "s", "values": {"7": {"heartbeat": True, "quality": "ok"}}},
            },
            "a heartbeat maps nothing",
        ),
        (
            {
                "layout": [{"name": "f", "offset": 0, "type": "u8", "bit": 6, "bits": 3}],
                "channels": [{"id": "a", "field": "f"}],
            },
            "bits 6..8 do not fit in u8",
        ),
        (
            {
                "layout": [{"name": "f", "offset": 0, "type": "f32", "bit": 0}],
                "channels": [{"id": "a", "field": "f"}],
            },
            "a bit field needs an integer type",
        ),
    ],
)
def test_a_bad_device_entry_names_the_problem(entry: dict[str, Any], words: str) -> None:
    _refused(PlatformDeviceConfig, _device(**entry), words)


def test_cross_check_finds_unknown_platforms_and_ids_matched_twice_with_their_paths() -> None:
    channels = [{"id": "a", "path": "x"}]
    devices = [
        PlatformDeviceConfig.model_validate(_device(id="c1", match="A84041", channels=channels)),
        PlatformDeviceConfig.model_validate(_device(id="c2", match="a84041", channels=channels)),
        PlatformDeviceConfig.model_validate(
            _device(id="c3", platform="aep", match="a84041", channels=channels)
        ),
    ]
    problems = list(cross_check(list(enumerate(devices)), [_connection()]))
    assert problems == [
        "devices[1].match: 'a84041' on platform 'lora' is already matched by devices[0]",
        "devices[2].platform: no platform 'aep' (lora); add a [[platforms]] entry with that id",
    ]


@pytest.mark.parametrize("name", ["nbiot-smoke-detector", "lora-manhole-cover"])
def test_a_device_entry_over_each_platform_profile_validates_and_keeps_its_own_keys(name: str) -> None:
    config = profile_device(name, id="dev-1", platform="p", match="x", heartbeat_s=600)
    assert config.driver == "platform" and config.heartbeat_s == 600
    assert config.missed_heartbeats == 2 and config.status is not None


def test_a_site_config_with_platform_problems_names_each_with_its_path() -> None:
    from contracts.errors import ConfigError
    from gateway.config import parse_config

    site = """
[gateway]
id = "gw-1"
site = "s"
grid_cell = "330106001001"
[uplink]
host = "127.0.0.1"
[[platforms]]
id = "lora"
host = "ns.local"
format = "chirpstack_v4"
[[platforms]]
id = "lora"
host = "ns2.local"
format = "nbiot_json"
[[devices]]
id = "smoke-01"
profile = "nbiot-smoke-detector"
platform = "aep"
match = "860374051096202"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(site)
    assert caught.value.problems == [
        "platforms[1]: format nbiot_json has no standard topic; give topics = [...] as the platform's"
        " forwarding rule publishes them",
    ]
    fixed = site.replace('format = "nbiot_json"', 'format = "nbiot_json"\ntopics = ["aep/#"]')
    with pytest.raises(ConfigError) as caught:
        parse_config(fixed)
    assert caught.value.problems == [
        "platforms[1].id: duplicate id 'lora'",
    ]
    config = parse_config(fixed.replace('id = "lora"\nhost = "ns2.local"', 'id = "aep"\nhost = "ns2.local"'))
    smoke = config.devices[0]
    assert isinstance(smoke, PlatformDeviceConfig) and smoke.heartbeat_s == 86400  # from the profile
    assert [p.id for p in config.section("platforms")] == ["lora", "aep"]
