"""Topics the gateway listens to, subscribed again on every connection.

A broker that lost our session (restarted without persistence, session
expired) forgets our subscriptions; restoring them on every connect is what
makes commands work again after an outage.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiomqtt

from gateway.uplink.connection import acknowledge

log = logging.getLogger(__name__)

Handler = Callable[[aiomqtt.Client, aiomqtt.Message], Awaitable[None] | None]
"""Called with the connection the message came on (to answer on it) and the message."""


@dataclass(frozen=True, slots=True)
class _Subscription:
    topic_filter: str
    handler: Handler


class Subscriptions:
    """Topic filters (absolute) and the handler each message matching one goes to."""

    def __init__(self) -> None:
        self._entries: list[_Subscription] = []

    def add(self, topic_filter: str, handler: Handler) -> None:
        """Listen to ``topic_filter`` from the next connection on (and the current one's next)."""
        self._entries.append(_Subscription(topic_filter, handler))

    async def restore(self, client: aiomqtt.Client) -> None:
        """Subscribe to every registered filter, QoS 1."""
        for entry in self._entries:
            await client.subscribe(entry.topic_filter, qos=1)

    async def dispatch(self, client: aiomqtt.Client) -> None:
        """Hand each incoming message to the handlers whose filter it matches, until disconnected.

        A failing handler is logged and the others go on: one bad command must not
        take the uplink down. A message is acknowledged once handled; one that was
        still waiting when the connection went is delivered again on the next.
        """
        async for message in client.messages:
            for entry in self._entries:
                if not message.topic.matches(entry.topic_filter):
                    continue
                try:
                    result = entry.handler(client, message)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("uplink: handler for %s failed on %s", entry.topic_filter, message.topic)
            acknowledge(client, message)
