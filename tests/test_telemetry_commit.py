"""Telemetry is committed when the uplink is idle, not on a fixed timer, and nothing is lost either way."""

from __future__ import annotations

import asyncio
import time

from drivers.simulators.modbus_device import SimulatedModbusDevice
from gateway.outbox import Outbox, Priority, TelemetryBatcher
from tests.helpers import Subscriber, running_gateway


async def test_telemetry_goes_out_as_polled_while_the_uplink_is_idle(
    broker, dust_monitor: SimulatedModbusDevice, make_config, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    config = make_config(broker.port, dust_monitor.port)
    # A commit interval far longer than the test: only an idle wire can have committed what arrives.
    config = config.model_copy(
        update={"storage": config.storage.model_copy(update={"telemetry_commit_s": 60.0})}
    )
    telemetry = f"{topic_prefix}/gw-test-01/telemetry/#"
    async with Subscriber("127.0.0.1", broker.port, telemetry) as sub, running_gateway(config) as daemon:
        started = time.monotonic()
        await sub.wait_for(lambda m: True, timeout=20)
        first = time.monotonic() - started
        await asyncio.sleep(2.0)
        assert daemon.outbox is not None and daemon.outbox.pending() <= 3
    polled = len(sub.received)
    assert first < 20 and polled >= 10, f"{polled} telemetry messages in 2 s at a 0.1 s poll"
    seqs = [m.payload["seq"] for m in sub.received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_without_an_uplink_groups_wait_for_the_interval_or_a_full_group(tmp_path) -> None:  # type: ignore[no-untyped-def]
    box = Outbox(tmp_path, "gw-1")
    batcher = TelemetryBatcher(box, interval_s=0.3, coalesce_s=0.01, max_messages=5)
    task = asyncio.create_task(batcher.run())
    try:
        batcher.add("telemetry/d", {"n": 0})
        await asyncio.sleep(0.1)
        assert box.pending() == 0, "no uplink idle: the group waits"
        await asyncio.sleep(0.4)
        assert box.pending() == 1, "committed by the interval"
        for n in range(1, 6):
            batcher.add("telemetry/d", {"n": n})
        assert box.pending() == 6, "a full group is committed at once"
        box.wire_idle.set()  # the uplink has sent everything: the next message goes at once
        batcher.add("telemetry/d", {"n": 6})
        await asyncio.sleep(0.1)
        assert box.pending() == 7
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [m.priority for m in box.peek(10)] == [Priority.TELEMETRY] * 7
    box.close()
