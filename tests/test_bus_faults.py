"""What goes wrong on a shared line is counted, classified and kept away from detection.

Real peers only: the RTU simulator on a pty pair, and pymodbus' own RTU server
to check the gateway's frames against an independent implementation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer

from contracts.errors import DeviceTimeout
from contracts.readings import ReadingBatch
from drivers.modbus.bus import LineFault, ModbusBus
from drivers.modbus.config import BusConfig, ModbusConfig
from drivers.modbus.device import ModbusBusDriver
from drivers.modbus.registers import ModbusChannel
from drivers.simulators.modbus_device import SimulatedModbusDevice
from drivers.simulators.rtu_server import RtuLineServer
from firmware_tools.local_broker import free_port
from gateway.poll import DevicePoller

CHANNELS = (
    ModbusChannel(id="pm10", address=2, type="float32"),
    ModbusChannel(id="temperature", address=8, type="int16", scale=0.1),
    ModbusChannel(id="alarm", address=9, type="bits", bit=0),
    ModbusChannel(id="tamper", address=9, type="bits", bit=3),
)


def _driver(bus: ModbusBus, unit: int, channels=CHANNELS, **settings) -> ModbusBusDriver:  # type: ignore[no-untyped-def]
    config = ModbusConfig(
        id=f"dev-{unit}",
        driver="modbus",
        bus=bus.id,
        unit_id=unit,
        channels=channels,
        timeout_s=0.2,
        **settings,
    )
    return ModbusBusDriver(config, bus)


@pytest.fixture
async def line() -> AsyncIterator[tuple[RtuLineServer, ModbusBus]]:
    devices = [SimulatedModbusDevice(CHANNELS, unit_id=unit) for unit in (1, 2)]
    for device in devices:
        device.set("pm10", 42.5)
        device.set("temperature", -3.2)
        device.set("tamper", 1)
    server = RtuLineServer(devices)
    path = await server.serve_pty()
    bus = ModbusBus(BusConfig(id="rs485-1", device=path))
    yield server, bus
    bus.close()
    await server.stop()


@pytest.mark.parametrize("fault", ["garbage", "crc", "wrong_unit"])
async def test_a_spoiled_answer_is_counted_for_its_device_and_bus_and_is_no_value(
    line: tuple[RtuLineServer, ModbusBus], fault: str
) -> None:
    server, bus = line
    spoiled, healthy = _driver(bus, 1, retries=0), _driver(bus, 2, retries=0)
    server.faults[1] = fault  # type: ignore[assignment]
    with pytest.raises(LineFault) as caught:
        await spoiled.read()
    assert caught.value.fault == fault and "unit 1 on bus rs485-1" in str(caught.value)
    batch = await healthy.read()  # the next answer on the line is not confused with the last
    assert list(batch.values) == [42.5, pytest.approx(-3.2), 0.0, 1.0]
    assert getattr(spoiled.counters, fault) == 1 and spoiled.counters.ok == 0
    assert getattr(bus.counters, fault) == 1 and bus.counters.ok == 1
    assert healthy.counters.ok == 1 and getattr(healthy.counters, fault) == 0


async def test_exception_answers_and_silence_are_told_apart(line: tuple[RtuLineServer, ModbusBus]) -> None:
    server, bus = line
    server.devices[1].exception = ExcCodes.ILLEGAL_ADDRESS
    with pytest.raises(LineFault, match="exception code 2") as caught:
        await _driver(bus, 1, retries=0).read()
    assert caught.value.fault == "exception"
    with pytest.raises(DeviceTimeout, match=r"no answer within 0\.2 s"):
        await _driver(bus, 7, retries=0).read()  # nobody has unit 7
    assert bus.counters.exception == 1 and bus.counters.timeouts == 1


async def test_noise_on_the_line_between_polls_is_not_taken_for_an_answer(
    line: tuple[RtuLineServer, ModbusBus],
) -> None:
    server, bus = line
    driver = _driver(bus, 1)
    await driver.read()
    server.noise(11)
    await asyncio.sleep(0.05)
    batch = await driver.read()
    assert batch.values[0] == 42.5
    assert bus.counters.garbage >= 1, "the stale bytes were counted"


async def test_a_device_answering_garbage_is_faulty_not_offline_and_never_reaches_detection(
    line: tuple[RtuLineServer, ModbusBus],
) -> None:
    server, bus = line
    batches: list[ReadingBatch] = []
    changes: list[str | None] = []
    poller = DevicePoller(_driver(bus, 1, offline_after=2), batches.append, lambda p: changes.append(p.state))
    server.faults[1] = "crc"
    for _ in range(3):
        await poller.poll_once()
    assert changes == ["faulty"] and batches == []
    del server.faults[1]
    await poller.poll_once()
    assert changes == ["faulty", "online"] and len(batches) == 1


def test_a_down_device_is_tried_on_a_growing_interval_up_to_its_limit() -> None:
    config = ModbusConfig(
        id="dev-1",
        driver="modbus",
        bus="b",
        unit_id=1,
        channels=CHANNELS,
        poll_interval_s=2.0,
        offline_after=3,
        retry_max_s=30.0,
    )
    bus = ModbusBus(BusConfig(id="b", transport="rtu_tcp", host="127.0.0.1", port=9))
    poller = DevicePoller(ModbusBusDriver(config, bus), lambda batch: None)
    waits = []
    for failed in range(1, 10):
        poller.failed_in_row = failed
        poller.state = "online" if failed < 3 else "offline"
        waits.append(poller._wait())
    assert waits == [2.0, 2.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


NUMBERS = tuple(
    ModbusChannel.model_validate(
        {
            "id": f"{kind}-{word}-{byte}",
            "address": 4 * i,
            "type": kind,
            "word_order": word,
            "byte_order": byte,
            "scale": 0.5 if kind.startswith("int") else 1.0,
        }
    )
    for i, (kind, word, byte) in enumerate(
        (k, w, b)
        for k in ("int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64")
        for w in ("big", "little")
        for b in ("big", "little")
    )
)
ALL_TYPES = (
    *NUMBERS,
    ModbusChannel(id="status-alarm", address=200, type="bits", bit=0),
    ModbusChannel(id="status-mode", address=200, type="bits", bit=4, bits=3),
    ModbusChannel(id="status-battery", address=200, type="bits", bit=15),
)


async def test_every_type_word_order_byte_order_and_bit_field_reads_back_over_rtu() -> None:
    device = SimulatedModbusDevice(ALL_TYPES, unit_id=3)
    written = {}
    for ch in ALL_TYPES:
        value = {"bits": 1.0 if ch.bits == 1 else 5.0, "float32": 187.5, "float64": -1234.5678}.get(
            ch.type, -1234.5 if ch.type.startswith("int") else 4321.0
        )
        device.set(ch.id, value)
        written[ch.id] = value
    server = RtuLineServer([device])
    bus = ModbusBus(BusConfig(id="rs485-1", device=await server.serve_pty()))
    try:
        driver = _driver(bus, 3, channels=ALL_TYPES)
        batch = await driver.read()
    finally:
        bus.close()
        await server.stop()
    assert dict(zip(batch.channels, batch.values.tolist(), strict=True)) == written
    # 128 registers of numbers: the 125-register limit splits them in two; the status word is a third
    assert [r.count for r in driver.plan] == [124, 4, 1]


@pytest.mark.parametrize(("transport", "framer"), [("rtu_tcp", FramerType.RTU), ("tcp", FramerType.SOCKET)])
async def test_frames_agree_with_pymodbus_own_server(transport: str, framer: FramerType) -> None:
    """RTU over TCP and Modbus TCP, read from an independent implementation of the protocol."""
    device = SimulatedModbusDevice(CHANNELS, unit_id=5)
    device.set("pm10", 61.25)
    device.set("temperature", 21.5)
    device.set("alarm", 1)
    port = free_port()
    server = ModbusTcpServer(device.sim_device(), address=("127.0.0.1", port), framer=framer)
    await server.serve_forever(background=True)
    bus = ModbusBus(BusConfig(id="gw", transport=transport, host="127.0.0.1", port=port))  # type: ignore[arg-type]
    try:
        batch = await _driver(bus, 5).read()
    finally:
        bus.close()
        await server.shutdown()  # type: ignore[no-untyped-call]
    assert batch.values.tolist() == [61.25, 21.5, 1.0, 0.0]


class _SwallowsCancellation(ModbusBusDriver):
    """Reads the way pymodbus sometimes does: a cancelled request is caught and forgotten.

    With ``forget`` the task's own count of cancellations is undone too, so the
    task looks as it does on Python 3.10, where there is no such count.
    """

    forget = False

    async def read(self) -> ReadingBatch:
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.forget and task is not None and hasattr(task, "uncancel"):
                task.uncancel()
        return await super().read()


@pytest.mark.parametrize("forget", [False, True], ids=["cancelling-known", "as-on-3.10"])
async def test_a_poller_stops_even_when_its_driver_swallows_the_cancellation(
    line: tuple[RtuLineServer, ModbusBus], forget: bool
) -> None:
    _, bus = line
    config = _driver(bus, 1).config.model_copy(update={"poll_interval_s": 0.05})
    driver = _SwallowsCancellation(config, bus)
    driver.forget = forget
    poller = DevicePoller(driver, lambda batch: None)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.1)  # inside a read
    poller.stop()
    done, _ = await asyncio.wait([task], timeout=2)
    assert done, "the gateway could never finish stopping"
