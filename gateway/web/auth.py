"""Who may act on the status page: sessions that expire, CSRF tokens, a login rate limit.

Passwords are checked against their hashes in the config (gateway.config.passwords).
A session is a random token in an HttpOnly, SameSite=Strict cookie; each
session has its own CSRF token that every form that changes something must
send back.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Session:
    user: str
    csrf: str
    expires: float


class Sessions:
    """Tokens of logged-in users; each lasts ``ttl_s`` from its last use."""

    def __init__(self, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._by_token: dict[str, Session] = {}

    def start(self, user: str) -> str:
        self._forget_expired()
        token = secrets.token_urlsafe(32)
        self._by_token[token] = Session(user, secrets.token_urlsafe(24), self._clock() + self.ttl_s)
        return token

    def get(self, token: str | None) -> Session | None:
        session = self._by_token.get(token or "")
        if session is None:
            return None
        now = self._clock()
        if session.expires <= now:
            del self._by_token[token or ""]
            return None
        session.expires = now + self.ttl_s
        return session

    def end(self, token: str | None) -> None:
        self._by_token.pop(token or "", None)

    def _forget_expired(self) -> None:
        now = self._clock()
        for token in [t for t, s in self._by_token.items() if s.expires <= now]:
            del self._by_token[token]


class LoginLimiter:
    """At most ``attempts`` failed logins per address in ``window_s``, then refused until it passes."""

    def __init__(
        self, *, attempts: int = 5, window_s: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, list[float]] = {}

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        now = self._clock()
        recent = [t for t in self._failures.get(address, []) if now - t < self.window_s]
        self._failures[address] = recent
        if len(recent) < self.attempts:
            return 0.0
        return self.window_s - (now - recent[0])

    def failed(self, address: str) -> None:
        self._failures.setdefault(address, []).append(self._clock())
        if len(self._failures) > 10_000:  # a scan from many addresses must not grow this for ever
            self._failures.clear()
