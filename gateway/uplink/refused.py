"""Topics the broker refused a publish on: their messages stay queued and are offered again later.

An MQTT 5 broker answers a publish it will not take (an ACL that denies the
topic, a quota, a packet larger than it accepts) with a PUBACK carrying a
failure reason code, and drops the message. The message is not delivered: it
stays in the outbox, no longer in flight (so a full buffer sheds it like any
other queued message, with a gap notice), and its topic is held back for
``retry_s``: none of the topic's messages is offered until then, when they are
offered again (an ACL put right meanwhile takes them). A hold is per topic,
as ACLs are, so what is refused stays a short list however many messages wait
on it, and other topics flow meanwhile. (MQTT 3.1.1 has no way to refuse: a
3.1.1 broker acknowledges and drops.)
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

RETRY_S = 30.0
LOG_EVERY_S = 60.0  # one warning per topic and reason this often, not one per message


class RefusedTopics:
    """Topics held back after a refusal, oldest hold first, and what was refused."""

    def __init__(self, *, retry_s: float = RETRY_S) -> None:
        self.retry_s = retry_s
        self.count = 0  # for the health report and metrics: refusals since the start (again counts again)
        self.last = ""  # the last one, "<reason> on <topic>"
        self._until: dict[str, float] = {}  # relative topic: when its messages may be offered again
        self._logged: dict[tuple[str, str], float] = {}

    def hold(self, refused: list[tuple[str, str, str]]) -> None:
        """Hold back the topic of each (relative topic, full topic, reason) refused."""
        now = time.monotonic()
        for topic, full_topic, reason in refused:
            self._until.pop(topic, None)  # refused again: to the end, in the order of holds
            self._until[topic] = now + self.retry_s
            self.count += 1
            self.last = f"{reason} on {full_topic}"
            if now - self._logged.get((topic, reason), -LOG_EVERY_S) >= LOG_EVERY_S:
                self._logged[(topic, reason)] = now
                log.warning(
                    "uplink: the broker refused a message on %s (%s); it stays queued and the topic's"
                    " messages are offered again in %.0f s",
                    full_topic,
                    reason,
                    self.retry_s,
                )

    def held(self) -> list[str]:
        """The relative topics whose messages are not to be offered now."""
        until = self._until
        if until:
            now = time.monotonic()
            while until:
                topic, when = next(iter(until.items()))
                if when > now:
                    break
                del until[topic]
        return list(until)
