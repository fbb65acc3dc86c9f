"""Dataloggers as they really speak: each deviation accepted where configured, named and counted."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from drivers.hj212.codec import CrcMode, Frame, FrameError, Tolerance, crc16_modbus, encode_segment, parse
from drivers.hj212.config import Hj212DeviceConfig
from drivers.hj212.framing import FrameSplitter
from drivers.hj212.mapping import DataloggerMap
from drivers.simulators.hj212_datalogger import Hj212Datalogger
from drivers.simulators.hj212_dialect import DIALECTS
from tests.test_hj212_codec import APPENDIX_A, FRAMES
from tests.test_hj212_server import _listening

# A real frame (liruoyu2008/HJ212Interpreter README) as firmware computing CRC-16/MODBUS sends it.
REAL = FRAMES[4]
MODBUS_CRC = REAL[:-4] + b"%04X" % crc16_modbus(REAL[6:-4])
MN = "010000A8900016F000169DC0"


def test_crc16_modbus_is_the_well_known_one() -> None:
    assert crc16_modbus(b"123456789") == 0x4B37  # the CRC catalogue's check value


def test_a_modbus_crc_is_refused_by_default_with_a_hint_and_accepted_when_configured() -> None:
    with pytest.raises(FrameError) as caught:
        parse(MODBUS_CRC)
    assert caught.value.reason == "crc" and 'set crc = "modbus"' in caught.value.detail
    frame = parse(MODBUS_CRC, crc_modes={MN: CrcMode.MODBUS})
    assert frame == parse(REAL) and frame.tolerated == (Tolerance.CRC_MODBUS,)
    assert parse(REAL, crc_modes={MN: CrcMode.MODBUS}).tolerated == ()  # a standard CRC always passes
    with pytest.raises(FrameError):  # the mode is the sender's, by MN: another MN gets no leeway
        parse(MODBUS_CRC, crc_modes={"OTHER": CrcMode.MODBUS})


def test_an_unchecked_crc_still_needs_the_length_and_the_structure() -> None:
    wrong = REAL[:-4] + b"0000"
    assert parse(wrong, crc_modes={MN: CrcMode.NONE}).tolerated == (Tolerance.CRC_UNCHECKED,)
    for damaged in (REAL[:20] + REAL[21:], REAL[:-4] + b"00G0", REAL.replace(b"CP=&&", b"CP=&=")):
        with pytest.raises(FrameError):
            parse(damaged, crc_modes={MN: CrcMode.NONE})


@pytest.mark.parametrize(
    ("segment", "tolerated"),
    [
        ("ST=32;CN=2011;PW=1;MN=M1;Flag=4;CP=&&DataTime=20240101120000;a34002-Rtd=1&&", ()),
        ("ST=32;CN=2011;PW=1;MN=M1;Flag=4CP=&&DataTime=20240101120000&&", ("no_separator_before_cp",)),
        ("ST=32;;CN=2011;PW=1;MN=M1;Flag=4;CP=&&DataTime=20240101120000;;a34002-Rtd=1;&&", ("empty_field",)),
        ("ST=32;CN=2011;PW=1;MN=M1;Flag=4;CP=&&a34002-Rtd=1,,a34002-Flag=N&&", ("empty_field",)),
        (
            "ST=32;CN=2011;PW=1;MN=M1;Flag=4;CP=&&DataTime=20240101120000123;a34002-Rtd=1&&",
            ("datatime_millis",),
        ),
        ("ST=32;CN=2011;PW=1;MN=M1;Flag=4;CP=&&&&", ()),
    ],
)
def test_harmless_deviations_are_accepted_and_named(segment: str, tolerated: tuple[str, ...]) -> None:
    frame = parse(encode_segment(segment))
    assert [t.value for t in frame.tolerated] == list(tolerated)
    assert frame.mn == "M1"


def test_a_lower_case_crc_is_named() -> None:
    lower = APPENDIX_A[:-4] + APPENDIX_A[-4:].lower()
    assert parse(lower).tolerated == (Tolerance.CRC_LOWER_CASE,) and parse(APPENDIX_A).tolerated == ()


def test_frames_without_crlf_between_them_all_come_out_and_are_counted() -> None:
    splitter = FrameSplitter()
    frames = splitter.feed(APPENDIX_A + APPENDIX_A + b"\r\n" + APPENDIX_A)
    assert len(frames) == 3 and all(isinstance(f, Frame) for f in frames)
    assert splitter.tolerated == {Tolerance.NO_CRLF: 1}  # the last one may still get its CRLF
    splitter.feed(b"\r")
    splitter.feed(b"\n")
    assert splitter.tolerated == {Tolerance.NO_CRLF: 1}


def test_a_2005_logger_is_read_by_its_old_codes() -> None:
    device = Hj212DeviceConfig.model_validate(
        {
            "id": "stack-01",
            "driver": "hj212",
            "mn": "88888880000001",
            "pw": "123456",
            "channels": [
                {"id": "so2", "code": "a21026", "unit": "mg/m³"},
                {"id": "dust", "code": "a34013", "unit": "mg/m³", "code_2005": "B03"},
            ],
        }
    )
    segment = (
        "QN=20040516010101001;ST=32;CN=2011;PW=123456;MN=88888880000001;Flag=1;"
        "CP=&&DataTime=20040516010101;02-Rtd=12.5,02-Flag=N;B03-Rtd=3.1,B03-Flag=N&&"
    )
    frame = parse(encode_segment(segment))
    assert frame.edition == 2005
    tolerated: list[Tolerance] = []
    batch = DataloggerMap([device]).to_batch(frame, device, 0.0, tolerated)
    assert batch is not None and batch.channels == ("so2", "dust")
    assert list(batch.values) == [12.5, 3.1] and tolerated == [Tolerance.CODE_2005] * 2


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


@pytest.mark.parametrize("name", sorted(DIALECTS))
async def test_the_simulator_in_each_dialect_is_read_and_answered_over_tcp(name: str) -> None:
    dialect = DIALECTS[name]
    crc = CrcMode.MODBUS if dialect.modbus_crc else CrcMode.STANDARD
    async with _listening([_device(crc=crc)]) as (stream, batches):
        port = stream.listener.port  # type: ignore[union-attr]
        logger = Hj212Datalogger(mn=MN, pw="123456", interval_s=0.05, seed=3, dialect=dialect)
        task = asyncio.create_task(logger.run("127.0.0.1", port), name=f"datalogger-{name}")
        try:
            for _ in range(200):
                if len(logger.latencies_s) >= 5:
                    break
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert len(logger.latencies_s) >= 5 and not stream.counters.rejected
    assert all(b.device == "dust-hj-01" and b.channels == ("pm10",) for b in batches)
    edition = 2005 if dialect.edition == 2005 else 2017
    assert {a.edition for a in logger.answers} == {edition}  # answered in the logger's own edition
    tolerated = {t.value for (_, t) in stream.counters.tolerated}
    expected = {
        "standard": set(),
        "2005": set(),
        "modbus-crc": {"crc_modbus"},
        "lower-case-crc": {"crc_lower_case"},
        "no-crlf": {"no_crlf"},
        "millis": {"datatime_millis"},
    }[name]
    assert tolerated == expected


async def test_a_modbus_crc_logger_not_configured_for_it_is_refused_while_others_flow() -> None:
    other = _device().model_copy(update={"id": "dust-hj-02", "mn": "MN0002"})
    async with _listening([_device(), other]) as (stream, batches):
        port = stream.listener.port  # type: ignore[union-attr]
        loggers = [
            Hj212Datalogger(mn=MN, pw="123456", interval_s=0.05, seed=1, dialect=DIALECTS["modbus-crc"]),
            Hj212Datalogger(mn="MN0002", pw="123456", interval_s=0.05, seed=2),
        ]
        tasks = [asyncio.create_task(lg.run("127.0.0.1", port), name=f"dl-{lg.mn}") for lg in loggers]
        try:
            for _ in range(200):
                if len(loggers[1].latencies_s) >= 5 and stream.counters.rejected["crc"] >= 5:
                    break
                await asyncio.sleep(0.02)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert stream.counters.rejected["crc"] >= 5 and not loggers[0].latencies_s
    assert len(loggers[1].latencies_s) >= 5 and {b.device for b in batches} == {"dust-hj-02"}
