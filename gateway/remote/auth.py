"""Who sent a command, proven: a signature by a trusted key, fresh, never seen before.

Every refusal says what was wrong and how to sign (docs/remote-management.md).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.config.trust import CommandTrust, Role
from gateway.remote.nonces import KeyValueStore, NonceMemory
from gateway.remote.signing import AUTH_FIELD, check_signature, parse_public_key

HOW_TO_SIGN = (
    "sign it with a key this gateway trusts ([commands.keys] in its config): "
    "gridgate ack/verify --key FILE, or gateway.remote.signing.sign_request; see docs/remote-management.md"
)
_NONCE_RE = re.compile(r"^[0-9A-Za-z_-]{16,64}$")
EVENT_COMMANDS = frozenset({"ack", "verify"})
CENTER_COMMANDS = frozenset({"evidence"})  # a command center, signed; never unsigned, never an operator


class Unauthorised(Exception):
    """The request is not proven to come from someone allowed to send it; ``code`` for machines."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a command runs for: a verified key, an in-process caller, or (if allowed) unsigned."""

    identity: str
    role: Role
    verified: bool

    def may(self, command: str) -> bool:
        if self.role is Role.MAINTAINER or command in EVENT_COMMANDS:
            return True
        return command in CENTER_COMMANDS and self.role is Role.COMMAND_CENTER


class Authoriser:
    """Checks a request's ``auth`` against the trusted keys of ``[commands]``."""

    def __init__(
        self,
        trust: CommandTrust,
        *,
        gateway_id: str,
        store: KeyValueStore | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._trust = trust
        self._gateway_id = gateway_id
        self._keys: dict[str, tuple[Ed25519PublicKey, Role]] = {
            key_id: (parse_public_key(key.public_key), key.role) for key_id, key in trust.keys.items()
        }
        self._clock = clock
        self._nonces = NonceMemory(store, keep_s=2 * trust.max_skew_s)

    def principal(self, request: dict[str, Any]) -> Principal:
        """Who sent ``request``; Unauthorised says why it cannot be believed."""
        auth = request.get(AUTH_FIELD)
        if auth is None:
            if self._trust.allow_unsigned and request.get("command") in EVENT_COMMANDS:
                claimed = request.get("operator")
                return Principal(str(claimed) if claimed else "unsigned", Role.OPERATOR, verified=False)
            raise Unauthorised("unsigned", f"the request is not signed; {HOW_TO_SIGN}")
        if not isinstance(auth, dict):
            raise Unauthorised("bad_signature", f"'auth' must be an object; {HOW_TO_SIGN}")
        key_id, ts, nonce = auth.get("key"), auth.get("ts"), auth.get("nonce")
        if not isinstance(key_id, str) or key_id not in self._keys:
            known = ", ".join(sorted(self._keys)) or "none"
            raise Unauthorised(
                "unknown_key",
                f"key {str(key_id)[:64]!r} is not trusted here (trusted: {known}); {HOW_TO_SIGN}",
            )
        public, role = self._keys[key_id]
        if not check_signature(request, public):
            raise Unauthorised(
                "bad_signature",
                f"the signature does not match key {key_id!r} over the canonical JSON; {HOW_TO_SIGN}",
            )
        if request.get("gateway") != self._gateway_id:
            raise Unauthorised(
                "wrong_gateway", f"the request is signed for gateway {str(request.get('gateway'))[:64]!r}"
            )
        now = self._clock()
        if not isinstance(ts, int) or abs(now - ts) > self._trust.max_skew_s:
            raise Unauthorised(
                "stale",
                f"auth.ts {str(ts)[:32]} is more than {self._trust.max_skew_s} s from the gateway's clock "
                f"({int(now)}); sign again now (and check the clocks)",
            )
        if not isinstance(nonce, str) or not _NONCE_RE.match(nonce):
            raise Unauthorised("bad_signature", "auth.nonce must be 16-64 characters of [0-9A-Za-z_-]")
        if not self._nonces.use(key_id, nonce, ts, now):
            raise Unauthorised(
                "replayed", "this nonce was used before: a request is accepted once; sign anew"
            )
        return Principal(key_id, role, verified=True)
