"""The in-flight window: outbox messages published at QoS 1 and waiting for their PUBACK.

Publishing goes straight to the paho client inside aiomqtt's, and PUBACKs come
back through paho's ``on_publish``: aiomqtt's ``publish`` costs a future, a
timeout task and a semaphore per message, which at hundreds of messages a
second was a tenth of the gateway's CPU. What aiomqtt publishes itself (birth,
command replies) still goes its way; its ``on_publish`` gets every PUBACK that
is not ours.

A PUBACK sets the outbox's ``wakeup``, the one event the drain loop waits on.
A message the broker has not acknowledged within ``timeout_s`` is a dead
connection: :meth:`overdue` says so, and the uplink rebuilds the connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties

from gateway.outbox import Outbox


class InflightWindow:
    """Outbox messages on the wire of one connection, by MQTT packet id."""

    def __init__(self, client: aiomqtt.Client, outbox: Outbox, *, size: int, timeout_s: float) -> None:
        self.size = size
        self._timeout_s = timeout_s
        self._outbox = outbox
        self._paho: mqtt.Client = client._client
        self._sent: dict[int, tuple[int, float]] = {}  # packet id: outbox id, when sent
        self._acked: list[tuple[int, float]] = []  # outbox id, seconds to its PUBACK
        self._theirs: Callable[..., None] = self._paho.on_publish  # type: ignore[assignment]
        self._paho.on_publish = self._on_publish

    @property
    def room(self) -> int:
        return self.size - len(self._sent)

    @property
    def empty(self) -> bool:
        return not self._sent

    def outbox_ids(self) -> list[int]:
        return [outbox_id for outbox_id, _ in self._sent.values()]

    def send(
        self, topic: str, payload: bytes, *, retain: bool, properties: Properties | None, outbox_id: int
    ) -> None:
        """Publish one outbox message at QoS 1; raises MqttError when the connection cannot take it."""
        info = self._paho.publish(topic, payload, 1, retain, properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, f"could not publish to {topic}")
        self._sent[info.mid] = (outbox_id, time.monotonic())

    def take_acked(self) -> list[tuple[int, float]]:
        """(outbox id, seconds it waited for its PUBACK) of each message acknowledged since the last call."""
        acked, self._acked = self._acked, []
        return acked

    def overdue(self) -> bool:
        """Whether the oldest message on the wire waited longer than the timeout for its PUBACK."""
        if not self._sent:
            return False
        _, oldest = next(iter(self._sent.values()))  # sent in order; PUBACKs take them from anywhere
        return time.monotonic() - oldest > self._timeout_s

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, *rest: Any) -> None:
        entry = self._sent.pop(mid, None)
        if entry is None:
            self._theirs(client, userdata, mid, *rest)
            return
        outbox_id, sent = entry
        self._acked.append((outbox_id, time.monotonic() - sent))
        self._outbox.wakeup.set()
