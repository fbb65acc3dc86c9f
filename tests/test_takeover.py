"""Two boxes, one identity: client ids distinct by default; a shared one detected and backed off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest

from firmware_tools.local_broker import LocalBroker
from gateway.config.models import GatewayIdentity, Uplink
from gateway.outbox import Outbox
from gateway.uplink import UplinkClient
from gateway.uplink.connection import SESSION_TAKEN_OVER
from gateway.uplink.identity import CLIENT_ID_FILE
from gateway.uplink.takeover import TakeoverWatch
from tests.helpers import Subscriber

IDENTITY = GatewayIdentity(id="gw-twin-01", site="Bench", grid_cell="330106001001")


@contextlib.asynccontextmanager
async def two_boxes(tmp_path: Path, config: Uplink) -> AsyncIterator[list[UplinkClient]]:
    """Two gateways with the same gateway id and config, each with its own storage directory."""
    outboxes = [Outbox(tmp_path / f"box-{n}", IDENTITY.id) for n in (1, 2)]
    boxes = [UplinkClient(config, IDENTITY, o, version="t", config_digest="d") for o in outboxes]
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(box.run(stopping)) for box in boxes]
    try:
        yield boxes
    finally:
        stopping.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
        for outbox in outboxes:
            outbox.close()


def _config(broker: LocalBroker, prefix: str, **kwargs: object) -> Uplink:
    return Uplink(
        host="127.0.0.1",
        port=broker.port,
        topic_prefix=prefix,
        reconnect_min_s=0.1,
        reconnect_max_s=1.0,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_boxes_sharing_a_gateway_id_get_their_own_client_ids_kept_across_restarts(
    tmp_path: Path, topic_prefix: str, broker: LocalBroker
) -> None:
    async with two_boxes(tmp_path, _config(broker, topic_prefix)) as boxes:
        await asyncio.wait_for(asyncio.gather(*(b.connected.wait() for b in boxes)), 10)
        await asyncio.sleep(2)
        assert [b.connections for b in boxes] == [1, 1], "neither took the other's session"
    first, second = (b.client_id for b in boxes)
    assert first != second and first.startswith(f"{IDENTITY.id}-") and second.startswith(f"{IDENTITY.id}-")
    assert (tmp_path / "box-1" / CLIENT_ID_FILE).read_text().strip() == first
    outbox = Outbox(tmp_path / "box-1", IDENTITY.id)
    again = UplinkClient(_config(broker, topic_prefix), IDENTITY, outbox, version="t", config_digest="d")
    assert again.client_id == first, "a restart keeps the client id (and so the broker session)"
    outbox.close()


# Mosquitto 2.0 ends a session taken over by closing the socket, sending no DISCONNECT 0x8E even
# under MQTT 5: both protocols are told by the repeated drops.
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_a_shared_client_id_is_reported_and_the_ping_pong_slows_down(
    tmp_path: Path,
    topic_prefix: str,
    broker: LocalBroker,
    caplog: pytest.LogCaptureFixture,
    protocol: Literal["5", "3.1.1"],
) -> None:
    shared = f"twin-{uuid.uuid4().hex[:8]}"
    config = _config(broker, topic_prefix, client_id=shared, protocol=protocol, keepalive_s=5)
    root = f"{topic_prefix}/{IDENTITY.id}"
    with caplog.at_level(logging.WARNING, logger="gateway.uplink"):
        async with (
            Subscriber("127.0.0.1", broker.port, f"{root}/notices") as notices,
            two_boxes(tmp_path, config) as boxes,
        ):
            notice = await notices.wait_for(lambda m: m.payload["notice"] == "session_taken_over", timeout=20)
            await asyncio.sleep(8)
            connections = sum(b.connections for b in boxes)
    assert notice.payload["client_id"] == shared and notice.payload["broker"] == f"127.0.0.1:{broker.port}"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(
        "session taken over" in line and shared in line and "dropped within" in line for line in errors
    ), errors
    # Without the backoff each box reconnects every 0.05-1 s: some 30 connections in those 8 s alone.
    assert connections <= 16, connections


def test_a_disconnect_saying_session_taken_over_is_a_takeover_at_once() -> None:
    """As MQTT 5 brokers that send DISCONNECT 0x8E (EMQX, HiveMQ, later Mosquitto) report it."""
    watch = TakeoverWatch(quick_s=30, first_s=60)
    assert watch.lost(reason=None, lasted_s=3600, broker_alive=True) is None, "an ordinary loss"
    for _ in range(5):  # a node dying again and again (the others die too) is no takeover
        assert watch.lost(reason=None, lasted_s=1, broker_alive=False) is None
    assert "0x8E" in (watch.lost(reason=SESSION_TAKEN_OVER, lasted_s=3600, broker_alive=True) or "")
    # Full jitter: each delay is drawn below a ceiling that doubles up to an hour, so one draw may
    # be short; 8 draws stayed under 600 s about one time in 200 (seen in a fresh-clone run), 30 never.
    delays = [watch.stay_away_s() for _ in range(30)]
    assert 30 <= delays[0] <= 60, "the first stay is the configured one, jittered"
    assert all(d <= min(3600, 60 * 2**n) for n, d in enumerate(delays)), "under a ceiling that doubles"
    assert max(delays[:4]) <= 480 < max(delays), "longer each time, up to an hour"
    assert watch.lost(reason=None, lasted_s=3600, broker_alive=True) is None and watch.takeovers == 0, (
        "a long stay resets it"
    )
