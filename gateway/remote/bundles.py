"""Signed config bundles: check one completely before anything changes.

A bundle is a JSON object::

    {"bundle": {"format": 1, "version": 7, "expires": 1795400000,
                "targets": {"gateways": ["gw-01"], "groups": ["district-3"]},
                "config": "<the whole site config, TOML>",
                "profiles": {"dust-monitor.toml": "<TOML>"}},
     "signatures": [{"key": "maint-wang", "sig": "<base64 Ed25519>"}]}

Each signature covers ``canonical_json(bundle)`` (the rules of ``signing``)
and counts when its key is a ``maintainer`` of ``[commands.keys]``; at least
``[commands] bundle_signatures`` distinct keys must have signed. A bundle is
refused — nothing changes — if it is malformed, not signed by enough
maintainers (a bad signature is reported, never counted), not for this gateway
or one of its groups, not newer than the version in force (replay,
downgrade), expired, or its config fails the same validation as
``gridgate check`` (every problem listed) or names another gateway.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.compat import tomllib
from contracts.errors import ConfigError
from gateway.config.load import parse_config
from gateway.config.models import GatewayConfig, GatewayIdentity
from gateway.config.trust import CommandTrust, Role
from gateway.remote.signing import canonical_json, parse_public_key

FORMAT = 1
MAX_BUNDLE_BYTES = 1024 * 1024
_PROFILE_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}\.toml$"


class BundleRefused(Exception):
    """The bundle is not applied; ``code`` for machines, ``problems`` for people (each one)."""

    def __init__(self, code: str, problems: list[str]) -> None:
        super().__init__(f"{code}: " + "; ".join(problems))
        self.code = code
        self.problems = problems


@dataclass(frozen=True)
class CheckedBundle:
    version: int
    expires: int
    config: GatewayConfig
    config_text: str
    profiles: dict[str, str]
    signed_by: tuple[str, ...]
    digest: str  # of the signed bytes: names this bundle in status and logs


def sign_bundle(
    bundle: Mapping[str, Any], key: Ed25519PrivateKey, key_id: str, *, signed: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``signed`` (or a new envelope for ``bundle``) with one more signature, by ``key_id``."""
    body = dict(signed["bundle"]) if signed is not None else dict(bundle)
    earlier: list[dict[str, str]] = list(signed["signatures"]) if signed is not None else []
    signature = base64.b64encode(key.sign(canonical_json(body))).decode("ascii")
    others = [s for s in earlier if s.get("key") != key_id]
    return {"bundle": body, "signatures": [*others, {"key": key_id, "sig": signature}]}


def check_bundle(
    raw: bytes,
    *,
    trust: CommandTrust,
    local: GatewayConfig,
    current_version: int,
    now: float,
) -> CheckedBundle:
    """The bundle in ``raw``, checked; BundleRefused says why not.

    A config without a ``[gateway]`` or ``[storage]`` table (one bundle for a
    whole group) keeps this box's own, from the ``local`` config in force; a
    ``[gateway]`` table must name this gateway, and ``[storage]`` cannot move.
    """
    gateway_id = local.gateway.id
    envelope = _parse(raw)
    body = envelope["bundle"]
    signed_by = _signers(body, envelope["signatures"], trust)
    version, expires, targets = body["version"], body["expires"], body["targets"]
    gateways, groups = targets.get("gateways", []), targets.get("groups", [])
    if gateway_id not in gateways and not set(groups) & set(trust.groups):
        raise BundleRefused(
            "wrong_target",
            [
                f"the bundle is for gateways {gateways} and groups {groups}; this is {gateway_id!r} "
                f"in groups {list(trust.groups)}"
            ],
        )
    if version <= current_version:
        raise BundleRefused(
            "not_newer",
            [f"version {version} is not newer than version {current_version} in force (replay or downgrade)"],
        )
    if expires <= now:
        raise BundleRefused("expired", [f"the bundle expired at {expires} (now {int(now)}); sign a new one"])
    text = _with_own_tables(body["config"], local)
    config = _validate(text, body["profiles"], gateway_id)
    return CheckedBundle(
        version=version,
        expires=expires,
        config=config,
        config_text=text,
        profiles=dict(body["profiles"]),
        signed_by=signed_by,
        digest=hashlib.sha256(canonical_json(body)).hexdigest()[:16],
    )


