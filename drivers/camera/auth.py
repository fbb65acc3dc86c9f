"""HTTP Basic and Digest (RFC 7616, MD5, qop=auth) on the server side, as cameras speak them.

:class:`Guard` answers whether a request's ``Authorization`` header is good
for one user, and which ``WWW-Authenticate`` challenge to send when not.
Nonces are stateless (time + HMAC), so a guard holds no per-client memory
that a flood could grow; a nonce older than ``nonce_s`` is refused as stale.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time

from contracts.evidence import HttpAuth

_PARAM_RE = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]+))')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class Guard:
    """Checks one user's credentials with ``scheme``; NONE lets everyone in."""

    def __init__(
        self,
        *,
        scheme: HttpAuth,
        username: str = "",
        password: str = "",
        realm: str = "gridgate",
        nonce_s: float = 300.0,
    ) -> None:
        self.scheme = scheme
        self._username = username
        self._password = password
        self._realm = realm
        self._nonce_s = nonce_s
        self._key = secrets.token_bytes(16)

    def allows(self, header: str | None, method: str, *, now: float | None = None) -> bool:
        """True when ``header`` (the request's Authorization) proves the user, for ``method``."""
        if self.scheme is HttpAuth.NONE:
            return True
        if not header:
            return False
        if self.scheme is HttpAuth.BASIC:
            return self._basic(header)
        return self._digest(header, method, time.time() if now is None else now)

    def challenge(self, *, now: float | None = None) -> str:
        """The ``WWW-Authenticate`` value to send with a 401."""
        if self.scheme is HttpAuth.BASIC:
            return f'Basic realm="{self._realm}"'
        nonce = self._nonce(time.time() if now is None else now)
        return f'Digest realm="{self._realm}", qop="auth", algorithm=MD5, nonce="{nonce}"'

    def _basic(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self._username) & hmac.compare_digest(password, self._password)

    def _nonce(self, now: float) -> str:
        stamp = f"{int(now):x}"
        mac = hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{stamp}.{mac}"

    def _fresh(self, nonce: str, now: float) -> bool:
        stamp, _, mac = nonce.partition(".")
        expected = hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        try:
            issued = int(stamp, 16)
        except ValueError:
            return False
        return hmac.compare_digest(mac, expected) and 0 <= now - issued <= self._nonce_s

    def _digest(self, header: str, method: str, now: float) -> bool:
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "digest":
            return False
        params = {
            m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _PARAM_RE.finditer(rest)
        }
        need = ("username", "realm", "nonce", "uri", "response")
        if any(k not in params for k in need) or not self._fresh(params["nonce"], now):
            return False
        if params["username"] != self._username or params["realm"] != self._realm:
            return False
        ha1 = _md5(f"{self._username}:{self._realm}:{self._password}")
        ha2 = _md5(f"{method}:{params['uri']}")
        if params.get("qop") == "auth":
            expected = _md5(
                f"{ha1}:{params['nonce']}:{params.get('nc', '')}:{params.get('cnonce', '')}:auth:{ha2}"
            )
        else:
            expected = _md5(f"{ha1}:{params['nonce']}:{ha2}")
        return hmac.compare_digest(expected, params["response"])
