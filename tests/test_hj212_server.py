"""The HJ 212 listener against real sockets and a pty: many dataloggers, some of them hostile."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contracts.readings import ReadingBatch
from drivers.hj212.codec import Frame, encode, parse
from drivers.hj212.config import Hj212DeviceConfig, Hj212Listener
from drivers.hj212.framing import FrameSplitter
from drivers.hj212.stream import Hj212Stream
from firmware_tools.local_broker import free_port


def _device(n: int, **extra: object) -> Hj212DeviceConfig:
    return Hj212DeviceConfig.model_validate(
        {
            "id": f"dust-{n:02d}",
            "driver": "hj212",
            "mn": f"MN{n:04d}",
            "pw": "123456",
            "channels": [{"id": "pm10", "code": "a34002", "unit": "µg/m³"}],
            **extra,
        }
    )


def _frame(n: int, value: float, *, flag: str = "5") -> bytes:
    header = (
        ("QN", f"20240101120000{n:03d}"),
        ("ST", "39"),
        ("CN", "2011"),
        ("PW", "123456"),
        ("MN", f"MN{n:04d}"),
        ("Flag", flag),
    )
    cp = ((("DataTime", "20240101120000"),), (("a34002-Rtd", str(value)), ("a34002-Flag", "N")))
    return encode(Frame(header, cp))


@contextlib.asynccontextmanager
async def _listening(
    devices: list[Hj212DeviceConfig], **listener: Any
) -> AsyncIterator[tuple[Hj212Stream, list[ReadingBatch]]]:
    port = free_port()
    stream = Hj212Stream(
        devices, listener=Hj212Listener(host="127.0.0.1", port=port, **listener), serial_retry_s=0.1
    )
    batches: list[ReadingBatch] = []
    async with stream:
        task = asyncio.create_task(stream.run(batches.append), name="hj212-under-test")
        await asyncio.sleep(0)
        try:
            yield stream, batches
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _answer(reader: asyncio.StreamReader) -> Frame:
    splitter = FrameSplitter()
    while True:
        data = await asyncio.wait_for(reader.read(4096), 10)
        assert data, "connection closed before the answer"
        for item in splitter.feed(data):
            assert isinstance(item, Frame), item
            return item


async def test_each_datalogger_gets_its_answer_while_a_hostile_one_sends_rubbish() -> None:
    devices = [_device(n) for n in range(1, 4)]
    async with _listening(devices) as (stream, batches):
        port = stream.listener.port  # type: ignore[union-attr]
        hostile_r, hostile_w = await asyncio.open_connection("127.0.0.1", port)
        hostile_w.write(os.urandom(5000) + b"##9999" + b"x" * 3000 + b"##0010garbage!!!!\r\n")
        links = [await asyncio.open_connection("127.0.0.1", port) for _ in devices]
        hostile_w.write(b"##0101" + b"y" * 50)  # a partial frame it never finishes
        for n, (_, writer) in enumerate(links, start=1):
            frame = _frame(n, 100.0 + n)
            writer.write(frame[:10])
            await writer.drain()
            writer.write(frame[10:])
        answers = [await _answer(reader) for reader, _ in links]
        assert [(a.cn, a.mn) for a in answers] == [("9014", f"MN{n:04d}") for n in (1, 2, 3)]
        assert sorted((b.device, b.values[0]) for b in batches) == [
            ("dust-01", 101.0),
            ("dust-02", 102.0),
            ("dust-03", 103.0),
        ]
        assert stream.counters.frames == 3 and stream.counters.answers == 3
        rejected = stream.counters.rejected
        assert rejected["too_long"] == 1 and rejected["garbage"] >= 1
        for _, writer in [*links, (hostile_r, hostile_w)]:
            writer.close()


async def test_a_frame_without_flag_a_gets_no_answer_but_is_accepted() -> None:
    async with _listening([_device(1)]) as (stream, batches):
        reader, writer = await asyncio.open_connection("127.0.0.1", stream.listener.port)  # type: ignore[union-attr]
        writer.write(_frame(1, 5.0, flag="4") + _frame(1, 6.0))
        answer = await _answer(reader)
        assert answer.cn == "9014" and answer.qn == "20240101120000001"
        assert [b.values[0] for b in batches] == [5.0, 6.0] and stream.counters.answers == 1
        writer.close()


async def test_a_silent_connection_is_closed_after_the_idle_timeout() -> None:
    async with _listening([_device(1)], idle_timeout_s=0.3) as (stream, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", stream.listener.port)  # type: ignore[union-attr]
        writer.write(b"only rubbish, never a frame")
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the gateway
        writer.close()
        for _ in range(50):
            if not stream.links:
                break
            await asyncio.sleep(0.05)
        assert not stream.links


async def test_when_full_a_newcomer_is_refused_only_if_every_link_has_proved_itself() -> None:
    async with _listening([_device(1), _device(2)], max_connections=2) as (stream, _):
        port = stream.listener.port  # type: ignore[union-attr]
        kept = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        for n, (reader, writer) in enumerate(kept, start=1):
            writer.write(_frame(n, 1.0))
            await _answer(reader)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 10) == b""
        assert stream.counters.refused_connections == {"full": 1} and len(stream.links) == 2
        for _, w in [*kept, (reader, writer)]:
            w.close()


async def test_when_full_the_idlest_link_without_a_good_frame_makes_room() -> None:
    async with _listening([_device(1)], max_connections=3) as (stream, batches):
        port = stream.listener.port  # type: ignore[union-attr]
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        idle[0][1].write(b"#")  # the first one sent a byte since, so the second is the idlest
        await idle[0][1].drain()
        await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_frame(1, 3.0))
        assert (await _answer(reader)).cn == "9014" and batches[0].values[0] == 3.0
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(idle[1][0].read(), 10) == b""
        assert stream.counters.evicted_connections == 1 and len(stream.links) == 3
        for _, w in [*idle, (reader, writer)]:
            w.close()


async def test_one_address_holds_at_most_max_per_address_links() -> None:
    async with _listening([_device(1)], max_per_address=2) as (stream, _):
        port = stream.listener.port  # type: ignore[union-attr]
        same = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(same[2][0].read(), 10) == b""
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
        writer.write(_frame(1, 4.0))
        assert (await _answer(reader)).cn == "9014"
        assert stream.counters.refused_connections == {"per_address": 1}
        assert stream.by_address == {"127.0.0.1": 2, "127.0.0.2": 1}
        for _, w in [*same, (reader, writer)]:
            w.close()


async def test_a_link_that_sends_no_good_frame_in_time_is_closed_though_it_trickles_bytes() -> None:
    async with _listening([_device(1)], first_frame_timeout_s=0.5) as (stream, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", stream.listener.port)  # type: ignore[union-attr]
        closed = asyncio.create_task(reader.read(), name="slow-link-read")
        for byte in _frame(1, 1.0)[:8]:  # slowloris: a frame's first bytes, one at a time
            if closed.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1)
        assert await asyncio.wait_for(closed, 10) == b""
        assert stream.counters.first_frame_timeouts == 1
        writer.close()


async def test_a_datalogger_back_on_a_new_connection_replaces_its_old_one() -> None:
    async with _listening([_device(1)]) as (stream, _):
        port = stream.listener.port  # type: ignore[union-attr]
        old_r, old_w = await asyncio.open_connection("127.0.0.1", port)
        old_w.write(_frame(1, 1.0))
        await _answer(old_r)
        new_r, new_w = await asyncio.open_connection("127.0.0.1", port)
        new_w.write(_frame(1, 2.0))
        await _answer(new_r)
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(old_r.read(), 10) == b""
        assert len(stream.links) == 1
        old_w.close()
        new_w.close()


async def test_a_datalogger_on_a_serial_port() -> None:
    master, slave = os.openpty()
    try:
        device = _device(7, serial=os.ttyname(slave))
        stream = Hj212Stream([device], listener=None, serial_retry_s=0.1)
        batches: list[ReadingBatch] = []
        async with stream:
            task = asyncio.create_task(stream.run(batches.append), name="hj212-serial-under-test")
            await asyncio.sleep(0.3)  # the port is opened by the run task
            os.write(master, b"noise" + _frame(7, 77.0))
            loop = asyncio.get_running_loop()
            answer = parse(await loop.run_in_executor(None, _read_frame, master))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert answer.cn == "9014" and answer.mn == "MN0007"
        assert batches[0].device == "dust-07" and batches[0].values[0] == 77.0
        assert stream.counters.rejected == {"garbage": 1}
    finally:
        os.close(master)
        os.close(slave)


def _read_frame(fd: int) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        data += os.read(fd, 1024)
    return data


@pytest.mark.parametrize("chunk", [1, 7, 4096])
async def test_frames_arrive_whole_whatever_the_tcp_segmentation(chunk: int) -> None:
    async with _listening([_device(1)]) as (stream, batches):
        reader, writer = await asyncio.open_connection("127.0.0.1", stream.listener.port)  # type: ignore[union-attr]
        data = b"".join(_frame(1, float(v), flag="4") for v in range(20)) + _frame(1, 99.0)
        for at in range(0, len(data), chunk):
            writer.write(data[at : at + chunk])
            await writer.drain()
        await _answer(reader)
        assert [b.values[0] for b in batches] == [*map(float, range(20)), 99.0]
        writer.close()


async def test_a_listener_port_in_use_is_retried_without_stopping_anything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from gateway.service.runners import feed

    port = free_port()
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    stream = Hj212Stream([_device(1)], listener=Hj212Listener(host="127.0.0.1", port=port))
    batches: list[ReadingBatch] = []
    task = asyncio.create_task(feed(stream, batches.append), name="hj212-feed-under-test")
    await asyncio.sleep(0.3)
    assert not task.done()  # the error is logged and retried, not raised into the supervisor
    assert f"cannot listen on 127.0.0.1:{port}" in caplog.text
    blocker.close()
    await blocker.wait_closed()
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            await asyncio.sleep(0.1)
        writer.write(_frame(1, 12.0))
        assert (await _answer(reader)).cn == "9014" and batches[0].values[0] == 12.0
        writer.close()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
