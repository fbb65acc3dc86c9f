"""The documented signing: the bytes in docs/remote-management.md are what the code signs, and verify."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.errors import ConfigError
from firmware_tools.command_client import Signer
from gateway.config import parse_config
from gateway.remote.signing import (
    check_signature,
    new_key_pair,
    parse_public_key,
    sign_request,
    signed_bytes,
)
from tests.conftest import gateway_toml
from tests.helpers import run_gridgate
from tests.test_mqtt_api_doc import documented_examples

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_documented_bytes_are_what_the_example_ack_signs_and_it_verifies() -> None:
    text = (DOCS / "remote-management.md").read_text()
    (documented,) = re.findall(r"<!-- signed bytes -->\n```\n(.*?)\n```", text)
    public = parse_public_key(re.search(r"public key is `([^`]+)`", text).group(1))  # type: ignore[union-attr]
    requests = [e for schema, e in documented_examples() if schema == "command-request.json"]
    assert signed_bytes(requests[0]).decode() == documented
    assert all(check_signature(r, public) for r in requests), "every documented request is really signed"


def test_order_and_spacing_on_the_wire_do_not_matter_but_every_field_does() -> None:
    key = Ed25519PrivateKey.generate()
    request = sign_request({"command": "verify", "device": "井盖-3", "gateway": "gw-1"}, key, "cc")
    reordered = json.loads(json.dumps(dict(reversed(list(request.items()))), indent=2))
    assert check_signature(reordered, key.public_key())
    for field, value in (("device", "井盖-4"), ("gateway", "gw-2")):
        assert not check_signature({**request, field: value}, key.public_key()), field
    assert not check_signature({**request, "auth": {**request["auth"], "ts": 0}}, key.public_key())
    assert not check_signature({**request, "reply_to": "x"}, key.public_key())


def test_a_new_key_pair_signs_and_its_printed_public_key_verifies() -> None:
    from cryptography.hazmat.primitives import serialization

    pem, public = new_key_pair()
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    request = sign_request({"command": "rebirth", "gateway": "gw-1"}, private, "maint")
    assert check_signature(request, parse_public_key(public))


async def test_keys_new_writes_a_private_key_and_prints_the_table_a_config_trusts(tmp_path: Path) -> None:
    status, out, err = await run_gridgate("keys", "new", "cc-main", "--dir", str(tmp_path))
    assert status == 0, err
    key = tmp_path / "cc-main.key"
    assert key.stat().st_mode & 0o777 == 0o600
    site = gateway_toml(broker_port=1883, modbus_port=502, storage=tmp_path, prefix="gridgate/v1")
    config = parse_config(site + out)
    signer = Signer.from_file(key)
    request = signer.sign({"command": "ack", "event_id": "e"}, "gw-test-01")
    assert check_signature(request, parse_public_key(config.commands.keys["cc-main"].public_key))
    status, _, err = await run_gridgate("keys", "new", "cc-main", "--dir", str(tmp_path))
    assert status == 2 and "exists" in err  # never overwrites a key


def test_a_bad_trusted_key_is_a_config_error_naming_it(tmp_path: Path) -> None:
    site = gateway_toml(broker_port=1883, modbus_port=502, storage=tmp_path, prefix="gridgate/v1")
    broken = site + '\n[commands.keys.cc-old]\npublic_key = "dG9vIHNob3J0"\nrole = "boss"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(broken)
    problems = "\n".join(caught.value.problems)
    assert "commands.keys.cc-old.public_key" in problems and "9 bytes" in problems
    assert "commands.keys.cc-old.role" in problems
