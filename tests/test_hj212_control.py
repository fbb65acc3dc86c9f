"""Reverse control against the datalogger simulator over TCP: commands, their answers, the clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from contracts.errors import DeviceTimeout, DeviceUnreachable
from drivers.hj212 import control
from drivers.hj212.codec import Frame, encode
from drivers.hj212.config import Hj212DeviceConfig
from drivers.hj212.stream import Hj212Stream
from drivers.simulators.hj212_datalogger import Hj212Datalogger
from drivers.simulators.hj212_dialect import DIALECTS
from tests.test_hj212_server import _listening

MN = "010000A8900016F000169DC0"


def _device(**extra: object) -> Hj212DeviceConfig:
    return Hj212DeviceConfig.model_validate(
        {
            "id": "dust-hj-01",
            "driver": "hj212",
            "mn": MN,
            "pw": "123456",
            "channels": [{"id": "pm10", "code": "a34002", "unit": "µg/m³"}],
            **extra,
        }
    )


@contextlib.asynccontextmanager
async def _connected(
    logger: Hj212Datalogger, **device: object
) -> AsyncIterator[tuple[Hj212Stream, Hj212Datalogger]]:
    async with _listening([_device(**device)]) as (stream, _):
        port = stream.listener.port  # type: ignore[union-attr]
        task = asyncio.create_task(logger.run("127.0.0.1", port), name="datalogger-under-control")
        try:
            for _ in range(250):
                if stream.counters.frames:
                    break
                await asyncio.sleep(0.02)
            yield stream, logger
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _logger(**extra: object) -> Hj212Datalogger:
    return Hj212Datalogger(mn=MN, pw="123456", interval_s=0.1, seed=5, **extra)  # type: ignore[arg-type]


async def test_set_and_get_intervals_and_time() -> None:
    async with _connected(_logger()) as (stream, logger):
        result = await stream.control("dust-hj-01", control.set_realtime_interval(30), timeout_s=5)
        assert result.ok and (result.qn_rtn, result.exe_rtn) == (1, 1) and logger.state.realtime_s == 30
        result = await stream.control("dust-hj-01", control.get_realtime_interval(), timeout_s=5)
        assert result.ok and result.data == {"RtdInterval": "30"}
        result = await stream.control("dust-hj-01", control.set_minute_interval(5), timeout_s=5)
        assert result.ok and logger.state.minute_s == 300
        result = await stream.control("dust-hj-01", control.get_time(), timeout_s=5)
        assert result.ok and len(result.data["SystemTime"]) == 14
        assert result.as_dict()["cn"] == "1011" and result.as_dict()["data"] == result.data
    sent = logger.commands[0]
    assert sent.get("ST") == "39" and sent.flag == 5 and sent.pw == "123456"  # in the logger's own form


async def test_stop_and_start_realtime_and_calibrate() -> None:
    async with _connected(_logger()) as (stream, logger):
        stopped = await stream.control("dust-hj-01", control.stop_realtime(), timeout_s=5)
        assert stopped.ok and stopped.notified and not logger.state.realtime_on
        started = await stream.control("dust-hj-01", control.start_realtime(), timeout_s=5)
        assert started.ok and started.qn_rtn == 1 and started.exe_rtn is None and logger.state.realtime_on
        calibrated = await stream.control("dust-hj-01", control.calibrate("a34002"), timeout_s=5)
        assert calibrated.ok and logger.state.calibrations == 1
        assert logger.commands[-1].cp == ((("PolId", "a34002"),),)


async def test_a_command_the_logger_refuses_says_so() -> None:
    async with _connected(_logger()) as (stream, _):
        result = await stream.control("dust-hj-01", control.pass_through("3099"), timeout_s=5)
    assert not result.ok and result.qn_rtn == 8  # CN error
    with pytest.raises(ValueError, match="not an answer"):
        control.pass_through("9014")


async def test_a_2005_logger_is_commanded_and_answers_in_the_2005_form() -> None:
    async with _connected(_logger(dialect=DIALECTS["2005"])) as (stream, logger):
        result = await stream.control("dust-hj-01", control.set_realtime_interval(60), timeout_s=5)
    assert result.ok and logger.commands[0].flag == 1
    assert all(a.edition == 2005 and a.qn is None for a in logger.answers)  # QN inside CP


async def test_no_link_and_no_answer_are_errors_that_name_the_device() -> None:
    async with _listening([_device()]) as (stream, _):
        with pytest.raises(DeviceUnreachable, match="not connected"):
            await stream.control("dust-hj-01", control.get_time())
        with pytest.raises(DeviceUnreachable, match="no such"):
            await stream.control("nobody", control.get_time())
        reader, writer = await asyncio.open_connection("127.0.0.1", stream.listener.port)  # type: ignore[union-attr]
        writer.write(_raw_frame())
        await reader.readuntil(b"\r\n")  # its 9014: the gateway now knows the link
        with pytest.raises(DeviceTimeout, match="no answer to CN 1011"):
            await stream.control("dust-hj-01", control.get_time(), timeout_s=0.3)
        waiting = asyncio.create_task(stream.control("dust-hj-01", control.get_time(), timeout_s=10))
        await asyncio.sleep(0.1)
        writer.close()
        with pytest.raises(DeviceUnreachable, match="closed before the answer"):
            await waiting


async def test_a_command_whose_caller_gives_up_is_cancelled_and_the_link_stays() -> None:
    async with _listening([_device()]) as (stream, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", stream.listener.port)  # type: ignore[union-attr]
        writer.write(_raw_frame())
        await reader.readuntil(b"\r\n")
        waiting = asyncio.create_task(stream.control("dust-hj-01", control.get_time(), timeout_s=10))
        await asyncio.sleep(0.1)
        waiting.cancel()  # e.g. the gateway stops while a maintainer's command waits for its answer
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises(DeviceTimeout, match="no answer to CN 1011"):  # the link still takes commands
            await stream.control("dust-hj-01", control.get_time(), timeout_s=0.2)
        writer.close()


def _raw_frame() -> bytes:
    header = (("QN", "20240101120000001"), ("ST", "39"), ("CN", "2011"), ("PW", "123456"), ("MN", MN))
    return encode(Frame((*header, ("Flag", "5")), ((("a34002-Rtd", "1"),),)))


async def test_a_logger_whose_clock_is_off_is_set_once_and_one_asking_for_the_time_gets_it() -> None:
    async with _connected(_logger(clock_offset_s=3600), clock_skew_max_s=60) as (stream, logger):
        for _ in range(250):
            if abs(logger.state.clock_offset_s) < 5:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
    assert abs(logger.state.clock_offset_s) < 5 and stream.counters.clock_corrections == 1
    assert [c.cn for c in logger.commands] == ["1012"]
    async with _connected(_logger(asks_time=True, clock_offset_s=-900)) as (stream, logger):
        for _ in range(250):
            if abs(logger.state.clock_offset_s) < 5:
                break
            await asyncio.sleep(0.02)
    assert abs(logger.state.clock_offset_s) < 5
    assert "9013" in {a.cn for a in logger.answers}  # its 1013 request was answered as a notification
