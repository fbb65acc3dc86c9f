"""The listener's connections, and how its slots are shared fairly between them.

One address holds at most ``max_per_address`` connections; a new connection
must send a good frame (a configured MN with its PW) within
``first_frame_timeout_s``, and after that one at least every
``idle_timeout_s`` (bytes alone do not count); when the listener is full, the
idlest connection that never sent a good frame makes room for the newcomer.
A datalogger that proved itself is never pushed out by one that has not.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import cast

from drivers.hj212.config import Hj212Listener
from drivers.hj212.session import Hj212Counters, Session

log = logging.getLogger(__name__)

MAX_UNSENT = 64 * 1024  # answers a client does not read; past this it is cut off
_HINTS = {
    "per_address": "; if dataloggers share this address (NAT), raise [hj212] max_per_address",
    "full": "; every one has sent good frames: raise [hj212] max_connections",
}
# How a link gets its session: its peer, how to write to it, how to drop it when it goes stale.
OpenSession = Callable[[str, Callable[[bytes], None], Callable[[], None]], Session]


class Slots:
    """The connections the listener holds, by address."""

    def __init__(self, listener: Hj212Listener, counters: Hj212Counters) -> None:
        self.listener = listener
        self.counters = counters
        self.links: set[TcpLink] = set()
        self.by_address: Counter[str] = Counter()

    def admit(self, link: TcpLink, host: str) -> str | None:
        """Take ``link`` in (None), or say why not: ``per_address``, ``full``."""
        if self.by_address[host] >= self.listener.max_per_address:
            return "per_address"
        if len(self.links) >= self.listener.max_connections and not self._make_room():
            return "full"
        self.links.add(link)
        self.by_address[host] += 1
        self.counters.connections += 1
        return None

    def leave(self, link: TcpLink, host: str) -> None:
        """Give up ``link``'s slot (once, however often called)."""
        if link in self.links:
            self.links.discard(link)
            self.by_address[host] -= 1
            if self.by_address[host] <= 0:
                del self.by_address[host]

    def _make_room(self) -> bool:
        """Close the idlest link that never sent a good frame; False when every link has."""
        unproven = [link for link in self.links if not link.proven]
        if not unproven:
            return False
        victim = min(unproven, key=lambda link: link.last_byte)
        victim.drop()
        self.counters.evicted_connections += 1
        return True


class TcpLink(asyncio.Protocol):
    """One datalogger's TCP connection."""

    def __init__(
        self, slots: Slots, open_session: OpenSession | None, forget: Callable[[Session], None]
    ) -> None:
        self._slots = slots
        self._open_session = open_session
        self._forget = forget
        self._transport: asyncio.Transport | None = None
        self._session: Session | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._address = ""
        self._opened = 0.0
        self._last_good = 0.0
        self.last_byte = 0.0

    @property
    def proven(self) -> bool:
        """Whether a good frame (a configured MN with its PW) ever came on this link."""
        return self._session is not None and self._session.accepted > 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        slots, listener = self._slots, self._slots.listener
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        host, port = transport.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        refusal = "not_running" if self._open_session is None else slots.admit(self, host)
        if refusal is not None or self._open_session is None:
            self._refuse(peer, refusal or "not_running")
            return
        self._address = host
        self._session = self._open_session(peer, self._transport.write, self.drop)
        loop = asyncio.get_running_loop()
        self._opened = self._last_good = self.last_byte = loop.time()
        self._timer = loop.call_later(
            min(listener.first_frame_timeout_s, listener.idle_timeout_s), self._check_idle
        )
        log.info("hj212 %s: connected", peer)

    def data_received(self, data: bytes) -> None:
        session, transport = self._session, self._transport
        if session is None or transport is None:
            return
        loop = asyncio.get_running_loop()
        self.last_byte = loop.time()
        accepted = session.accepted
        answers = session.feed(data)
        if session.accepted != accepted:
            self._last_good = self.last_byte
        if answers:
            transport.write(b"".join(answers))
        if transport.get_write_buffer_size() > MAX_UNSENT:
            log.warning("hj212 %s: does not read its answers; closing", session.peer)
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._leave()
        if self._session is not None:
            self._forget(self._session)
            self._session.close()
            log.info("hj212 %s: disconnected", self._session.peer)
            self._session = None

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def drop(self) -> None:
        """Free its slot and close it now: its datalogger is back on another link, or room is needed."""
        self._leave()
        self.abort()

    def _leave(self) -> None:
        self._slots.leave(self, self._address)

    def _refuse(self, peer: str, why: str) -> None:
        counters = self._slots.counters
        counters.refused_connections[why] += 1
        if counters.refused_connections[why] % 100 == 1:
            hint = _HINTS.get(why, "")
            log.warning(
                "hj212 %s: refused (%s), %d connections open%s", peer, why, len(self._slots.links), hint
            )
        assert self._transport is not None
        self._transport.abort()

    def _check_idle(self) -> None:
        listener = self._slots.listener
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.proven:
            deadline, why = self._last_good + listener.idle_timeout_s, "no good frame"
        else:
            first = min(listener.first_frame_timeout_s, listener.idle_timeout_s)
            deadline, why = self._opened + first, "no good frame since connecting"
        if now < deadline:
            self._timer = loop.call_later(deadline - now, self._check_idle)
            return
        peer = self._session.peer if self._session else "?"
        if not self.proven:
            self._slots.counters.first_frame_timeouts += 1
        log.info("hj212 %s: %s for %.0f s; closing", peer, why, now - max(self._opened, self._last_good))
        self._transport.close()
