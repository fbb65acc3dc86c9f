"""Which broker of a cluster to try next, and with which protocol.

Every failure moves on to the next server, a connection that could not be made
as well as one that was lost: a dead node is left at once, not retried until
it comes back. Only a whole round of failed attempts waits for the backoff, so
a gateway whose node died is publishing via another after one short jittered
delay (the jitter spreads a node's gateways over the others' first seconds).
"""

from __future__ import annotations

import random

from gateway.config.models import Uplink
from gateway.config.servers import join_server

Server = tuple[str, int]


class ServerRotation:
    """The configured brokers, in order or shuffled once per process, and where we are in them."""

    def __init__(self, config: Uplink, *, rng: random.Random | None = None) -> None:
        self._servers = list(config.endpoints)
        if config.server_order == "shuffle":
            (rng or random.Random()).shuffle(self._servers)
        self._protocol = config.protocol
        self._index = 0
        self._failed_in_round = 0
        self._fell_back: set[Server] = set()

    @property
    def current(self) -> Server:
        return self._servers[self._index]

    @property
    def first(self) -> Server:
        return self._servers[0]

    @property
    def on_first(self) -> bool:
        return self._index == 0

    def where(self, server: Server | None = None) -> str:
        return join_server(*(server or self.current))

    def protocol(self, server: Server | None = None) -> str:
        """``5`` or ``3.1.1``: what to speak to ``server`` (auto: 5 until it refused it)."""
        if self._protocol != "auto":
            return self._protocol
        return "3.1.1" if (server or self.current) in self._fell_back else "5"

    def can_fall_back(self) -> bool:
        return self._protocol == "auto" and self.current not in self._fell_back

    def fall_back(self) -> None:
        """The current server refused MQTT 5: speak 3.1.1 to it from now on."""
        self._fell_back.add(self.current)

    def connected(self) -> None:
        self._failed_in_round = 0

    def failed(self) -> bool:
        """Move on to the next server; True once every server failed since the last connection."""
        self._index = (self._index + 1) % len(self._servers)
        self._failed_in_round += 1
        if self._failed_in_round >= len(self._servers):
            self._failed_in_round = 0
            return True
        return False

    def back_to_first(self) -> None:
        self._index = 0
        self._failed_in_round = 0
