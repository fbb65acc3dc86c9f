"""The durable queue between the gateway and the broker."""

from gateway.outbox.store import Outbox, OutboxMessage, Priority

__all__ = ["Outbox", "OutboxMessage", "Priority"]
