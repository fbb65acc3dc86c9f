"""Sign and check command requests with Ed25519: the exact bytes, for a client in any language.

A signed request carries an ``auth`` object::

    {"command": "ack", "event_id": "...", "gateway": "gw-01",
     "auth": {"key": "cc-main", "ts": 1764680000, "nonce": "4f2c...", "sig": "base64..."}}

The signature covers :func:`signed_bytes`: the request with ``auth.sig``
removed (``auth.key``, ``auth.ts`` and ``auth.nonce`` stay in), written as JSON
with object keys sorted by code point, no whitespace (separators ``,`` and
``:``), strings as UTF-8 with only ``"``, ``\\`` and control characters
escaped (``\\n`` style where JSON has one, else ``\\u00XX``), and numbers as
integers. That is Python's ``json.dumps(obj, sort_keys=True,
separators=(",", ":"), ensure_ascii=False).encode()`` and JavaScript's
``JSON.stringify`` of a key-sorted copy. ``sig`` is the standard base64 of the
64-byte Ed25519 signature. ``ts`` is Unix time in whole seconds; ``nonce`` is
16 to 64 characters of ``[0-9A-Za-z_-]``, new for every request; ``gateway``
names the gateway the request is for, so it cannot be replayed to another.

This module needs only ``cryptography``: command-center clients import it
without the daemon.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

AUTH_FIELD = "auth"


class KeyFileError(Exception):
    """A key file cannot be read or holds no Ed25519 private key; the message names the file."""


def canonical_json(value: Any) -> bytes:
    """``value`` as the canonical JSON bytes the module docstring describes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_bytes(request: Mapping[str, Any]) -> bytes:
    """The bytes a request's signature covers (see the module docstring)."""
    body = dict(request)
    auth = body.get(AUTH_FIELD)
    if isinstance(auth, Mapping):
        body[AUTH_FIELD] = {k: v for k, v in auth.items() if k != "sig"}
    return canonical_json(body)


def sign_request(
    request: Mapping[str, Any],
    private_key: Ed25519PrivateKey,
    key_id: str,
    *,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """A copy of ``request`` with its ``auth`` (key, ts, nonce, sig); ``request`` names its gateway."""
    if "gateway" not in request:
        raise ValueError("a signed request names the gateway it is for: add 'gateway'")
    auth = {
        "key": key_id,
        "ts": int(time.time() if now is None else now),
        "nonce": nonce or secrets.token_hex(16),
    }
    body = {k: v for k, v in request.items() if k != AUTH_FIELD}
    body[AUTH_FIELD] = auth
    signature = private_key.sign(signed_bytes(body))
    body[AUTH_FIELD] = {**auth, "sig": base64.b64encode(signature).decode("ascii")}
    return body


def check_signature(request: Mapping[str, Any], public_key: Ed25519PublicKey) -> bool:
    """Whether ``request['auth']['sig']`` is ``public_key``'s signature of :func:`signed_bytes`."""
    auth = request.get(AUTH_FIELD)
    if not isinstance(auth, Mapping) or not isinstance(auth.get("sig"), str):
        return False
    try:
        signature = base64.b64decode(auth["sig"], validate=True)
        public_key.verify(signature, signed_bytes(request))
    except (ValueError, InvalidSignature):
        return False
    return True


def new_key_pair() -> tuple[bytes, str]:
    """A new private key as PEM (PKCS #8) and its public key as base64 for a gateway's config."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, public_key_text(private.public_key())


def public_key_text(public: Ed25519PublicKey) -> str:
    """The raw 32-byte public key in standard base64: what ``[commands.keys.*] public_key`` holds."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """The key in :func:`public_key_text`'s form; ValueError says what is wrong with it."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ValueError("public_key is not base64 (gridgate keys new prints one)") from exc
    if len(raw) != 32:
        raise ValueError(f"public_key is {len(raw)} bytes; an Ed25519 public key is 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file written by ``gridgate keys new``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: holds a {type(key).__name__}, not an Ed25519 key")
    return key
