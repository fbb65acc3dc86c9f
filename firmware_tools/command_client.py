"""Send a command to a gateway as a command center would, and wait for its answer.

Used by ``gridgate ack`` and ``gridgate verify``. With MQTT 5 the reply topic
and correlation data travel as properties; with 3.1.1 in the payload. Given a
:class:`Signer` the request is signed for the gateway it goes to (see
``gateway.remote.signing``), as gateways accept only signed commands unless a
site allows unsigned ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware_tools.broker_target import BrokerTarget
from gateway.remote.signing import load_private_key, sign_request

STATE_WAIT_S = 1.0


@dataclass(frozen=True)
class Signer:
    """A command-center or maintainer key: the id the gateways trust it under, and the key."""

    key_id: str
    private_key: Ed25519PrivateKey

    @classmethod
    def from_file(cls, path: str | Path, key_id: str | None = None) -> Signer:
        """The key in ``path`` (``gridgate keys new``); its id is the file's stem unless given."""
        return cls(key_id or Path(path).stem, load_private_key(path))

    def sign(self, request: dict[str, Any], gateway: str) -> dict[str, Any]:
        return sign_request({**request, "gateway": gateway}, self.private_key, self.key_id)


class CommandFailed(Exception):
    """No answer came, or the gateway to ask could not be told apart."""


async def online_gateways(client: aiomqtt.Client, prefix: str, wait_s: float = STATE_WAIT_S) -> list[str]:
    """Gateways whose retained state says online (the broker sends retained states at once)."""
    await client.subscribe(f"{prefix}/+/state", qos=1)
    online: dict[str, bool] = {}

    async def collect() -> None:
        async for message in client.messages:
            if not str(message.topic).endswith("/state"):
                continue
            gateway = str(message.topic).rsplit("/", 2)[-2]
            try:
                online[gateway] = json.loads(bytes(message.payload)).get("state") == "online"
            except ValueError:
                continue

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(collect(), wait_s)
    await client.unsubscribe(f"{prefix}/+/state")
    return sorted(g for g, up in online.items() if up)


async def send_command(
    host: str,
    port: int,
    request: dict[str, Any],
    *,
    prefix: str = "gridgate/v1",
    gateway: str | None = None,
    protocol: str = "5",
    timeout_s: float = 10.0,
    signer: Signer | None = None,
) -> dict[str, Any]:
    """:func:`ask` a broker on ``host:port`` without TLS or credentials."""
    target = BrokerTarget(host, port, prefix=prefix)
    return await ask(target, request, gateway=gateway, protocol=protocol, timeout_s=timeout_s, signer=signer)


async def ask(
    target: BrokerTarget,
    request: dict[str, Any],
    *,
    gateway: str | None = None,
    protocol: str = "5",
    timeout_s: float = 10.0,
    signer: Signer | None = None,
) -> dict[str, Any]:
    """Publish ``request`` to the gateway's command topic; return its response payload.

    Without ``gateway`` the one gateway online under the prefix is asked; several
    online is an error that names them. A broker that cannot be reached raises
    ``aiomqtt.MqttError``.
    """
    prefix = target.prefix
    version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311
    client_id = uuid.uuid4().hex[:12]
    reply_topic = f"{prefix}/_replies/{client_id}"
    correlation = uuid.uuid4().hex
    async with target.client(protocol=version, timeout=timeout_s) as client:
        if gateway is None:
            gateways = await online_gateways(client, prefix)
            if len(gateways) != 1:
                found = ", ".join(gateways) or "none"
                raise CommandFailed(f"name the gateway with --gateway: online under {prefix}: {found}")
            gateway = gateways[0]
        await client.subscribe(reply_topic, qos=1)
        properties = None
        body = dict(request)
        if protocol == "5":
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.ResponseTopic = reply_topic
            properties.CorrelationData = correlation.encode()
        else:
            body.update(reply_to=reply_topic, correlation_id=correlation)
        if signer is not None:
            body = signer.sign(body, gateway)
        await client.publish(
            f"{prefix}/{gateway}/commands/request", json.dumps(body), qos=1, properties=properties
        )
        try:
            return await asyncio.wait_for(_reply(client, reply_topic, correlation), timeout_s)
        except asyncio.TimeoutError:
            raise CommandFailed(f"no answer from gateway {gateway} within {timeout_s:g} s") from None


async def _reply(client: aiomqtt.Client, topic: str, correlation: str) -> dict[str, Any]:
    async for message in client.messages:
        if str(message.topic) != topic:
            continue
        payload: dict[str, Any] = json.loads(bytes(message.payload))
        by_property = getattr(message.properties, "CorrelationData", None)
        if by_property == correlation.encode() or payload.get("correlation_id") == correlation:
            return payload
    raise CommandFailed("the connection closed before the answer came")
