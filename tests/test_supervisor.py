"""A failure stays where it happened: one device's bad batch, one task that fails."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from contracts.readings import ReadingBatch
from drivers.modbus.tcp import ModbusTcpDriver
from drivers.simulators.modbus_device import SimulatedModbusDevice
from gateway.poll import DevicePoller
from gateway.service.supervisor import Supervisor


async def test_a_device_whose_batches_raise_is_counted_logged_once_and_still_polled(
    dust_monitor: SimulatedModbusDevice, make_config, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    config = make_config(1883, dust_monitor.port)
    [device] = config.devices
    other = device.model_copy(update={"id": "dust-02"})
    supervisor = Supervisor()
    accepted: list[ReadingBatch] = []

    def detection(batch: ReadingBatch) -> None:  # a bug that only this device's data triggers
        if batch.device == "dust-01":
            raise ZeroDivisionError("float division by zero")
        accepted.append(batch)

    guarded = supervisor.guard(detection)
    pollers = [DevicePoller(ModbusTcpDriver(d), guarded) for d in (device, other)]
    tasks = [asyncio.create_task(p.run(), name=f"poll:{p.device}") for p in pollers]
    try:
        with caplog.at_level(logging.ERROR, logger="gateway.service.supervisor"):
            deadline = time.monotonic() + 20
            while supervisor.batch_errors["dust-01"] < 10 or len(accepted) < 10:
                assert time.monotonic() < deadline and not any(t.done() for t in tasks)
                await asyncio.sleep(0.05)
    finally:
        for poller in pollers:
            poller.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert pollers[0].state == "online", "the device is fine; the gateway failed on its data"
    assert pollers[0].polls >= 10
    logged = [r for r in caplog.records if "dust-01" in r.getMessage()]
    assert len(logged) == 1, "logged once per device and kind of failure"
    assert supervisor.as_dict()["batch_errors"] == {"dust-01": supervisor.batch_errors["dust-01"]}


async def test_a_failing_task_is_restarted_with_a_growing_delay_and_counted() -> None:
    supervisor = Supervisor(restart_min_s=0.05, restart_max_s=0.4)
    starts: list[float] = []

    async def flaky() -> None:
        starts.append(time.monotonic())
        if len(starts) <= 4:
            raise RuntimeError("the task failed")

    await asyncio.wait_for(supervisor.keep_running("flaky", flaky), 10)
    assert supervisor.restarts["flaky"] == 4 and len(starts) == 5
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g >= 0.025 for g in gaps), "never restarted at once"
    assert supervisor.as_dict()["restarts"] == {"flaky": 4}


async def test_a_stopped_task_is_not_restarted() -> None:
    supervisor = Supervisor(restart_min_s=0.01)
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(supervisor.keep_running("forever", forever))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert supervisor.restarts["forever"] == 0
