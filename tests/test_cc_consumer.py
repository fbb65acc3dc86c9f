"""The reference consumer group: every event's lifecycle lands in one member, once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt

from firmware_tools.cc_consumer import GroupMember, Handler, owner
from firmware_tools.local_broker import LocalBroker
from gateway.config.models import GatewayIdentity, Uplink
from gateway.outbox import Outbox, Priority
from gateway.uplink import UplinkClient

GATEWAYS = [f"gw-{n:02d}" for n in range(6)]
LIFECYCLE = ("raised", "updated", "cleared")


@contextlib.asynccontextmanager
async def gateways(tmp_path: Path, port: int, prefix: str) -> AsyncIterator[dict[str, Outbox]]:
    config = Uplink(
        host="127.0.0.1", port=port, topic_prefix=prefix, reconnect_min_s=0.1, reconnect_max_s=0.5
    )
    outboxes = {g: Outbox(tmp_path / g, g) for g in GATEWAYS}
    uplinks = [
        UplinkClient(
            config,
            GatewayIdentity(id=g, site="Bench", grid_cell="330106001001"),
            o,
            version="t",
            config_digest="d",
        )
        for g, o in outboxes.items()
    ]
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(u.run(stopping)) for u in uplinks]
    try:
        yield outboxes
    finally:
        stopping.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
        for outbox in outboxes.values():
            outbox.close()


@contextlib.asynccontextmanager
async def group(
    port: int, prefix: str, names: list[str], handled: list[tuple[str, str, dict[str, Any]]]
) -> AsyncIterator[list[GroupMember]]:
    def recorder(name: str) -> Handler:
        return lambda _gateway, kind, payload: handled.append((name, kind, payload))

    members = [
        GroupMember(
            host="127.0.0.1",
            port=port,
            prefix=prefix,
            member=name,
            members=names,
            handle=recorder(name),
        )
        for name in names
    ]
    tasks = [asyncio.create_task(m.run()) for m in members]
    try:
        await asyncio.wait_for(asyncio.gather(*(m.subscribed.wait() for m in members)), 10)
        yield members
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _members_sharing(gateway_ids: list[str]) -> list[str]:
    """Two members (fresh names: fresh broker sessions) that each own at least one of the gateways.

    Rendezvous hashing gives all six gateways to one member one time in 32; the test is about a
    group that shares them.
    """
    while True:
        names = [f"cc-a-{uuid.uuid4().hex[:6]}", f"cc-b-{uuid.uuid4().hex[:6]}"]
        if {owner(g, names) for g in gateway_ids} == set(names):
            return names


async def until(done: Any, timeout: float = 20) -> None:
    async def poll() -> None:
        while not done():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_two_members_each_get_whole_lifecycles_of_their_gateways_once(
    tmp_path: Path, topic_prefix: str, broker: LocalBroker
) -> None:
    names = _members_sharing(GATEWAYS)
    handled: list[tuple[str, str, dict[str, Any]]] = []
    async with (
        group(broker.port, topic_prefix, names, handled) as members,
        gateways(tmp_path, broker.port, topic_prefix) as outboxes,
    ):
        for state in LIFECYCLE:
            for gateway_id, outbox in outboxes.items():
                for k in (1, 2):
                    outbox.enqueue(
                        Priority.EVENT, "events", {"event_id": f"{gateway_id}-e{k}", "state": state}
                    )
        expected = len(GATEWAYS) * 2 * len(LIFECYCLE)

        def events() -> list[tuple[str, dict[str, Any]]]:
            return [(name, p) for name, kind, p in handled if kind == "events"]

        await until(lambda: len(events()) >= expected)
        # The broker re-delivers (as after a dropped connection): same payload, same seq.
        delivered = [p for _, p in events()]
        async with aiomqtt.Client("127.0.0.1", broker.port) as again:
            for payload in delivered[::3]:
                topic = f"{topic_prefix}/{payload['gateway']}/events"
                await again.publish(topic, json.dumps(payload).encode(), qos=1)
        await until(lambda: sum(m.duplicates for m in members) >= len(delivered[::3]))
    got = events()
    assert len(got) == expected, "each message handled once"
    by_event: dict[str, list[tuple[str, str]]] = {}
    for name, payload in got:
        by_event.setdefault(payload["event_id"], []).append((name, payload["state"]))
    for event_id, seen in by_event.items():
        gateway_id = event_id.rsplit("-", 1)[0]
        assert {name for name, _ in seen} == {owner(gateway_id, names)}, f"{event_id} in one member: {seen}"
        assert [state for _, state in seen] == list(LIFECYCLE), f"{event_id}: the whole lifecycle, in order"
    assert {name for name, _ in got} == set(names), "both members have gateways"


async def test_mosquitto_splits_one_gateways_messages_across_a_shared_subscription(
    topic_prefix: str, broker: LocalBroker
) -> None:
    """Why the group partitions on gateway instead: $share hands out messages, not gateways."""
    got: dict[int, list[int]] = {0: [], 1: []}
    async with contextlib.AsyncExitStack() as stack:
        members = [
            await stack.enter_async_context(
                aiomqtt.Client("127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5)
            )
            for _ in got
        ]
        for member in members:
            await member.subscribe(f"$share/cc/{topic_prefix}/+/events", qos=1)

        async def collect(n: int) -> None:
            async for message in members[n].messages:
                got[n].append(json.loads(bytes(message.payload))["seq"])  # type: ignore[arg-type]

        readers = [asyncio.create_task(collect(n)) for n in got]
        async with aiomqtt.Client("127.0.0.1", broker.port) as gateway:
            for seq in range(1, 7):
                await gateway.publish(
                    f"{topic_prefix}/gw-00/events", json.dumps({"seq": seq}).encode(), qos=1
                )
        await until(lambda: len(got[0]) + len(got[1]) == 6)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    assert got[0] and got[1], f"one gateway's events went to both members: {got}"
