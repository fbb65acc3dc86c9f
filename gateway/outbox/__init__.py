"""The durable queue between the gateway and the broker."""

from gateway.outbox.batcher import TelemetryBatcher
from gateway.outbox.notices import NOTICES_TOPIC
from gateway.outbox.store import Outbox, OutboxMessage, Priority

__all__ = ["NOTICES_TOPIC", "Outbox", "OutboxMessage", "Priority", "TelemetryBatcher"]
