"""``[commands]``: who may command this gateway — trusted Ed25519 keys, each with a role."""

from __future__ import annotations

import base64
import binascii
from enum import Enum

from pydantic import Field, field_validator

from contracts.config import NAME_RE, StrictModel


class Role(str, Enum):
    """What a key may do; ``maintainer`` may do everything, the others acknowledge and verify."""

    OPERATOR = "operator"
    COMMAND_CENTER = "command_center"
    MAINTAINER = "maintainer"


class TrustedKey(StrictModel):
    public_key: str = Field(description="base64 of the raw 32-byte Ed25519 key (gridgate keys new)")
    role: Role

    @field_validator("public_key")
    @classmethod
    def _ed25519(cls, text: str) -> str:
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ValueError("not base64; paste the public_key line gridgate keys new printed") from exc
        if len(raw) != 32:
            raise ValueError(f"{len(raw)} bytes; an Ed25519 public key is 32 (gridgate keys new makes one)")
        return text


class CommandTrust(StrictModel):
    """Commands are signed by a key named here (docs/remote-management.md) unless unsigned are allowed."""

    allow_unsigned: bool = Field(
        default=False, description="accept unsigned ack/verify with the operator they claim; not advised"
    )
    max_skew_s: int = Field(
        default=300, ge=10, le=86_400, description="a signed request's ts may differ this much from now"
    )
    keys: dict[str, TrustedKey] = Field(default_factory=dict, description="key id = { public_key, role }")
    relay_roles: tuple[Role, ...] = Field(
        default=(Role.MAINTAINER,),
        description="roles whose keys may switch outputs with the relay command (maintainers always may)",
    )
    bundle_signatures: int = Field(
        default=1, ge=1, le=16, description="config bundles need this many maintainer keys' signatures"
    )
    groups: tuple[str, ...] = Field(default=(), description="fleet groups whose bundles this gateway takes")
    apply_window_s: float = Field(
        default=30.0, gt=0, le=3600, description="health must be back this soon after an apply, or undo it"
    )

    @field_validator("keys")
    @classmethod
    def _key_ids(cls, keys: dict[str, TrustedKey]) -> dict[str, TrustedKey]:
        for key_id in keys:
            if not NAME_RE.match(key_id):
                raise ValueError(f"key {key_id!r}: an id is lower-case letters, digits, '.', '-' and '_'")
        return keys
