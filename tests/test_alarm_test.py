"""``gridgate alarm-test``: a real condition on the device, its alarm confirmed at the broker, recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.alarm_test import alarm_test, load_results, record
from firmware_tools.broker_target import BrokerTarget
from firmware_tools.local_broker import LocalBroker
from tests.helpers import Subscriber, running_gateway
from tests.keys import COMMAND_CENTER
from tests.test_monitor_cli import _gridgate


async def test_a_triggered_alarm_is_confirmed_acknowledged_and_its_clear_awaited(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    target = BrokerTarget("127.0.0.1", broker.port, prefix=topic_prefix)
    said: list[str] = []

    async def technician() -> None:
        while not any("trigger the alarm" in line for line in said):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        dust_monitor.set("pm10", 233.5)  # the test aerosol in front of the inlet
        while not any("restore normal" in line for line in said):
            await asyncio.sleep(0.05)
        dust_monitor.set("pm10", 20.0)

    async with running_gateway(make_config(broker.port, dust_monitor.port)):
        hands = asyncio.create_task(technician(), name="technician")
        result = await alarm_test(
            target,
            gateway="gw-test-01",
            device="dust-01",
            category="env.dust.pm10",
            timeout_s=20,
            clear_timeout_s=20,
            ack_as="li.ming",
            signer=COMMAND_CENTER,
            say=said.append,
        )
        await hands
        await subscriber.wait_for(lambda m: m.payload.get("state") == "acknowledged")
    assert result.result == "pass", said
    assert result.detail == "dust-01/pm10 = 233.5 µg/m³ (limit 150.0)"
    assert result.acknowledged_by == "test-cc" and result.cleared_at is not None
    assert result.latency_s is not None and 0 <= result.latency_s < 5
    assert any(line.startswith("PASS: alarm env.dust.pm10") for line in said)
    path = tmp_path / "alarm-tests.json"
    record(result, path)
    record(result, path)
    assert [r.event_id for r in load_results(path)] == [result.event_id] * 2


async def test_no_alarm_in_time_fails_exits_1_and_is_recorded(
    broker: LocalBroker, topic_prefix: str, tmp_path: Path
) -> None:
    results = tmp_path / "tests.json"
    status, out, err = await _gridgate(
        "alarm-test",
        "smoke-panel-01",
        "--broker",
        f"127.0.0.1:{broker.port}",
        "--prefix",
        topic_prefix,
        "--gateway",
        "gw-test-01",
        "--timeout-s",
        "1",
        "--technician",
        "Li Ming",
        "--record",
        str(results),
    )
    assert status == 1, err
    assert "FAIL: no alarm from smoke-panel-01 reached the broker within 1 s" in out
    (entry,) = load_results(results)
    assert entry.result == "fail" and entry.technician == "Li Ming"
