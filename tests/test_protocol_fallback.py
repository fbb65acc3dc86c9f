"""protocol = "auto": MQTT 5 where the broker speaks it, 3.1.1 where it refuses 5, said in the birth."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from firmware_tools.local_broker import LocalBroker
from firmware_tools.local_nats import LocalNats, nats_binary
from gateway.config.models import GatewayIdentity, Uplink
from gateway.outbox import Outbox, Priority
from gateway.uplink import UplinkClient
from tests.helpers import Subscriber

IDENTITY = GatewayIdentity(id="gw-proto-01", site="Bench", grid_cell="330106001001")


async def _birth_and_delivery(port: int, tmp_path: Path, prefix: str) -> dict[str, Any]:
    """The birth (checked against its schema); meanwhile an event was enqueued and acknowledged."""
    config = Uplink(
        host="127.0.0.1", port=port, topic_prefix=prefix, reconnect_min_s=0.1, reconnect_max_s=0.5
    )
    outbox = Outbox(tmp_path / "state", IDENTITY.id)
    uplink = UplinkClient(config, IDENTITY, outbox, version="t", config_digest="d")
    async with Subscriber("127.0.0.1", port, f"{prefix}/{IDENTITY.id}/state") as sub:
        stopping = asyncio.Event()
        task = asyncio.create_task(uplink.run(stopping))
        try:
            birth = await sub.wait_for(lambda m: m.payload.get("state") == "online", timeout=20)
            outbox.enqueue(Priority.EVENT, "events", {"state": "raised"})
            while outbox.pending():
                await asyncio.sleep(0.05)
        finally:
            stopping.set()
            await asyncio.wait_for(task, 15)
    outbox.close()
    return birth.payload


@pytest.mark.skipif(
    nats_binary() is None, reason="nats-server is not installed (apt-get install nats-server)"
)
async def test_a_broker_that_refuses_mqtt5_gets_311_and_the_log_and_birth_say_so(
    tmp_path: Path, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    with LocalNats() as nats, caplog.at_level(logging.INFO, logger="gateway.uplink"):
        birth = await _birth_and_delivery(nats.mqtt_port, tmp_path, topic_prefix)
    assert birth["protocol"] == "3.1.1"
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("gateway.uplink")]
    assert any("refused MQTT 5" in line and "3.1.1" in line for line in lines), lines
    assert not any("timed out" in line for line in lines), lines


async def test_a_broker_that_speaks_mqtt5_gets_5(
    tmp_path: Path, topic_prefix: str, broker: LocalBroker
) -> None:
    birth = await _birth_and_delivery(broker.port, tmp_path, topic_prefix)
    assert birth["protocol"] == "5"