def _parse(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BUNDLE_BYTES:
        raise BundleRefused("malformed", [f"the bundle is {len(raw)} bytes; at most {MAX_BUNDLE_BYTES}"])
    try:
        envelope = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleRefused("malformed", [f"not JSON: {str(exc)[:128]}"]) from exc
    problems: list[str] = []
    body = envelope.get("bundle") if isinstance(envelope, dict) else None
    if not isinstance(body, dict):
        raise BundleRefused("malformed", ["'bundle' must be an object"])
    if not isinstance(envelope.get("signatures"), list) or not envelope["signatures"]:
        raise BundleRefused(
            "unsigned", ["'signatures' is missing or empty: sign it with gridgate fleet sign"]
        )
    if body.get("format") != FORMAT:
        problems.append(f"bundle.format must be {FORMAT}")
    for field in ("version", "expires"):
        value = body.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"bundle.{field} must be a positive integer")
    targets = body.get("targets")
    if not isinstance(targets, dict) or not all(
        isinstance(targets.get(k, []), list) and all(isinstance(t, str) for t in targets.get(k, []))
        for k in ("gateways", "groups")
    ):
        problems.append("bundle.targets must be {gateways: [ids], groups: [names]}")
    if not isinstance(body.get("config"), str):
        problems.append("bundle.config must be the site config's TOML text")
    profiles = body.get("profiles", {})
    if not isinstance(profiles, dict) or not all(
        isinstance(v, str) and re.match(_PROFILE_NAME, k) for k, v in profiles.items()
    ):
        problems.append("bundle.profiles must map file names (name.toml) to TOML text")
    if problems:
        raise BundleRefused("malformed", problems)
    body.setdefault("profiles", {})
    return {"bundle": body, "signatures": envelope["signatures"]}


def _signers(body: dict[str, Any], signatures: list[Any], trust: CommandTrust) -> tuple[str, ...]:
    signed = canonical_json(body)
    good: list[str] = []
    keys: set[str] = set()
    problems: list[str] = []
    for entry in signatures:
        key_id = entry.get("key") if isinstance(entry, dict) else None
        trusted = trust.keys.get(key_id) if isinstance(key_id, str) else None
        if trusted is None or trusted.role is not Role.MAINTAINER:
            problems.append(f"key {str(key_id)[:64]!r} is not a maintainer key of [commands.keys]")
            continue
        try:
            parse_public_key(trusted.public_key).verify(
                base64.b64decode(entry.get("sig", ""), validate=True), signed
            )
        except (ValueError, TypeError, InvalidSignature):
            problems.append(f"the signature by {key_id!r} does not match the bundle (changed after signing?)")
            continue
        if trusted.public_key not in keys:  # one key under two ids is still one signer
            keys.add(trusted.public_key)
            good.append(str(key_id))
    if problems:
        raise BundleRefused("bad_signature", problems)
    if len(good) < trust.bundle_signatures:
        raise BundleRefused(
            "not_enough_signatures",
            [
                f"signed by {len(good)} maintainer key(s) ({', '.join(good)}); this gateway needs "
                f"{trust.bundle_signatures}"
            ],
        )
    return tuple(good)


def _with_own_tables(text: str, local: GatewayConfig) -> str:
    """``text`` with this box's ``[gateway]`` and ``[storage]`` tables first where it has none."""
    try:
        given = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return text  # the validation reports it
    own = []
    if "gateway" not in given:
        own.append(_identity_toml(local.gateway))
    if "storage" not in given:
        storage = local.storage
        own.append(
            f"[storage]\ndirectory = {json.dumps(str(storage.directory))}\nmax_bytes = {storage.max_bytes}\n"
            f"telemetry_commit_s = {storage.telemetry_commit_s!r}\n"
            f"telemetry_coalesce_s = {storage.telemetry_coalesce_s!r}\n"
        )
    if not own:
        return text
    return "# this box's own tables; the bundle is for a group\n" + "\n".join(own) + "\n" + text


def _identity_toml(identity: GatewayIdentity) -> str:
    lines = ["[gateway]", f"id = {json.dumps(identity.id)}", f"site = {json.dumps(identity.site)}"]
    lines.append(f"grid_cell = {json.dumps(identity.grid_cell)}")
    if identity.location is not None:
        where = identity.location
        address = json.dumps(where.address)
        lines.append(f"location = {{ lat = {where.lat!r}, lon = {where.lon!r}, address = {address} }}")
    return "\n".join(lines) + "\n"


def _validate(text: str, profiles: dict[str, str], gateway_id: str) -> GatewayConfig:
    """The same validation as ``gridgate check``, the bundle's profiles in their own directory."""
    with tempfile.TemporaryDirectory(prefix="gridgate-bundle-") as scratch:
        directory = Path(scratch)
        (directory / "profiles").mkdir()
        for name, profile in profiles.items():
            (directory / "profiles" / name).write_text(profile, encoding="utf-8")
        try:
            config = parse_config(text, source="bundle.config", config_dir=directory, check_files=False)
        except ConfigError as exc:
            raise BundleRefused("invalid", exc.problems) from exc
    if config.gateway.id != gateway_id:
        raise BundleRefused(
            "invalid",
            [f"gateway.id: the config is for {config.gateway.id!r}, this gateway is {gateway_id!r}"],
        )
    return config
