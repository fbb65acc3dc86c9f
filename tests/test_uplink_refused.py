"""What the broker says to each publish, against a real Mosquitto: refusals, expiry, acknowledgements."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import tempfile
from pathlib import Path

import aiomqtt
import pytest

from firmware_tools.local_broker import LocalBroker
from gateway.config.models import GatewayIdentity, Uplink
from gateway.outbox import Outbox, Priority
from gateway.uplink import UplinkClient
from tests.test_uplink import running_uplink
from tests.uplink_peers import DurableSubscriber

IDENTITY = GatewayIdentity(id="gw-refused", site="Bench", grid_cell="330106001001")


def _acl(root: str, *, events: bool) -> str:
    """Anonymous clients read everything and may publish the gateway's state and telemetry (and events)."""
    lines = ["topic read #", f"topic write {root}/state", f"topic write {root}/telemetry/#"]
    if events:
        lines.append(f"topic write {root}/events")
    return "\n".join(lines) + "\n"


async def test_an_alarm_the_broker_refuses_stays_queued_and_goes_once_the_acl_allows_it(
    tmp_path: Path, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An MQTT 5 broker whose ACL denies the events topic answers the alarm's publish with
    "Not authorized" and drops it: the gateway must not count it delivered and delete it."""
    root = f"{topic_prefix}/{IDENTITY.id}"
    with tempfile.TemporaryDirectory() as readable:  # a broker started as root reads it as "mosquitto"
        Path(readable).chmod(0o755)
        acl = Path(readable) / "acl"
        acl.write_text(_acl(root, events=False))
        await _refused_then_allowed(acl, tmp_path, topic_prefix, caplog)


async def _refused_then_allowed(
    acl: Path, tmp_path: Path, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = f"{topic_prefix}/{IDENTITY.id}"
    with LocalBroker(extra_config=f"acl_file {acl}\n") as broker:
        config = Uplink(host="127.0.0.1", port=broker.port, topic_prefix=topic_prefix, reconnect_min_s=0.1)
        outbox = Outbox(tmp_path / "state", IDENTITY.id)
        uplink = UplinkClient(config, IDENTITY, outbox, version="t", config_digest="d")
        uplink.refused.retry_s = 1.0
        caplog.set_level(logging.WARNING, logger="gateway.uplink")
        async with DurableSubscriber(broker.port, f"{root}/#") as cc, running_uplink(uplink):
            await asyncio.wait_for(uplink.connected.wait(), 10)
            alarm = outbox.enqueue(Priority.EVENT, "events", {"state": "raised"})
            readings = [outbox.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": n}) for n in range(300)]
            await cc.wait_until(lambda: cc.seqs("/telemetry/d") == readings)  # the rest flows meanwhile
            await asyncio.sleep(1.5)  # offered again after retry_s, refused again
            assert uplink.refused.count >= 2
            assert uplink.refused.last == f"Not authorized on {root}/events"
            assert outbox.pending() == 1, "the refused alarm is still queued"
            assert [r.getMessage() for r in caplog.records if "refused" in r.getMessage()] == [
                f"uplink: the broker refused a message on {root}/events (Not authorized); it stays queued"
                " and the topic's messages are offered again in 1 s"
            ], "one warning per topic and reason, not one per refusal"
            assert not cc.seqs("/events")
            await cc.wait_until(lambda: uplink.idle, timeout=2)  # waits for the retry, does not spin

            acl.write_text(_acl(root, events=True))
            os.kill(broker.pid, signal.SIGHUP)  # Mosquitto reads its ACL file again
            await cc.wait_until(lambda: cc.seqs("/events") == [alarm], timeout=10)
            await cc.wait_until(lambda: outbox.pending() == 0, timeout=5)
            assert uplink.connections == 1, "a refusal is not a broken connection"
        outbox.close()


async def test_a_backlog_arrives_whole_in_order_with_its_expiry_and_leaves_nothing_behind(
    broker: LocalBroker, tmp_path: Path, topic_prefix: str
) -> None:
    """A backlog goes out a window at a time, the publishes of a round written together: each
    arrives whole and in order, large ones too (they fill the socket and are written in parts).
    Every PUBACK settles its message in the outbox and in the MQTT library alike (a message the
    library still held would be memory that grows for as long as the connection lasts), and under
    MQTT 5 each telemetry message tells the broker when to drop it (`telemetry_expiry_s`)."""
    root = f"{topic_prefix}/{IDENTITY.id}"
    config = Uplink(host="127.0.0.1", port=broker.port, topic_prefix=topic_prefix, telemetry_expiry_s=600)
    outbox = Outbox(tmp_path / "state", IDENTITY.id)
    uplink = UplinkClient(config, IDENTITY, outbox, version="t", config_digest="d")
    expiries: list[int | None] = []
    received: list[tuple[int, int]] = []
    async with aiomqtt.Client("127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5) as cc:
        await cc.subscribe(f"{root}/telemetry/#", qos=1)
        async with running_uplink(uplink):
            await asyncio.wait_for(uplink.connected.wait(), 10)
            sent = [(n, 150_000 if n % 50 == 7 else n % 13 * 40) for n in range(500)]
            for n, size in sent:
                outbox.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": n, "pad": "x" * size})

            async def receive() -> None:
                async for message in cc.messages:
                    body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                    received.append((body["n"], len(body["pad"])))
                    expiries.append(getattr(message.properties, "MessageExpiryInterval", None))
                    if len(expiries) == 500:
                        return

            await asyncio.wait_for(receive(), 20)
            assert received == sent
            for n in range(50):  # no one listens: MQTT 5's "no matching subscribers" is a delivery too
                outbox.enqueue(Priority.EVENT, "events", {"n": n})
            for _ in range(100):
                if outbox.pending() == 0:
                    break
                await asyncio.sleep(0.05)
            assert outbox.pending() == 0
            assert uplink.acknowledged >= 550 and uplink.refused.count == 0
            live = uplink._live
            assert live is not None
            paho = live[0]._client
            assert "_handle_pubackcomp" in vars(paho), "PUBACKs of outbox messages are settled by the window"
            assert paho._out_messages == {}, "the MQTT library still holds acknowledged messages"
    outbox.close()
    assert all(e is not None and 590 <= e <= 600 for e in expiries), sorted(set(map(str, expiries)))


async def test_a_full_buffer_sheds_refused_telemetry_not_the_alarms_behind_it(
    tmp_path: Path, topic_prefix: str
) -> None:
    """Messages the broker refused are queued, not in flight: when the buffer fills, they are shed
    oldest first with a gap notice like any queued telemetry, and alarms committed after them go out."""
    root = f"{topic_prefix}/{IDENTITY.id}"
    with tempfile.TemporaryDirectory() as readable:
        Path(readable).chmod(0o755)
        acl = Path(readable) / "acl"
        acl.write_text(_acl(root, events=True) + f"topic write {root}/notices\n")
        acl.write_text(acl.read_text().replace(f"topic write {root}/telemetry/#\n", ""))
        with LocalBroker(extra_config=f"acl_file {acl}\n") as broker:
            config = Uplink(host="127.0.0.1", port=broker.port, topic_prefix=topic_prefix, inflight_window=32)
            outbox = Outbox(tmp_path / "state", IDENTITY.id, max_bytes=100_000)
            uplink = UplinkClient(config, IDENTITY, outbox, version="t", config_digest="d")
            async with DurableSubscriber(broker.port, f"{root}/#") as cc, running_uplink(uplink):
                await asyncio.wait_for(uplink.connected.wait(), 10)
                pad = "x" * 5_000
                outbox.enqueue_many(
                    [(Priority.TELEMETRY, f"telemetry/d{n}", {"n": n, "pad": pad}, False) for n in range(16)]
                )
                await cc.wait_until(lambda: uplink.refused.count >= 16, timeout=10)
                alarms = []
                for n in range(5):  # one commit each, as alarms come
                    alarms.append(outbox.enqueue(Priority.EVENT, "events", {"n": n, "pad": pad}))
                await cc.wait_until(lambda: cc.seqs("/events") == alarms, timeout=10)
                await cc.wait_until(lambda: any(p.get("notice") == "gap" for _, p in cc.received), timeout=10)
            outbox.close()
    gaps = [p for t, p in cc.received if t.endswith("/notices") and p.get("notice") == "gap"]
    assert [g["kind"] for g in gaps] == ["telemetry"], gaps
    assert gaps[0]["dropped"] >= 1 and set(gaps[0]["topics"]) <= {f"telemetry/d{n}" for n in range(16)}
