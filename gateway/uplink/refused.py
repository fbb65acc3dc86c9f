"""Messages the broker refused: kept in the outbox, offered again later, never taken as delivered.

An MQTT 5 broker answers a publish it will not take (an ACL that denies the
topic, a quota, a payload it rejects) with a PUBACK carrying a failure reason
code and drops the message. The message stays in the outbox; the uplink skips
it for ``retry_s`` so it does not offer it again at once, then offers it again
(an ACL put right meanwhile takes it). Past ``max_held`` refused at once the
broker is taking next to nothing: the connection is rebuilt, with its backoff,
and everything is offered again on the new one. (MQTT 3.1.1 has no way to
refuse: a 3.1.1 broker acknowledges and drops.)
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

RETRY_S = 30.0
MAX_HELD = 1_000
LOG_EVERY_S = 60.0  # one warning per topic and reason this often, not one per message


class RefusedMessages:
    """Outbox ids held back after a refusal, oldest refusal first, and what was refused."""

    def __init__(self, *, retry_s: float = RETRY_S, max_held: int = MAX_HELD) -> None:
        self.retry_s = retry_s
        self.max_held = max_held
        self.count = 0  # for the health report and metrics: refusals since the start
        self.last = ""  # the last one, "<reason> on <topic>"
        self._until: dict[int, float] = {}  # outbox id: when it may be offered again
        self._logged: dict[tuple[str, str], float] = {}

    def hold(self, refused: list[tuple[int, str, str]]) -> bool:
        """Hold back each (outbox id, topic, reason); True when more are held than ``max_held``."""
        now = time.monotonic()
        for outbox_id, topic, reason in refused:
            self._until.pop(outbox_id, None)  # refused again: to the end, in refusal order
            self._until[outbox_id] = now + self.retry_s
            self.count += 1
            self.last = f"{reason} on {topic}"
            if now - self._logged.get((topic, reason), -LOG_EVERY_S) >= LOG_EVERY_S:
                self._logged[(topic, reason)] = now
                log.warning(
                    "uplink: the broker refused a message on %s (%s); it stays queued and is offered again"
                    " in %.0f s",
                    topic,
                    reason,
                    self.retry_s,
                )
        return len(self._until) > self.max_held

    def held(self) -> list[int]:
        """The outbox ids not to offer now."""
        until = self._until
        if until:
            now = time.monotonic()
            while until:
                outbox_id, when = next(iter(until.items()))
                if when > now:
                    break
                del until[outbox_id]
        return list(until)

    def __len__(self) -> int:
        return len(self._until)

    def release_all(self) -> None:
        """Offer every held message again (on a new connection)."""
        self._until.clear()
