"""Polls held back while the uplink cannot keep up: overload is shed where it costs least.

When devices offer more readings than the box can publish, polling them all
anyway spends the CPU on readings that only pile up in the outbox (and are
shed from it later), and takes the event loop from the uplink, which then
publishes less still. While the uplink says it is behind (connected, past any
backlog from before the connection, and not caught up for a while), a poll
whose turn comes is skipped: each device is still read, less often, at the rate
the uplink takes. Commands' reads are never held back, and nothing is held
back during an outage or while a backlog is replayed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class PollPacing:
    """Asked before every scheduled poll; counts the polls it held back."""

    def __init__(self, behind: Callable[[], bool]) -> None:
        self._behind = behind
        self.held_back = 0
        self.pacing = False

    def admit(self) -> bool:
        """Whether a poll due now may go ahead."""
        if not self._behind():
            if self.pacing:
                self.pacing = False
                log.info("polling: the uplink caught up; %d poll(s) were held back so far", self.held_back)
            return True
        self.held_back += 1
        if not self.pacing:
            self.pacing = True
            log.warning("polling: the uplink cannot publish all readings; polls are held back until it can")
        return False
