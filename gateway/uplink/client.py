"""MQTT uplink: birth and Last Will, reconnect with backoff, drain the outbox.

A message leaves the outbox only after the broker's PUBACK. On any broker
error the connection is dropped and rebuilt; whatever was not acknowledged is
still on disk and is sent again (a subscriber may see a duplicate, with the
same seq and event id, never a loss).

Every connection gets the next birth/death sequence number (``bd_seq``, as
Sparkplug B's bdSeq): the birth and the Last Will armed with it carry the same
value, so a subscriber can tell the death of an old connection, delivered
late, from the death of the current one. Messages that were waiting when the
connection came up (a backlog from an outage or a previous run) are flagged
``"historical": true``.

A gap in ``seq`` must mean a lost message, so the Last Will never wastes one:
attempts that fail to connect reuse the same will (and ``bd_seq``); a graceful
stop publishes its ``offline`` with the will's seq (the broker then drops the
will); and a will that may never have been published (the connection dropped,
the broker or the gateway went away) is kept in ``kv`` and published again,
byte for byte, first thing on the next connection: a re-delivery if the broker
did send it, the missing seq if it did not. While a connection lasts, its
will's seq is the one seq not yet seen; the birth names it (``will_seq``).

On every connection, after the birth, the ``on_connect`` hooks run, so that
retained state (device statuses, health) is on a broker that lost it at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contracts.backoff import backoff_delays
from contracts.compat import wait_set
from contracts.errors import OutboxError, UplinkError
from gateway.config.models import GatewayIdentity, Uplink
from gateway.outbox import NOTICES_TOPIC, Outbox, OutboxMessage, Priority
from gateway.timestamps import iso_utc
from gateway.uplink.connection import (
    SESSION_TAKEN_OVER,
    describe_failure,
    disconnect_reason,
    expiry_properties,
    mqtt_client,
    reachable,
    refused_protocol,
)
from gateway.uplink.identity import box_client_id
from gateway.uplink.refused import RefusedTopics
from gateway.uplink.servers import Server, ServerRotation
from gateway.uplink.subscriptions import Handler, Subscriptions
from gateway.uplink.takeover import TakeoverWatch, taken_over_notice
from gateway.uplink.window import InflightWindow

log = logging.getLogger(__name__)

STATE_TOPIC = "state"
COMMAND_REQUEST_TOPIC = "commands/request"
COMMAND_RESPONSE_TOPIC = "commands/response"
PUBLISH_TIMEOUT_S = 10.0
BEHIND_S = 0.25  # not caught up for this long while connected: behind (see behind())
WILL_KEY = "uplink/will/"  # + seq: a Last Will not known to be published
_HISTORICAL = b',"historical":true}'
_TELEMETRY = "telemetry/"  # expiry key for every telemetry topic


class CommandReplyLike(Protocol):
    @property
    def body(self) -> dict[str, Any]: ...
    @property
    def reply_to(self) -> str | None: ...


class CommandHandlerLike(Protocol):
    """Turns a request payload into a reply; all command logic lives outside the uplink."""

    async def handle(self, payload: bytes, response_topic: str | None = None) -> CommandReplyLike: ...


class UplinkClient:
    """Keeps one connection to the command center's broker and drains the outbox into it."""

    def __init__(
        self,
        config: Uplink,
        identity: GatewayIdentity,
        outbox: Outbox,
        *,
        version: str,
        config_digest: str,
        commands: CommandHandlerLike | None = None,
    ) -> None:
        self._config = config
        self._identity = identity
        self._outbox = outbox
        self._version = version
        self._config_digest = config_digest
        self._window = config.inflight_window
        self._started_at = time.time()
        self._rotation = ServerRotation(config)
        self._takeover = TakeoverWatch(quick_s=config.keepalive_s, first_s=config.reconnect_max_s)
        self._expire_after: dict[str, float] = {}
        self._expiry: dict[str, Properties] = {}
        self.client_id = config.client_id or box_client_id(identity.id, outbox.path.parent)
        self.protocol = self._rotation.protocol()  # of the connection in use, or the next one
        self.broker = self._rotation.where()
        self._subscriptions = Subscriptions()
        self._bd_seq = 0
        self._will: tuple[int, bytes] | None = None  # seq and payload, reserved for the next connection
        self._on_connect: list[Callable[[], None]] = []
        self._live: tuple[aiomqtt.Client, int] | None = None  # the connection and its will's seq
        self._historical_up_to = outbox.backlog_until
        self.root = f"{config.topic_prefix}/{identity.id}"
        self.connected = asyncio.Event()
        self.progress_at = time.monotonic()  # last connect attempt, PUBACK or wake-up: for the watchdog
        self.idle = False  # connected with nothing to send
        self._behind_since: float | None = None  # since when committed messages wait for the wire
        self._telemetry_sent_up_to = 0  # telemetry goes out oldest first: past the backlog once above it
        self.connections = 0  # for the metrics: connections made, PUBACKs and the time they took
        self.acknowledged = 0
        self.puback_s_total = 0.0
        self.refused = RefusedTopics()
        if commands is not None:
            self._commands = commands
            self.subscribe(COMMAND_REQUEST_TOPIC, self._answer_command)

    def topic(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def subscribe(self, relative_filter: str, handler: Handler) -> None:
        """Call ``handler`` for messages on ``{root}/{relative_filter}``, across reconnects."""
        self._subscriptions.add(self.topic(relative_filter), handler)

    def expire_after(self, relative_topic: str, seconds: float) -> None:
        """Under MQTT 5, messages on ``relative_topic`` expire on the broker ``seconds`` after arriving."""
        self._expire_after[relative_topic] = seconds

    def on_connect(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after the birth on every connection (to enqueue retained state again)."""
        self._on_connect.append(hook)

    def behind(self) -> bool:
        """Connected, past any backlog from before this connection, and not caught up for
        ``BEHIND_S``: readings are committed faster than the broker takes them (overload)."""
        since = self._behind_since
        return (
            since is not None
            and self._live is not None
            and self._telemetry_sent_up_to > self._historical_up_to
            and time.monotonic() - since > BEHIND_S
        )

    async def rebirth(self) -> None:
        """Publish the birth and every retained state again, as on a connection (Sparkplug's rebirth)."""
        if self._live is None:
            raise UplinkError("not connected to the broker; the next connection publishes them anyway")
        client, will_seq = self._live
        await self._publish_state(client, "online", will_seq=will_seq)
        for hook in self._on_connect:
            hook()

    async def run(self, stopping: asyncio.Event) -> None:
        """Connect, publish, reconnect; return once ``stopping`` is set and the outbox is empty."""
        cfg = self._config
        rotation = self._rotation
        delays = backoff_delays(cfg.reconnect_min_s, cfg.reconnect_max_s)
        failing: set[str] = set()  # reasons logged since the last connection: each once
        first = True
        while True:
            self.progress_at = time.monotonic()
            server, protocol = rotation.current, rotation.protocol()
            where = rotation.where(server)
            connected_at: float | None = None
            client = self._connect(server, protocol)
            try:
                async with client:
                    connected_at = time.monotonic()
                    assert self._will is not None
                    will_seq, _ = self._will
                    self._will = None  # armed on this connection: the next one needs its own
                    if not first:  # what waited through the outage is a backlog
                        self._historical_up_to = self._outbox.last_id()
                    first = False
                    self.connections += 1
                    self.protocol = protocol
                    self.broker = where
                    self._expiry = self._expiry_properties() if protocol == "5" else {}
                    self.connected.set()
                    rotation.connected()
                    log.info(
                        "uplink: connected %sto %s (MQTT %s, bd_seq %d, client id %s)",
                        "again " if failing else "",
                        where,
                        protocol,
                        self._bd_seq,
                        self.client_id,
                    )
                    failing.clear()
                    delays = backoff_delays(cfg.reconnect_min_s, cfg.reconnect_max_s)
                    self._live = (client, will_seq)
                    try:
                        await self._serve(client, stopping, will_seq)
                    finally:
                        self._live = None
                    await self._publish_state(client, "offline", reason="shutdown", seq=will_seq)
                    self._forget_will(will_seq)
                    return
            except _FirstIsBack:
                self.connected.clear()
                log.info("uplink: %s answers again; leaving %s for it", rotation.where(rotation.first), where)
                rotation.back_to_first()
                continue
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                if connected_at is None and rotation.can_fall_back() and refused_protocol(exc):
                    rotation.fall_back()
                    log.warning("uplink: %s refused MQTT 5 (%s); speaking MQTT 3.1.1 to it", where, exc)
                    continue
                reason = describe_failure(exc, cfg, where)
                if reason not in failing:  # once when failing starts or changes, not every retry
                    log.warning(
                        "uplink: %s; %d message(s) kept on disk, retrying",
                        reason,
                        self._outbox.pending(),
                    )
                    failing.add(reason)
            if stopping.is_set():
                log.warning("uplink: stopping with %d message(s) on disk", self._outbox.pending())
                return
            if connected_at is None:
                delay = next(delays) if rotation.failed() else 0.0
            else:
                stay_away = await self._after_loss(client, server, lasted_s=time.monotonic() - connected_at)
                delay = next(delays) if stay_away is None else stay_away
                rotation.failed()
                if stay_away is not None:  # staying away on purpose (up to an hour) is no hang
                    self.progress_at = time.monotonic() + stay_away
            await wait_set(stopping, delay)

    async def _after_loss(self, client: aiomqtt.Client, server: Server, *, lasted_s: float) -> float | None:
        """How long to stay away when another box took our session over; None after an ordinary loss."""
        where = self._rotation.where(server)
        reason = disconnect_reason(client)
        # Only a quick drop needs the probe; a dead node refuses at once.
        alive = (
            lasted_s < self._config.keepalive_s and reason != SESSION_TAKEN_OVER and await reachable(server)
        )
        evidence = self._takeover.lost(reason=reason, lasted_s=lasted_s, broker_alive=alive)
        if evidence is None:
            return None
        delay = self._takeover.stay_away_s()
        if self._takeover.takeovers == 1:
            log.error(
                "uplink: session taken over at %s: another box connects with client id %s (%s);"
                " give each box its own [uplink] client_id, or leave it unset; retrying in %.0f s, longer"
                " each time",
                where,
                self.client_id,
                evidence,
                delay,
            )
            notice = taken_over_notice(
                client_id=self.client_id, broker=where, evidence=evidence, retry_in_s=delay
            )
            self._outbox.enqueue(Priority.EVENT, NOTICES_TOPIC, notice)
        return delay

    async def _serve(self, client: aiomqtt.Client, stopping: asyncio.Event, will_seq: int) -> None:
        """Birth, then drain the outbox and dispatch incoming messages until stopping, disconnected
        or moving back to the first server."""
        # Either side noticing a dead connection ends both, and its error reconnects. The message
        # iterator notices at once, even with nothing to send or while a publish awaits its PUBACK.
        jobs = [
            asyncio.create_task(self._start_and_drain(client, stopping, will_seq), name="uplink-out"),
            asyncio.create_task(self._subscriptions.dispatch(client), name="uplink-in"),
        ]
        if self._config.return_to_first_s and not self._rotation.on_first:
            jobs.append(asyncio.create_task(self._wait_for_first(), name="uplink-return"))
        try:
            done, _ = await asyncio.wait(jobs, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
        for job in done:
            job.result()

    async def _wait_for_first(self) -> None:
        """Raise once the first server accepts connections again (checked every return_to_first_s)."""
        while True:
            await asyncio.sleep(self._config.return_to_first_s)
            if await reachable(self._rotation.first):
                raise _FirstIsBack

    async def _start_and_drain(self, client: aiomqtt.Client, stopping: asyncio.Event, will_seq: int) -> None:
        await self._publish_unsent_wills(client, but=will_seq)
        await self._subscriptions.restore(client)
        await self._publish_state(client, "online", will_seq=will_seq)
        for hook in self._on_connect:
            hook()
        await self._drain(client, stopping)

    async def _drain(self, client: aiomqtt.Client, stopping: asyncio.Event) -> None:
        """Keep up to ``inflight_window`` publishes awaiting PUBACK; refill as each is acknowledged.

        A sliding window, not window-then-wait: an alarm committed while telemetry
        is in flight takes the next free slot (events are peeked first) instead of
        waiting for the whole window to be acknowledged. Commits and PUBACKs both
        set the outbox's ``wakeup``, the one thing this loop waits for.
        """
        outbox = self._outbox
        window = InflightWindow(client, outbox, size=self._window, timeout_s=PUBLISH_TIMEOUT_S)
        watchdog = asyncio.get_running_loop().call_later(PUBLISH_TIMEOUT_S, outbox.wakeup.set)
        self._behind_since = None
        try:
            while True:
                outbox.wakeup.clear()
                acked = window.take_acked()
                if acked:
                    outbox.ack_many(outbox_id for outbox_id, _ in acked)
                    self.acknowledged += len(acked)
                    self.puback_s_total += sum(seconds for _, seconds in acked)
                    self.progress_at = time.monotonic()
                refused = window.take_refused()
                if refused:
                    self._hold_back(refused)
                    self.progress_at = time.monotonic()  # the broker answers: the connection is alive
                if window.overdue():
                    raise aiomqtt.MqttError(f"publish not acknowledged within {PUBLISH_TIMEOUT_S:.0f} s")
                room = window.room
                if room > 0:
                    peeked = outbox.peek(room, skip=window.outbox_ids(), skip_topics=self.refused.held())
                    for message in peeked:
                        self._send(window, message)
                    window.write_together()
                    if len(peeked) < room:  # caught up: a telemetry group committed now goes out at once
                        outbox.wire_idle.set()
                        self._behind_since = None
                    elif self._behind_since is None:  # the window is full, and more may be waiting
                        self._behind_since = time.monotonic()
                if window.empty:  # nothing was peeked: nothing waits, or only what is held back
                    if stopping.is_set():
                        return
                    self.idle = True
                    try:
                        await _first_of(outbox.wakeup.wait(), stopping.wait())
                    finally:
                        self.idle = False
                    continue
                if watchdog.when() < asyncio.get_running_loop().time():  # look again for overdue PUBACKs
                    watchdog = asyncio.get_running_loop().call_later(PUBLISH_TIMEOUT_S / 2, outbox.wakeup.set)
                await outbox.wakeup.wait()
        finally:
            watchdog.cancel()
            outbox.wire_idle.clear()

    def _hold_back(self, refused: list[tuple[int, str, str]]) -> None:
        """Refused messages stay queued, their topics held back for a while; look again when it is over."""
        self._outbox.refused(outbox_id for outbox_id, _, _ in refused)
        prefix = len(self.root) + 1
        self.refused.hold([(topic[prefix:], topic, reason) for _, topic, reason in refused])
        asyncio.get_running_loop().call_later(self.refused.retry_s, self._outbox.wakeup.set)

    def _send(self, window: InflightWindow, message: OutboxMessage) -> None:
        payload = message.payload
        if 0 < message.id <= self._historical_up_to:
            payload = payload[:-1] + _HISTORICAL  # the envelope is a JSON object: ends in "}"
        properties = self._expiry.get(message.topic)
        if message.priority == Priority.TELEMETRY:
            self._telemetry_sent_up_to = max(self._telemetry_sent_up_to, message.id)
            if properties is None:
                properties = self._expiry.get(_TELEMETRY)
        window.send(
            self.topic(message.topic),
            payload,
            retain=message.retain,
            properties=properties,
            outbox_id=message.id,
        )

    async def _answer_command(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        """Answer one command request: MQTT 5 Response Topic and Correlation Data, else the payload's."""
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        request_props = message.properties
        reply = await self._commands.handle(payload, getattr(request_props, "ResponseTopic", None))
        topic = reply.reply_to  # checked: only under the reply prefix
        properties = None
        correlation = getattr(request_props, "CorrelationData", None)
        if correlation is not None:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.CorrelationData = correlation
        body = self._outbox.envelope({"ts": iso_utc(time.time()), **reply.body}, self._outbox.reserve_seq())
        await client.publish(
            topic or self.topic(COMMAND_RESPONSE_TOPIC),
            body,
            qos=1,
            properties=properties,
            timeout=PUBLISH_TIMEOUT_S,
        )

    def _expiry_properties(self) -> dict[str, Properties]:
        """MQTT 5 message expiry by relative topic (telemetry under ``_TELEMETRY``), for this connection."""
        wanted = {_TELEMETRY: float(self._config.telemetry_expiry_s), **self._expire_after}
        made = {topic: expiry_properties(seconds) for topic, seconds in wanted.items()}
        return {topic: properties for topic, properties in made.items() if properties is not None}

    def _connect(self, server: Server, protocol: str) -> aiomqtt.Client:
        if self._will is None:  # the last one was armed on a connection; a failed attempt reuses it
            self._bd_seq = self._outbox.next_bd_seq()
            seq = self._outbox.reserve_seq()
            payload = self._state_payload("offline", reason="connection lost", seq=seq)
            self._remember_will(seq, payload)
            self._will = (seq, payload)
        will = aiomqtt.Will(self.topic(STATE_TOPIC), self._will[1], qos=1, retain=True)
        return mqtt_client(
            self._config, server=server, protocol=protocol, client_id=self.client_id, will=will
        )

    def _remember_will(self, seq: int, payload: bytes) -> None:
        try:
            self._outbox.kv_set({f"{WILL_KEY}{seq}": payload.decode()})
        except OutboxError as exc:
            log.warning("uplink: %s; the Last Will is kept in memory only", exc)

    def _forget_will(self, seq: int) -> None:
        try:
            self._outbox.kv_set({f"{WILL_KEY}{seq}": None})
        except OutboxError as exc:
            log.warning("uplink: %s", exc)

    async def _publish_unsent_wills(self, client: aiomqtt.Client, *, but: int) -> None:
        """Wills of earlier connections the broker may have lost: again, as they were, before the birth."""
        wills = self._outbox.kv_items(WILL_KEY)
        for key in sorted(wills, key=lambda k: int(k[len(WILL_KEY) :])):
            seq = int(key[len(WILL_KEY) :])
            if seq == but:
                continue
            topic = self.topic(STATE_TOPIC)
            await client.publish(topic, wills[key].encode(), qos=1, retain=True, timeout=PUBLISH_TIMEOUT_S)
            self._forget_will(seq)

    async def _publish_state(
        self,
        client: aiomqtt.Client,
        state: str,
        *,
        reason: str = "",
        seq: int | None = None,
        will_seq: int | None = None,
    ) -> None:
        payload = self._state_payload(state, reason=reason, seq=seq, will_seq=will_seq)
        await client.publish(self.topic(STATE_TOPIC), payload, qos=1, retain=True, timeout=PUBLISH_TIMEOUT_S)

    def _state_payload(
        self, state: str, *, reason: str = "", seq: int | None = None, will_seq: int | None = None
    ) -> bytes:
        identity = self._identity
        body: dict[str, Any] = {
            "ts": iso_utc(time.time()),
            "state": state,
            "bd_seq": self._bd_seq,
            "version": self._version,
            "config_digest": self._config_digest,
            "site": identity.site,
            "grid_cell": identity.grid_cell,
            "started_at": iso_utc(self._started_at),
        }
        if reason:
            body["reason"] = reason
        if will_seq is not None:  # a birth; the will_seq is taken by the Last Will armed with it: not a loss
            body["will_seq"] = will_seq
            body["protocol"] = self.protocol
        if identity.location is not None:
            body["location"] = identity.location.model_dump()
        return self._outbox.envelope(body, self._outbox.reserve_seq() if seq is None else seq)


class _FirstIsBack(Exception):
    """The first server answers again: leave the one in use for it (return_to_first_s)."""


async def _first_of(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
