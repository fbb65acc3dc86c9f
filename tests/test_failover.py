"""[uplink] servers: the node in use dies, the gateway goes on via another, nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from firmware_tools.local_broker import LocalBroker
from gateway.config.models import GatewayIdentity, Uplink
from gateway.outbox import Outbox, Priority
from gateway.uplink import UplinkClient
from tests.uplink_peers import DurableSubscriber

IDENTITY = GatewayIdentity(id="gw-fo-01", site="Bench", grid_cell="330106001001")


@pytest.fixture
def brokers() -> Iterator[list[LocalBroker]]:
    with LocalBroker() as a, LocalBroker() as b, LocalBroker() as c:
        yield [a, b, c]


@contextlib.asynccontextmanager
async def watching(brokers: list[LocalBroker], topic_filter: str) -> AsyncIterator[list[DurableSubscriber]]:
    """A command center on every node (each node here is its own broker, so it listens to all)."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(DurableSubscriber(b.port, topic_filter)) for b in brokers]


def received_seqs(subscribers: list[DurableSubscriber], suffix: str) -> list[int]:
    return [seq for sub in subscribers for seq in sub.seqs(suffix)]


async def produce(outbox: Outbox, sent: list[int], stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        sent.append(outbox.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": len(sent)}))
        await asyncio.sleep(0.01)


def in_use(brokers: list[LocalBroker], uplink: UplinkClient) -> LocalBroker:
    return next(b for b in brokers if uplink.broker == f"127.0.0.1:{b.port}")


async def kill_in_use(
    brokers: list[LocalBroker], subs: list[DurableSubscriber], uplink: UplinkClient, sent: list[int]
) -> LocalBroker:
    """Kill the node the gateway uses; return once what it enqueues after arrives via another."""
    dying = in_use(brokers, uplink)
    watcher = subs[brokers.index(dying)]
    await watcher.wait_until(lambda: any(p.get("state") == "online" for _, p in watcher.received))
    dying.kill()
    gone = f"127.0.0.1:{dying.port}"
    await subs[0].wait_until(lambda: uplink.broker != gone and uplink.connected.is_set())
    survivor = subs[brokers.index(in_use(brokers, uplink))]
    after = sent[-1]
    await survivor.wait_until(lambda: any(s > after for s in survivor.seqs("/telemetry/d")))
    return dying


async def test_the_node_in_use_dies_twice_and_the_gateway_goes_on_via_the_others_losing_nothing(
    tmp_path: Path, topic_prefix: str, brokers: list[LocalBroker]
) -> None:
    config = Uplink(
        servers=[f"127.0.0.1:{b.port}" for b in brokers],
        topic_prefix=topic_prefix,
        reconnect_min_s=0.2,
        reconnect_max_s=1.0,
    )
    outbox = Outbox(tmp_path / "state", IDENTITY.id)
    uplink = UplinkClient(config, IDENTITY, outbox, version="t", config_digest="d")
    sent: list[int] = []
    root = f"{topic_prefix}/{IDENTITY.id}"
    async with watching(brokers, f"{root}/#") as subs:
        stopping, done = asyncio.Event(), asyncio.Event()
        link = asyncio.create_task(uplink.run(stopping))
        producer = asyncio.create_task(produce(outbox, sent, done))
        await asyncio.wait_for(uplink.connected.wait(), 10)
        assert in_use(brokers, uplink) is brokers[0], "in order: the first server first"
        used = []
        for _ in range(2):
            used.append(await kill_in_use(brokers, subs, uplink, sent))
        done.set()
        await producer
        await subs[0].wait_until(lambda: outbox.pending() == 0)
        stopping.set()
        await asyncio.wait_for(link, 15)
        survivor = subs[brokers.index(in_use(brokers, uplink))]
        await survivor.wait_until(lambda: sent[-1] in survivor.seqs("/telemetry/d"))
    assert used == brokers[:2], "in order: the next server after each death"
    got = received_seqs(subs, "/telemetry/d")
    assert set(sent) <= set(got), f"lost: {sorted(set(sent) - set(got))[:10]}"
    births = [p for sub in subs for t, p in sub.received if t.endswith("/state") and p["state"] == "online"]
    assert len({b["bd_seq"] for b in births}) == 3, "one birth per node used"
    outbox.close()


async def test_back_to_the_first_server_once_it_answers_again(
    tmp_path: Path, topic_prefix: str, brokers: list[LocalBroker]
) -> None:
    first, second = brokers[0], brokers[1]
    config = Uplink(
        servers=[f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"],
        topic_prefix=topic_prefix,
        reconnect_min_s=0.2,
        reconnect_max_s=1.0,
        return_to_first_s=0.3,
    )
    outbox = Outbox(tmp_path / "state", IDENTITY.id)
    uplink = UplinkClient(config, IDENTITY, outbox, version="t", config_digest="d")
    root = f"{topic_prefix}/{IDENTITY.id}"
    stopping = asyncio.Event()
    link = asyncio.create_task(uplink.run(stopping))
    await asyncio.wait_for(uplink.connected.wait(), 10)
    first.kill()
    async with DurableSubscriber(second.port, f"{root}/#") as on_second:
        await on_second.wait_until(lambda: uplink.broker == f"127.0.0.1:{second.port}")
        while_away = outbox.enqueue(Priority.EVENT, "events", {"state": "raised"})
        await on_second.wait_until(lambda: while_away in on_second.seqs("/events"))
    first.start()
    async with DurableSubscriber(first.port, f"{root}/#") as on_first:
        await on_first.wait_until(
            lambda: uplink.broker == f"127.0.0.1:{first.port}" and uplink.connected.is_set()
        )
        back = outbox.enqueue(Priority.EVENT, "events", {"state": "cleared"})
        await on_first.wait_until(lambda: back in on_first.seqs("/events"))
        stopping.set()
        await asyncio.wait_for(link, 15)
        states = [p for t, p in on_first.received if t.endswith("/state")]
    assert states[-1]["state"] == "offline" and states[-1]["reason"] == "shutdown"
    outbox.close()


def test_servers_and_host_are_one_or_the_other_and_a_bad_entry_is_named() -> None:
    with pytest.raises(ValueError, match="not both"):
        Uplink(host="a", servers=["b:1883"])
    with pytest.raises(ValueError, match="not both"):
        Uplink()
    with pytest.raises(ValueError, match=r'"10\.0\.0\.5" is not "host:port"'):
        Uplink(servers=["10.0.0.6:1883", "10.0.0.5"])
    with pytest.raises(ValueError, match="in_order"):
        Uplink(servers=["a:1", "b:2"], server_order="shuffle", return_to_first_s=30)
    assert Uplink(servers=["[fd00::5]:8883", "b:1"]).endpoints == [("fd00::5", 8883), ("b", 1)]
