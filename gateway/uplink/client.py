"""MQTT uplink: birth and Last Will, reconnect with backoff, drain the outbox.

A message leaves the outbox only after the broker's PUBACK. On any broker
error the connection is dropped and rebuilt; whatever was not acknowledged is
still on disk and is sent again (a subscriber may see a duplicate, with the
same seq and event id, never a loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.config.models import GatewayIdentity, Uplink
from gateway.outbox import Outbox, OutboxMessage
from gateway.timestamps import iso_utc
from gateway.uplink.backoff import backoff_delays

log = logging.getLogger(__name__)

STATE_TOPIC = "state"
COMMAND_REQUEST_TOPIC = "commands/request"
COMMAND_RESPONSE_TOPIC = "commands/response"
PUBLISH_TIMEOUT_S = 10.0


class CommandReplyLike(Protocol):
    @property
    def body(self) -> dict[str, Any]: ...
    @property
    def reply_to(self) -> str | None: ...


class CommandHandlerLike(Protocol):
    """Turns a request payload into a reply; all command logic lives outside the uplink."""

    def handle(self, payload: bytes) -> CommandReplyLike: ...


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
        window: int = 32,
        commands: CommandHandlerLike | None = None,
    ) -> None:
        self._config = config
        self._identity = identity
        self._outbox = outbox
        self._version = version
        self._config_digest = config_digest
        self._window = window
        self._commands = commands
        self._started_at = time.time()
        self.root = f"{config.topic_prefix}/{identity.id}"
        self.connected = asyncio.Event()

    def topic(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    async def run(self, stopping: asyncio.Event) -> None:
        """Connect, publish, reconnect; return once ``stopping`` is set and the outbox is empty."""
        delays = backoff_delays(self._config.reconnect_min_s, self._config.reconnect_max_s)
        outage_logged = False
        while True:
            try:
                async with self._connect() as client:
                    self.connected.set()
                    if outage_logged:
                        log.info("uplink: connected again to %s", self._where())
                    else:
                        log.info("uplink: connected to %s", self._where())
                    outage_logged = False
                    delays = backoff_delays(self._config.reconnect_min_s, self._config.reconnect_max_s)
                    await self._publish_state(client, "online")
                    serving = await self._start_commands(client)
                    try:
                        await self._drain(client, stopping)
                        await self._publish_state(client, "offline", reason="shutdown")
                    finally:
                        if serving is not None:
                            serving.cancel()
                            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                                await serving
                    return
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                if not outage_logged:
                    log.warning(
                        "uplink: broker %s unavailable (%s); %d message(s) kept on disk, retrying",
                        self._where(), exc, self._outbox.pending(),
                    )
                    outage_logged = True
            if stopping.is_set():
                log.warning("uplink: stopping with %d message(s) on disk", self._outbox.pending())
                return
            await _sleep_unless(stopping, next(delays))

    async def _drain(self, client: aiomqtt.Client, stopping: asyncio.Event) -> None:
        while True:
            messages = self._outbox.peek(self._window)
            if messages:
                sent = await asyncio.gather(*(self._send(client, m) for m in messages))
                if not all(sent):
                    raise aiomqtt.MqttError("publish not acknowledged")
                continue
            if stopping.is_set():
                return
            self._outbox.wakeup.clear()
            if self._outbox.pending() == 0:
                await _first_of(self._outbox.wakeup.wait(), stopping.wait())

    async def _send(self, client: aiomqtt.Client, message: OutboxMessage) -> bool:
        try:
            await client.publish(
                self.topic(message.topic), message.payload, qos=1, retain=message.retain,
                timeout=PUBLISH_TIMEOUT_S,
            )
        except aiomqtt.MqttError:
            return False
        self._outbox.ack(message.id)
        return True

    async def _start_commands(self, client: aiomqtt.Client) -> asyncio.Task[None] | None:
        """Subscribe to command requests (again on every connection) and serve them."""
        if self._commands is None:
            return None
        await client.subscribe(self.topic(COMMAND_REQUEST_TOPIC), qos=1)
        return asyncio.create_task(self._serve_commands(client, self._commands), name="uplink-commands")

    async def _serve_commands(self, client: aiomqtt.Client, commands: CommandHandlerLike) -> None:
        request_topic = self.topic(COMMAND_REQUEST_TOPIC)
        async for message in client.messages:
            if str(message.topic) != request_topic:
                continue
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            reply = commands.handle(payload)
            # MQTT 5: the request's Response Topic and Correlation Data win over the payload.
            request_props = message.properties
            topic = getattr(request_props, "ResponseTopic", None) or reply.reply_to
            properties = None
            correlation = getattr(request_props, "CorrelationData", None)
            if correlation is not None:
                properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                properties.CorrelationData = correlation
            body = self._outbox.envelope(
                {"ts": iso_utc(time.time()), **reply.body}, self._outbox.reserve_seq()
            )
            await client.publish(
                topic or self.topic(COMMAND_RESPONSE_TOPIC), body, qos=1, properties=properties,
                timeout=PUBLISH_TIMEOUT_S,
            )

    def _connect(self) -> aiomqtt.Client:
        cfg = self._config
        will = aiomqtt.Will(
            self.topic(STATE_TOPIC), self._state_payload("offline", reason="connection lost"),
            qos=1, retain=True,
        )
        tls = None
        if cfg.tls is not None:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(cfg.tls.ca_file),
                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
            )
        protocol = aiomqtt.ProtocolVersion.V5 if cfg.protocol == "5" else aiomqtt.ProtocolVersion.V311
        return aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=cfg.password,
            identifier=cfg.client_id or self._identity.id,
            protocol=protocol,
            will=will,
            keepalive=cfg.keepalive_s,
            tls_params=tls,
            timeout=PUBLISH_TIMEOUT_S,
        )

    async def _publish_state(self, client: aiomqtt.Client, state: str, *, reason: str = "") -> None:
        payload = self._state_payload(state, reason=reason)
        await client.publish(self.topic(STATE_TOPIC), payload, qos=1, retain=True)

    def _state_payload(self, state: str, *, reason: str = "") -> bytes:
        identity = self._identity
        body: dict[str, Any] = {
            "ts": iso_utc(time.time()),
            "state": state,
            "version": self._version,
            "config_digest": self._config_digest,
            "site": identity.site,
            "grid_cell": identity.grid_cell,
            "started_at": iso_utc(self._started_at),
        }
        if reason:
            body["reason"] = reason
        if identity.location is not None:
            body["location"] = identity.location.model_dump()
        return self._outbox.envelope(body, self._outbox.reserve_seq())

    def _where(self) -> str:
        return f"{self._config.host}:{self._config.port}"


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass


async def _first_of(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
