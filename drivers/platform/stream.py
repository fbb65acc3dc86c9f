"""One IoT platform broker, subscribed to apart from the uplink: messages in, batches out.

The stream keeps its own MQTT connection (TLS, a password read from its file
at each connect, reconnect with jittered backoff, subscriptions restored) and
never touches the gateway's uplink. Each message is read by the connection's
format, matched to a device by its platform id, checked against what that
device sent before, and decoded:

* a duplicate (same message id, same frame counter and payload, or same time
  and payload: what a platform re-sends after it reconnects) gives nothing;
* a message older than the newest one seen from the device is passed on
  flagged late (telemetry, not a state change) and counted;
* a message that maps no value (a heartbeat) only tells ``seen`` the device
  is alive;
* bad input is counted per device and reason and logged at most once per
  device and reason a minute; the next message is handled as if nothing
  happened.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from contracts.backoff import backoff_delays
from contracts.driver import StreamDriver
from contracts.readings import ReadingBatch
from drivers.platform.config import PlatformConnection, PlatformDeviceConfig
from drivers.platform.decode import DeviceDecoder
from drivers.platform.errors import DecodeError, Reason
from drivers.platform.formats import Envelope, reader, topic_device

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
LOG_EVERY_S = 60.0  # one line per device and reason this often; the rest are counted
RECENT_KEYS = 64  # message keys remembered per device to spot duplicates
CLOCK_AHEAD_MAX_S = 600.0  # a message time further ahead than this is the device's clock, not news
_THROTTLE_KEYS = 4096

_library_log = logging.getLogger("drivers.platform.mqtt")
_library_log.setLevel(logging.ERROR)


@dataclass
class DeviceCounters:
    """What one device's messages came to, for its status."""

    messages: int = 0
    decoded: int = 0
    heartbeats: int = 0
    duplicates: int = 0
    late: int = 0
    clock_ahead: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "decoded": self.decoded,
            "heartbeats": self.heartbeats,
            "duplicates": self.duplicates,
            "late": self.late,
            "clock_ahead": self.clock_ahead,
            "errors": dict(self.errors),
        }


class _Recent:
    """The keys of a device's last messages, oldest forgotten first."""

    __slots__ = ("_keys", "_order")

    def __init__(self) -> None:
        self._order: deque[object] = deque()
        self._keys: set[object] = set()

    def seen_any(self, keys: Sequence[object]) -> bool:
        return any(k in self._keys for k in keys)

    def add(self, keys: Sequence[object]) -> None:
        for key in keys:
            self._order.append(key)
            self._keys.add(key)
        while len(self._order) > RECENT_KEYS:
            self._keys.discard(self._order.popleft())


