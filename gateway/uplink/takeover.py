"""Another box connecting with our client id: tell it from an ordinary loss, and stop the ping-pong.

A broker allows one connection per client id and ends the older one when a
second arrives. Two boxes sharing an id (a copied config with a fixed
``client_id``) would then take turns kicking each other off, every
reconnect delay, for ever. An MQTT 5 broker may say so (DISCONNECT with
reason 0x8E, "session taken over"); MQTT 3.1.1 brokers, and Mosquitto 2.0 under
either protocol, only close the socket, so there it is inferred from repeated
drops soon after each successful connect. Once
detected, each further takeover doubles how long the gateway stays away
(from ``reconnect_max_s`` up to an hour), so the box that holds the session
keeps it for longer and longer, and the notice and log line tell a
technician what to fix.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from contracts.backoff import backoff_delays
from gateway.timestamps import iso_utc
from gateway.uplink.connection import SESSION_TAKEN_OVER

QUICK_DROPS = 3  # losses in a row, each within keepalive_s of connecting, that mean a takeover on 3.1.1
TAKEOVER_CAP_S = 3600.0


class TakeoverWatch:
    """Looks at every lost connection; says how long to stay away when the session was taken over."""

    def __init__(self, *, quick_s: float, first_s: float, cap_s: float = TAKEOVER_CAP_S) -> None:
        self._quick_s = quick_s
        self._first_s = first_s
        self._cap_s = max(cap_s, first_s)
        self._quick_drops = 0
        self._delays: Iterator[float] | None = None
        self.takeovers = 0  # since the last ordinary loss: 1 on the first, when the notice goes

    def lost(self, *, reason: int | None, lasted_s: float, broker_alive: bool) -> str | None:
        """How the broker showed a takeover ("reason code 0x8E", "N drops ..."), None for an ordinary loss.

        ``broker_alive``: the broker still accepts connections, so it ended ours on purpose; a node
        that died (and so dropped us quickly, again and again in a failing cluster) is no takeover.
        """
        quick = lasted_s < self._quick_s and broker_alive
        self._quick_drops = self._quick_drops + 1 if quick else 0
        if reason == SESSION_TAKEN_OVER:
            evidence = "the broker said so (reason code 0x8E, session taken over)"
        elif self._quick_drops >= QUICK_DROPS:
            evidence = f"{self._quick_drops} connections in a row dropped within {self._quick_s:g} s"
        else:
            if lasted_s >= self._quick_s:
                self._delays = None
                self.takeovers = 0
            return None
        if self._delays is None:
            self._delays = backoff_delays(self._first_s, self._cap_s)
        self.takeovers += 1
        return evidence

    def stay_away_s(self) -> float:
        """The delay before the next attempt after a takeover: doubling, jittered."""
        assert self._delays is not None, "only after lost() reported a takeover"
        return next(self._delays)


def taken_over_notice(*, client_id: str, broker: str, evidence: str, retry_in_s: float) -> dict[str, Any]:
    """The notice a gateway publishes (on its next connection) after its session was taken over."""
    return {
        "ts": iso_utc(time.time()),
        "notice": "session_taken_over",
        "reason": evidence,
        "client_id": client_id,
        "broker": broker,
        "retry_in_s": round(retry_in_s, 1),
    }
