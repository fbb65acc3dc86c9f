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
A PUBACK whose MQTT 5 reason code is a failure (not authorised, quota
exceeded, ...) means the broker dropped the message: it is *refused*, not
delivered, and stays in the outbox (:meth:`take_refused`, gateway.uplink.refused).

The broker's usual answer, a PUBACK of success with no properties, is
settled here before paho decodes it: paho makes a reason code and a properties
object for every PUBACK, a fifth of the uplink's CPU at hundreds a second.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.outbox import Outbox


class InflightWindow:
    """Outbox messages on the wire of one connection, by MQTT packet id."""

    def __init__(self, client: aiomqtt.Client, outbox: Outbox, *, size: int, timeout_s: float) -> None:
        self.size = size
        self._timeout_s = timeout_s
        self._outbox = outbox
        self._paho: mqtt.Client = client._client
        self._sent: dict[int, tuple[int, float, str]] = {}  # packet id: outbox id, when sent, topic
        self._acked: list[tuple[int, float]] = []  # outbox id, seconds to its PUBACK
        self._refused: list[tuple[int, str, str]] = []  # outbox id, topic, the broker's reason
        self._theirs: Callable[..., None] = self._paho.on_publish  # type: ignore[assignment]
        self._paho.on_publish = self._on_publish
        paho_handles: Callable[[str], MQTTErrorCode] | None = getattr(self._paho, "_handle_pubackcomp", None)
        quick = _QUICK_PUBACK_NEEDS.issubset(vars(self._paho)) and self._paho._max_inflight_messages == 0
        if paho_handles is not None and quick:
            self._paho_handles = paho_handles
            self._paho._handle_pubackcomp = self._handle_pubackcomp  # type: ignore[method-assign, assignment]
        queue = getattr(self._paho, "_out_packet", None)
        self._queue: deque[dict[str, Any]] | None = queue if isinstance(queue, deque) else None

    @property
    def room(self) -> int:
        return self.size - len(self._sent)

    @property
    def empty(self) -> bool:
        return not self._sent

    def outbox_ids(self) -> list[int]:
        return [outbox_id for outbox_id, _, _ in self._sent.values()]

    def send(
        self, topic: str, payload: bytes, *, retain: bool, properties: Properties | None, outbox_id: int
    ) -> None:
        """Publish one outbox message at QoS 1; raises MqttError when the connection cannot take it."""
        info = self._paho.publish(topic, payload, 1, retain, properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, f"could not publish to {topic}")
        self._sent[info.mid] = (outbox_id, time.monotonic(), topic)

    def write_together(self) -> None:
        """Join the publishes paho has queued and not begun to write into one run of bytes.

        paho writes each queued packet with a ``send()`` of its own once the socket
        is writable; a drain round queues up to a window of them, and one system
        call for all costs less than one each. Only QoS 1 and 2 publishes are
        joined: paho does nothing for them once written (it does for a QoS 0
        publish and a DISCONNECT).
        """
        queue = self._queue
        if queue is None or len(queue) < 2:
            return
        waiting = list(queue)
        if waiting[0]["pos"]:  # being written: left as it is
            waiting = waiting[1:]
        if len(waiting) < 2 or any(p["command"] & 0xF0 != mqtt.PUBLISH or not p["qos"] for p in waiting):
            return
        if sum(len(p["packet"]) for p in waiting) > JOIN_AT_MOST:  # nothing to gain; copied again if blocked
            return
        joined = b"".join(p["packet"] for p in waiting)
        for _ in waiting:
            queue.pop()
        queue.append({**waiting[-1], "pos": 0, "to_process": len(joined), "packet": joined})

    def take_acked(self) -> list[tuple[int, float]]:
        """(outbox id, seconds it waited for its PUBACK) of each message acknowledged since the last call."""
        acked, self._acked = self._acked, []
        return acked

    def take_refused(self) -> list[tuple[int, str, str]]:
        """(outbox id, topic, reason) of each message the broker refused since the last call."""
        refused, self._refused = self._refused, []
        return refused

    def overdue(self) -> bool:
        """Whether the oldest message on the wire waited longer than the timeout for its PUBACK."""
        if not self._sent:
            return False
        _, oldest, _ = next(iter(self._sent.values()))  # sent in order; PUBACKs take them from anywhere
        return time.monotonic() - oldest > self._timeout_s

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, *rest: Any) -> None:
        entry = self._sent.pop(mid, None)
        if entry is None:
            self._theirs(client, userdata, mid, *rest)
            return
        reason: ReasonCode | None = rest[0] if rest else None  # paho's callback API 2: reason, properties
        if reason is not None and reason.is_failure:
            outbox_id, _, topic = entry
            self._refused.append((outbox_id, topic, str(reason)))
            self._outbox.wakeup.set()
            return
        self._settle(entry)

    def _handle_pubackcomp(self, command: str) -> MQTTErrorCode:
        """paho's handler of PUBACK and PUBCOMP, with a plain PUBACK of an outbox message taken first."""
        paho = self._paho
        packet = paho._in_packet["packet"]
        # Success without properties: two bytes (MQTT 5 leaves a success out, 3.1.1 has no reason), or
        # three with a reason below 0x80 ("no matching subscribers", 0x10, when no one listens on the topic)
        if command == "PUBACK" and (len(packet) == 2 or (len(packet) == 3 and packet[2] < 0x80)):
            mid = packet[0] << 8 | packet[1]
            entry = self._sent.pop(mid, None)
            if entry is not None:
                with paho._out_message_mutex:
                    message = paho._out_messages.pop(mid, None)
                    if message is not None:
                        paho._inflight_messages -= 1
                if message is not None:
                    message.info._set_as_published()
                self._settle(entry)
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return self._paho_handles(command)

    def _settle(self, entry: tuple[int, float, str]) -> None:
        outbox_id, sent, _ = entry
        self._acked.append((outbox_id, time.monotonic() - sent))
        self._outbox.wakeup.set()


JOIN_AT_MOST = 64 * 1024  # bytes of queued publishes joined into one write

# What the quick PUBACK path settles on paho's side, as paho's own handler would; without them
# (another paho), or with paho's in-flight bound on (connection turns it off), PUBACKs go paho's way.
_QUICK_PUBACK_NEEDS = frozenset(
    ("_in_packet", "_out_messages", "_out_message_mutex", "_inflight_messages", "_max_inflight_messages")
)