class PlatformStream(StreamDriver):
    """Every device of one ``[[platforms]]`` connection."""

    def __init__(
        self,
        connection: PlatformConnection,
        devices: Sequence[PlatformDeviceConfig],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = f"platform:{connection.id}"
        self.connection = connection
        self.devices: tuple[PlatformDeviceConfig, ...] = tuple(
            d for d in devices if d.platform == connection.id
        )
        self.clock = clock
        self.on_batch: Callable[[ReadingBatch], None] | None = None
        self.connected = False
        self.connects = 0
        self._read = reader(connection)
        self._by_match = {d.match_key: DeviceDecoder(d) for d in self.devices}
        self.counters = {d.id: DeviceCounters() for d in self.devices}
        # Messages that name no configured device, or none at all, by reason.
        self.unmatched: Counter[str] = Counter()
        self._recent = {d.id: _Recent() for d in self.devices}
        self._newest: dict[str, float] = {}
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}

    async def open(self) -> None:
        """Nothing to open before ``run``: the connection is made, and remade, there."""

    async def aclose(self) -> None:
        self.connected = False

    async def run(self, on_batch: Callable[[ReadingBatch], None]) -> None:
        self.on_batch = on_batch
        c = self.connection
        delays = backoff_delays(c.reconnect_min_s, c.reconnect_max_s)
        failing = False
        while True:
            try:
                async with self._client() as client:
                    for topic in c.subscriptions:
                        await client.subscribe(topic, qos=c.qos)
                    self.connected = True
                    self.connects += 1
                    log.info(
                        "%s: %s %s:%d, subscribed to %s",
                        self.name,
                        "connected again to" if failing else "connected to",
                        c.host,
                        c.port,
                        ", ".join(c.subscriptions),
                    )
                    failing = False
                    delays = backoff_delays(c.reconnect_min_s, c.reconnect_max_s)
                    async for message in client.messages:
                        self.handle(message.topic.value, _bytes(message.payload))
            except (aiomqtt.MqttError, OSError) as exc:
                self.connected = False
                delay = next(delays)
                if not failing:
                    log.warning(
                        "%s: broker %s:%d unavailable (%s); retrying with backoff",
                        self.name,
                        c.host,
                        c.port,
                        _describe(exc),
                    )
                failing = True
                await asyncio.sleep(delay)

    def handle(self, topic: str, payload: bytes) -> None:
        """One message from the platform: decoded and handed on, or counted and logged."""
        assert self.on_batch is not None, "run() sets on_batch"
        received = self.clock()
        if len(payload) > self.connection.max_message_bytes:
            self._refused(
                topic_device(self.connection, topic),
                DecodeError(
                    Reason.OVERSIZED,
                    f"{len(payload)} bytes on {topic};"
                    f" max_message_bytes is {self.connection.max_message_bytes}",
                ),
            )
            return
        try:
            envelope = self._read(topic, payload)
        except DecodeError as exc:
            self._refused(topic_device(self.connection, topic), exc)
            return
        decoder = next((d for i in envelope.ids if (d := self._by_match.get(i)) is not None), None)
        if decoder is None:
            self._refused(None, DecodeError(Reason.UNKNOWN_DEVICE, f"{envelope.device_id} on {topic}"))
            return
        device = decoder.device
        counters = self.counters[device]
        counters.messages += 1
        ts = envelope.time if envelope.time is not None else received
        if ts > received + CLOCK_AHEAD_MAX_S:
            counters.clock_ahead += 1
            ts = received
        keys = _keys(envelope, ts, payload)
        recent = self._recent[device]
        if recent.seen_any(keys):
            counters.duplicates += 1
            return
        late = ts < self._newest.get(device, float("-inf"))
        try:
            batch = decoder.decode(envelope, ts, late=late)
        except DecodeError as exc:
            counters.errors[exc.reason.value] += 1
            self._log(device, exc)
            return
        recent.add(keys)
        if late:
            counters.late += 1
        else:
            self._newest[device] = ts
        if batch is None:
            counters.heartbeats += 1
            if not late:
                self.seen(device, ts)
            return
        counters.decoded += 1
        self.on_batch(batch)

    def status_fields(self, device_id: str) -> dict[str, Any]:
        """What the device status adds for a platform device: its message counters."""
        counters = self.counters.get(device_id)
        return {"counters": counters.as_dict()} if counters is not None else {}

    def status(self) -> dict[str, Any]:
        """The platform connection itself: up or not, how often made, what matched no device."""
        return {"connected": self.connected, "connects": self.connects, "unmatched": dict(self.unmatched)}

    def _refused(self, platform_id: str | None, exc: DecodeError) -> None:
        """A message not tied to a configured device's decoder: counted where it belongs."""
        decoder = self._by_match.get(platform_id) if platform_id is not None else None
        if decoder is not None:
            counters = self.counters[decoder.device]
            counters.messages += 1
            counters.errors[exc.reason.value] += 1
            self._log(decoder.device, exc)
            return
        self.unmatched[exc.reason.value] += 1
        self._log(platform_id or "?", exc)

    def _log(self, who: str, exc: DecodeError) -> None:
        now = time.monotonic()
        key = (who, exc.reason.value)
        last = self._logged.get(key)
        if last is not None and now - last[0] < LOG_EVERY_S:
            self._logged[key] = (last[0], last[1] + 1)
            return
        if len(self._logged) >= _THROTTLE_KEYS:
            self._logged.clear()  # a flood of unknown ids must not grow this without bound
        more = f" ({last[1]} more like it in the last minute)" if last is not None and last[1] else ""
        log.warning("%s: %s: %s: %s%s", self.name, who, exc.reason.value, exc.detail, more)
        self._logged[key] = (now, 0)

    def _client(self) -> aiomqtt.Client:
        c = self.connection
        tls = None
        if c.tls is not None:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(c.tls.ca_file),
                certfile=str(c.tls.cert_file) if c.tls.cert_file else None,
                keyfile=str(c.tls.key_file) if c.tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        return aiomqtt.Client(
            c.host,
            c.port,
            username=c.username,
            password=self._password(),
            identifier=c.client_id,
            # With a client id the broker keeps the session and what arrives in an outage.
            clean_session=c.client_id is None,
            keepalive=c.keepalive_s,
            tls_params=tls,
            timeout=CONNECT_TIMEOUT_S,
            logger=_library_log,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )

    def _password(self) -> str | None:
        """Read at each connect, so a rotated password file takes effect without a restart."""
        path = self.connection.password_file
        if path is None:
            return None
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise aiomqtt.MqttError(f"cannot read password_file {path}: {exc}") from exc


def _keys(envelope: Envelope, ts: float, payload: bytes) -> tuple[object, ...]:
    """What makes a message the same as one already handled."""
    content = hash(envelope.raw) if envelope.raw is not None else hash(payload)
    keys: list[object] = []
    if envelope.time is not None:
        keys.append(("time", ts, content))
    if envelope.message_id is not None:
        keys.append(("id", envelope.message_id))
    if envelope.counter is not None:  # a LoRaWAN retransmission: same fCnt, same bytes
        keys.append(("counter", envelope.counter, content))
    return tuple(keys)


def _bytes(payload: object) -> bytes:
    return bytes(payload) if isinstance(payload, (bytes, bytearray)) else str(payload).encode()


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiomqtt.MqttCodeError) and exc.rc in (4, 5, 134, 135):
        return f"{text}; check the platform's username and password_file"
    return text
