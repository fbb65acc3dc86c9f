"""`gridgate monitor`, `gridgate ack` and `gridgate verify` against a running gateway and broker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.board import Board
from firmware_tools.broker_target import BrokerTarget
from firmware_tools.local_broker import LocalBroker, free_port
from firmware_tools.monitor import follow
from tests.helpers import Subscriber, run_gridgate, running_gateway
from tests.keys import key_file


async def _gridgate(*args: str) -> tuple[int, str, str]:
    return await run_gridgate(*args, timeout=60)


async def test_monitor_board_and_ack_verify_commands(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    where = ("--broker", f"127.0.0.1:{broker.port}", "--prefix", topic_prefix)
    board = Board()
    target = BrokerTarget("127.0.0.1", broker.port, prefix=topic_prefix)
    following = asyncio.create_task(follow(target, board), name="follow")
    try:
        async with running_gateway(make_config(broker.port, dust_monitor.port)):
            # Events are not retained: the monitor shows those raised while it runs.
            monitoring = asyncio.create_task(_gridgate("monitor", *where, "--duration", "12"))
            await asyncio.sleep(3.0)  # the process has started and subscribed
            dust_monitor.set("pm10", 187.5)
            raised = (await subscriber.wait_for(lambda m: m.payload.get("state") == "raised")).payload
            await asyncio.sleep(0.3)
            text = board.render(color=False)
            assert "gw-test-01" in text and "ONLINE" in text and "dust-01" in text
            assert "NOT ACKNOWLEDGED" in text and f"id {raised['event_id']}" in text and "IMPORTANT" in text
            assert "peak 187.5 µg/m³ limit 150" in text
            assert all(len(line) <= 80 for line in text.splitlines())

            status, out, err = await _gridgate("ack", raised["event_id"], "--operator", "op-9", *where)
            assert status == 4, err  # unsigned: refused, and told how to sign
            assert json.loads(out)["error"]["code"] == "unsigned" and "--key FILE" in out
            key = str(key_file(tmp_path))
            status, out, err = await _gridgate("ack", raised["event_id"], "--key", key, *where)
            assert status == 0, err
            assert json.loads(out)["result"]["acknowledged_by"] == "test-cc"
            status, out, err = await _gridgate(
                "verify", raised["event_id"], "--key", key, *where, "--protocol", "3.1.1"
            )
            assert status == 1, err  # answered, and the answer is "not verified"
            assert json.loads(out)["result"]["condition"] == "present"
            status, out, err = await _gridgate("ack", "no-such-event", "--key", key, *where)
            assert status == 4 and json.loads(out)["error"]["code"] == "unknown_event"

            status, out, err = await monitoring
            assert status == 0, err
            assert "ACK by test-cc" in out and "OPEN EVENTS (1)" in out
            await subscriber.wait_for(lambda m: m.payload.get("state") == "acknowledged")
            await asyncio.sleep(0.2)
            assert "ACK by test-cc" in board.render(color=False)
            dust_monitor.set("pm10", 20.0)
            await subscriber.wait_for(lambda m: m.payload.get("state") == "cleared")
            await asyncio.sleep(0.2)
            assert "OPEN EVENTS (0)" in board.render(color=False)
        await subscriber.wait_for(lambda m: m.payload.get("state") == "offline")
        await asyncio.sleep(0.2)
        assert "OFFLINE" in board.render(color=False)
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)

    status, _, err = await _gridgate(
        "ack",
        "x",
        "--operator",
        "op",
        "--broker",
        f"127.0.0.1:{broker.port}",
        "--prefix",
        topic_prefix,
    )
    assert status == 3 and "online under" in err  # the gateway is gone: nobody to ask


async def test_monitor_exits_3_with_a_clear_message_when_the_broker_is_dead() -> None:
    port = free_port()
    status, out, err = await _gridgate("monitor", "--broker", f"127.0.0.1:{port}", "--duration", "5")
    assert status == 3
    assert f"cannot reach the broker at mqtt://127.0.0.1:{port}" in err
    assert "GATEWAYS" not in out
    status, _, err = await _gridgate("verify", "x", "--broker", f"127.0.0.1:{port}")
    assert status == 3 and "cannot reach the broker" in err
