"""A config bundle is taken only whole, newer, current, for this gateway, and signed by maintainers."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.config import parse_config
from gateway.config.models import GatewayConfig
from gateway.remote.bundles import BundleRefused, CheckedBundle, check_bundle, sign_bundle
from gateway.remote.signing import public_key_text
from gateway.remote.trusted_state import (
    TrustedState,
    TrustedStateError,
    load_trusted,
    save_trusted,
)
from tests.conftest import gateway_toml
from tests.keys import COMMAND_CENTER, MAINTAINER, STRANGER

PROFILE = """
description = "a bench meter: one register"
[[channels]]
id = "pm10"
unit = "µg/m³"
address = 2
type = "float32"
"""


def _site(tmp_path: Path, extra: str = "") -> str:
    return gateway_toml(
        broker_port=1883, modbus_port=502, storage=tmp_path, prefix="gridgate/v1", extra=extra
    )


def _local(tmp_path: Path, extra: str = "") -> GatewayConfig:
    return parse_config(_site(tmp_path, extra))


def _bundle(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "format": 1,
        "version": 8,
        "expires": int(time.time()) + 3600,
        "targets": {"gateways": ["gw-test-01"], "groups": []},
        "config": _site(tmp_path).replace("flap_window_s = 0.2", "flap_window_s = 5.0"),
        "profiles": {},
    }
    body.update(changes)
    return sign_bundle(body, MAINTAINER.private_key, MAINTAINER.key_id)


def _check(envelope: dict[str, Any], config: GatewayConfig, current: int = 7) -> CheckedBundle:
    return check_bundle(
        json.dumps(envelope).encode(),
        trust=config.commands,
        local=config,
        current_version=current,
        now=time.time(),
    )


def _refusal(envelope: dict[str, Any], config: GatewayConfig, current: int = 7) -> BundleRefused:
    with pytest.raises(BundleRefused) as caught:
        _check(envelope, config, current)
    return caught.value


def test_a_signed_newer_bundle_for_this_gateway_is_taken_with_its_new_config(tmp_path: Path) -> None:
    checked = _check(_bundle(tmp_path), _local(tmp_path))
    assert checked.version == 8 and checked.signed_by == ("test-maint",)
    assert checked.config.events.flap_window_s == 5.0


def test_tampered_replayed_old_expired_or_misdirected_bundles_are_refused(tmp_path: Path) -> None:
    local = _local(tmp_path)
    tampered = _bundle(tmp_path)
    tampered["bundle"]["config"] = tampered["bundle"]["config"].replace("high = 150.0", "high = 9999.0")
    assert _refusal(tampered, local).code == "bad_signature"
    assert _refusal(_bundle(tmp_path), local, current=8).code == "not_newer"  # the same one again
    assert _refusal(_bundle(tmp_path, version=3), local).code == "not_newer"  # a downgrade
    assert _refusal(_bundle(tmp_path, expires=int(time.time()) - 1), local).code == "expired"
    other = _bundle(tmp_path, targets={"gateways": ["gw-other"], "groups": ["district-9"]})
    assert "gw-test-01" in str(_refusal(other, local))
    unsigned = {"bundle": _bundle(tmp_path)["bundle"], "signatures": []}
    assert _refusal(unsigned, local).code == "unsigned"


def test_only_maintainer_keys_count_and_m_of_n_is_enforced(tmp_path: Path) -> None:
    body = _bundle(tmp_path)["bundle"]
    by_cc = sign_bundle(body, COMMAND_CENTER.private_key, COMMAND_CENTER.key_id)
    assert "not a maintainer key" in str(_refusal(by_cc, _local(tmp_path)))
    by_stranger = sign_bundle(body, STRANGER.private_key, MAINTAINER.key_id)  # right id, wrong key
    assert _refusal(by_stranger, _local(tmp_path)).code == "bad_signature"

    second = Ed25519PrivateKey.generate()
    two = _local(
        tmp_path,
        extra=f'[commands]\nbundle_signatures = 2\n[commands.keys.second]\nrole = "maintainer"\n'
        f'public_key = "{public_key_text(second.public_key())}"\n'
        f'[commands.keys.alias]\nrole = "maintainer"\n'
        f'public_key = "{public_key_text(MAINTAINER.private_key.public_key())}"\n',
    )
    once = _bundle(tmp_path)
    assert _refusal(once, two).code == "not_enough_signatures"
    same_key_twice = sign_bundle(body, MAINTAINER.private_key, "alias", signed=once)
    assert _refusal(same_key_twice, two).code == "not_enough_signatures"  # one person, two ids
    twice = sign_bundle(body, second, "second", signed=once)
    assert _check(twice, two).signed_by == ("test-maint", "second")


def test_an_invalid_config_is_refused_with_every_problem_listed(tmp_path: Path) -> None:
    broken = (
        _site(tmp_path)
        .replace("port = 502", "port = 99999")
        .replace('severity = "important"', 'severity = "x"')
    )
    refusal = _refusal(_bundle(tmp_path, config=broken), _local(tmp_path))
    assert refusal.code == "invalid" and len(refusal.problems) >= 2
    assert any("devices[0].port" in p for p in refusal.problems), refusal.problems
    assert any("rules[0].severity" in p for p in refusal.problems), refusal.problems
    renamed = _site(tmp_path).replace('id = "gw-test-01"', 'id = "gw-test-02"')
    assert "gw-test-02" in str(_refusal(_bundle(tmp_path, config=renamed), _local(tmp_path)))
    assert _refusal({"bundle": "x", "signatures": [{}]}, _local(tmp_path)).code == "malformed"


def test_the_bundle_brings_its_profiles(tmp_path: Path) -> None:
    site = _site(tmp_path).replace('driver = "modbus_tcp"', 'driver = "modbus_tcp"\nprofile = "bench-meter"')
    site = re.sub(r"channels = \[\n.*?\n\]\n", "", site, count=1, flags=re.DOTALL)
    missing = _refusal(_bundle(tmp_path, config=site), _local(tmp_path))
    assert missing.code == "invalid" and "bench-meter" in str(missing)
    brought = _check(_bundle(tmp_path, config=site, profiles={"bench-meter.toml": PROFILE}), _local(tmp_path))
    assert brought.profiles == {"bench-meter.toml": PROFILE}


def test_the_version_in_force_survives_a_restart_and_a_damaged_file_refuses_all(tmp_path: Path) -> None:
    assert load_trusted(tmp_path) == TrustedState()
    save_trusted(tmp_path, TrustedState(version=8, digest="abc"))
    assert load_trusted(tmp_path) == TrustedState(version=8, digest="abc")
    (tmp_path / "remote" / "trusted.json").write_text('{"vers')
    with pytest.raises(TrustedStateError, match="restore it"):
        load_trusted(tmp_path)
