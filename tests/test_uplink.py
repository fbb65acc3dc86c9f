"""The uplink against a real Mosquitto: outages, protocols, birth/death, commands, TLS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import aiomqtt
import pytest

from contracts.config import TlsFiles
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config.models import GatewayIdentity, Uplink
from gateway.outbox import Outbox, Priority
from gateway.uplink import UplinkClient
from tests.uplink_peers import DurableSubscriber, make_certificates, persistent_broker

IDENTITY = GatewayIdentity(id="gw-up-01", site="Bench", grid_cell="330106001001")


@contextlib.asynccontextmanager
async def running_uplink(uplink: UplinkClient) -> AsyncIterator[asyncio.Event]:
    stopping = asyncio.Event()
    task = asyncio.create_task(uplink.run(stopping), name="uplink")
    try:
        yield stopping
    finally:
        stopping.set()
        await asyncio.wait_for(task, 15)


async def _publish(port: int, topic: str, payload: bytes) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.publish(topic, payload, qos=1)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_after_an_outage_backlog_is_historical_events_first_and_commands_work_again(
    tmp_path: Path, topic_prefix: str, protocol: Literal["5", "3.1.1"]
) -> None:
    with persistent_broker(tmp_path / "broker-db") as broker:
        config = Uplink(
            host="127.0.0.1",
            port=broker.port,
            protocol=protocol,
            topic_prefix=topic_prefix,
            reconnect_min_s=0.1,
            reconnect_max_s=0.5,
        )
        outbox = Outbox(tmp_path / "state", IDENTITY.id)
        uplink = UplinkClient(config, IDENTITY, outbox, version="t", config_digest="d")
        commands: list[bytes] = []
        uplink.subscribe("commands/#", lambda _, message: commands.append(bytes(message.payload)))  # type: ignore[arg-type]
        root = f"{topic_prefix}/{IDENTITY.id}"
        async with DurableSubscriber(broker.port, f"{root}/#") as cc, running_uplink(uplink):
            await asyncio.wait_for(uplink.connected.wait(), 10)
            live = outbox.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": 0})
            await cc.wait_until(lambda: live in cc.seqs("/telemetry/d"))
            await _publish(broker.port, f"{root}/commands/ping", b"1")
            await cc.wait_until(lambda: commands == [b"1"])

            broker.stop()
            await asyncio.sleep(0.5)
            backlog = [outbox.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": n}) for n in range(1, 50)]
            alarm = outbox.enqueue(Priority.EVENT, "events", {"state": "raised"})
            broker.start()
            await cc.wait_until(lambda: set(backlog) <= set(cc.seqs("/telemetry/d")))
            for _ in range(10):  # as a command center would, ask again until answered
                await _publish(broker.port, f"{root}/commands/ping", b"2")
                with contextlib.suppress(asyncio.TimeoutError):
                    await cc.wait_until(lambda: b"2" in commands, timeout=3)
                    break
            assert commands[0] == b"1" and b"2" in commands

        order = [p["seq"] for t, p in cc.received if not t.endswith("/state")]
        assert order.index(alarm) < order.index(backlog[0]), "events before telemetry"
        replayed = {p["seq"]: p for t, p in cc.received if p["seq"] in [*backlog, alarm]}
        assert all(p.get("historical") is True for p in replayed.values())
        first_live = next(p for t, p in cc.received if p["seq"] == live)
        assert "historical" not in first_live
        births = [p for t, p in cc.received if t.endswith("/state") and p["state"] == "online"]
        assert births[0]["bd_seq"] == 1 and births[1]["bd_seq"] > 1, "a new bd_seq per connection"
        outbox.close()


async def test_tls_with_client_certificates_and_a_wrong_one_refused_clearly(
    tmp_path: Path, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    certs = make_certificates(tmp_path)
    tls_port = free_port()
    listener = (
        f"listener {tls_port} 127.0.0.1\ncafile {certs['ca']}\ncertfile {certs['server_cert']}\n"
        f"keyfile {certs['server_key']}\nrequire_certificate true\nuser root\n"
    )
    with LocalBroker(extra_config=listener) as broker:
        good = Uplink(
            host="127.0.0.1",
            port=tls_port,
            topic_prefix=topic_prefix,
            reconnect_min_s=0.2,
            reconnect_max_s=0.5,
            tls=TlsFiles(ca_file=certs["ca"], cert_file=certs["client_cert"], key_file=certs["client_key"]),
        )
        outbox = Outbox(tmp_path / "good", IDENTITY.id)
        uplink = UplinkClient(good, IDENTITY, outbox, version="t", config_digest="d")
        root = f"{topic_prefix}/{IDENTITY.id}"
        async with DurableSubscriber(broker.port, f"{root}/#") as cc, running_uplink(uplink):
            seq = outbox.enqueue(Priority.EVENT, "events", {"state": "raised"})
            await cc.wait_until(lambda: seq in cc.seqs("/events"))
        outbox.close()

        rogue = good.model_copy(
            update={
                "tls": TlsFiles(
                    ca_file=certs["ca"],
                    cert_file=certs["rogue_client_cert"],
                    key_file=certs["rogue_client_key"],
                )
            }
        )
        outbox = Outbox(tmp_path / "rogue", IDENTITY.id)
        uplink = UplinkClient(rogue, IDENTITY, outbox, version="t", config_digest="d")
        with caplog.at_level(logging.WARNING, logger="gateway.uplink"):
            async with running_uplink(uplink):
                outbox.enqueue(Priority.EVENT, "events", {"state": "raised"})
                for _ in range(100):
                    if any("TLS" in r.getMessage() for r in caplog.records):
                        break
                    await asyncio.sleep(0.1)
            assert not uplink.connected.is_set()
        lines = [r.getMessage() for r in caplog.records if r.name == "gateway.uplink.client"]
        assert lines, [r.getMessage() for r in caplog.records]
        assert f"127.0.0.1:{tls_port}" in lines[0] and "cert_file" in lines[0]
        assert outbox.pending() == 1, "the refused gateway keeps its event"
        outbox.close()


async def test_a_message_still_queued_when_the_connection_closes_is_delivered_again(
    broker: LocalBroker, tmp_path: Path, topic_prefix: str
) -> None:
    """A whole-runtime apply closes the uplink with messages received and not yet handled (a burst of
    config bundles): they are acknowledged only once handled, so the broker sends them again."""
    config = Uplink(host="127.0.0.1", port=broker.port, topic_prefix=topic_prefix, reconnect_min_s=0.1)
    outbox = Outbox(tmp_path / "state", IDENTITY.id)
    root = f"{topic_prefix}/{IDENTITY.id}"
    busy = asyncio.Event()

    async def stuck(_: aiomqtt.Client, message: aiomqtt.Message) -> None:
        busy.set()
        await asyncio.Event().wait()  # still handling the first when the connection closes

    first = UplinkClient(config, IDENTITY, outbox, version="t", config_digest="d")
    first.subscribe("config/bundle", stuck)
    async with running_uplink(first):
        await asyncio.wait_for(first.connected.wait(), 10)
        for n in (1, 2):
            await _publish(broker.port, f"{root}/config/bundle", b"bundle %d" % n)
        await asyncio.wait_for(busy.wait(), 10)
    again: list[bytes] = []
    second = UplinkClient(config, IDENTITY, outbox, version="t", config_digest="d")
    second.subscribe("config/bundle", lambda _, message: again.append(bytes(message.payload)))  # type: ignore[arg-type]
    async with running_uplink(second):
        for _ in range(100):
            if len(again) == 2:
                break
            await asyncio.sleep(0.05)
    outbox.close()
    assert again == [b"bundle 1", b"bundle 2"]
