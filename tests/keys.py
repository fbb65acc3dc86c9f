"""Signing keys the test gateways trust: made fresh for each test run, never stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_tools.command_client import Signer
from gateway.remote.signing import public_key_text

COMMAND_CENTER = Signer("test-cc", Ed25519PrivateKey.generate())
MAINTAINER = Signer("test-maint", Ed25519PrivateKey.generate())
STRANGER = Signer("test-cc", Ed25519PrivateKey.generate())  # a trusted id, the wrong key


def trusted_keys_toml() -> str:
    """The ``[commands.keys.*]`` tables that trust :data:`COMMAND_CENTER` and :data:`MAINTAINER`."""
    return "".join(
        f'\n[commands.keys.{s.key_id}]\npublic_key = "{public_key_text(s.private_key.public_key())}"\n'
        f'role = "{role}"\n'
        for s, role in ((COMMAND_CENTER, "command_center"), (MAINTAINER, "maintainer"))
    )


def signed(request: dict[str, Any], signer: Signer = COMMAND_CENTER, gateway: str = "gw-test-01") -> bytes:
    """``request`` signed for ``gateway``, as the payload to publish."""
    return json.dumps(signer.sign(request, gateway)).encode()


def key_file(directory: Path, signer: Signer = COMMAND_CENTER) -> Path:
    """``signer``'s private key as ``gridgate keys new`` writes it, named by its id."""
    path = directory / f"{signer.key_id}.key"
    path.write_bytes(
        signer.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path
