"""HJ 212 frames: the standard's example and real frames verify, damage never does."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.hj212.codec import Frame, FrameError, crc16, encode, parse
from drivers.hj212.framing import FrameSplitter
from drivers.hj212.reassembly import SplitPackets
from drivers.hj212.replies import data_answer

FRAMES_FILE = Path(__file__).parent / "data" / "hj212_frames.txt"
FRAMES = [line.strip().encode() for line in FRAMES_FILE.read_text().splitlines() if line.startswith("##")]
APPENDIX_A = FRAMES[0]


def test_the_standards_appendix_a_example_verifies() -> None:
    frame = parse(APPENDIX_A + b"\r\n")
    assert (frame.qn, frame.cn, frame.pw, frame.mn) == (
        "20160801085857223",
        "1062",
        "100000",
        "010000A8900016F000169DC0",
    )
    assert frame.get("ST") == "32" and frame.flag == 5 and frame.wants_answer and not frame.is_split
    assert frame.cp == ((("RtdInterval", "30"),),)
    assert crc16(APPENDIX_A[6:-4]) == 0x1C80


def test_the_crc_is_not_crc16_modbus() -> None:
    # CRC-16/MODBUS of "123456789" is 0x4B37; the HJ 212 algorithm differs
    assert crc16(b"123456789") != 0x4B37


@pytest.mark.parametrize("raw", FRAMES, ids=[f"frame{i}" for i in range(len(FRAMES))])
def test_every_real_frame_verifies_and_re_encodes_to_itself(raw: bytes) -> None:
    frame = parse(raw)
    assert frame.mn and frame.cn
    assert encode(frame).upper() == raw.upper() + b"\r\n"  # one source prints its CRC in lower case


@pytest.mark.parametrize("raw", FRAMES, ids=[f"frame{i}" for i in range(len(FRAMES))])
def test_any_one_character_change_is_rejected(raw: bytes) -> None:
    for at in range(len(raw)):
        original = raw[at : at + 1]
        for replacement in (b"0", b"9", b"A", b";", b"#"):
            if replacement.upper() == original.upper():
                continue
            damaged = raw[:at] + replacement + raw[at + 1 :]
            with pytest.raises(FrameError):
                parse(damaged)


def test_the_crc_is_accepted_in_either_case() -> None:
    lower = APPENDIX_A[:-4] + APPENDIX_A[-4:].lower()
    assert parse(lower) == parse(APPENDIX_A)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (APPENDIX_A[:-4] + b"1C81", "crc"),
        (APPENDIX_A[:-4] + b"1CG0", "crc"),
        (APPENDIX_A[:-4] + b"0x1C", "crc"),
        (b"##0102" + APPENDIX_A[6:], "length"),
        (b"##01a1" + APPENDIX_A[6:], "length"),
        (APPENDIX_A[:60], "length"),
        (b"*" + APPENDIX_A[1:], "header"),
        (b"##2000" + APPENDIX_A[6:], "too_long"),
        (encode(Frame((("CN", "2011"),), ())).replace(b"CP=&&&&", b"CP=&&&X"), "syntax"),
    ],
    ids=[
        "wrong crc",
        "crc not hex",
        "crc with 0x",
        "wrong length",
        "length not digits",
        "truncated",
        "no ##",
        "over the limit",
        "no CP end",
    ],
)
def test_bad_frames_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    if reason == "syntax":  # re-wrap with a right CRC so only the syntax is wrong
        segment = raw[6:-6]
        raw = b"##%04d%s%04X" % (len(segment), segment, crc16(segment))
    with pytest.raises(FrameError) as caught:
        parse(raw)
    assert caught.value.reason == reason
    assert str(caught.value).startswith(f"hj212: {reason}: ")


def test_the_data_answer_echoes_qn_pw_and_mn() -> None:
    answer = parse(data_answer(parse(APPENDIX_A)))
    assert answer.header == (
        ("QN", "20160801085857223"),
        ("ST", "91"),
        ("CN", "9014"),
        ("PW", "100000"),
        ("MN", "010000A8900016F000169DC0"),
        ("Flag", "4"),
    )
    assert answer.cp == () and not answer.wants_answer


_TEXT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/ ", min_size=1, max_size=12
)
_KEY = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=12
)
_FIELDS = st.lists(st.tuples(_KEY, _TEXT), min_size=1, max_size=4).map(tuple)
_FRAMES = st.builds(
    Frame,
    header=st.lists(st.tuples(_KEY, _TEXT), max_size=8).map(
        lambda pairs: tuple((k, v) for k, v in pairs if k != "Flag")
    ),
    cp=st.lists(_FIELDS, max_size=20).map(tuple),
)


@given(_FRAMES)
@settings(max_examples=300, deadline=None)
def test_encode_then_parse_round_trips(frame: Frame) -> None:
    assert parse(encode(frame), max_segment=9999) == frame


@given(
    st.lists(_FRAMES, min_size=1, max_size=5),
    st.lists(st.binary(max_size=40), max_size=6),
    st.randoms(use_true_random=False),
)
@settings(max_examples=150, deadline=None)
def test_frames_survive_garbage_and_any_read_boundaries(
    frames: list[Frame], junk: list[bytes], rng: random.Random
) -> None:
    junk = [j.replace(b"#", b"") for j in junk]
    stream = b"".join((junk[i] if i < len(junk) else b"") + encode(f) for i, f in enumerate(frames))
    splitter = FrameSplitter(max_segment=9999)
    out: list[Frame | FrameError] = []
    at = 0
    while at < len(stream):
        step = rng.randint(1, 64)
        out += splitter.feed(stream[at : at + step])
        at += step
    assert [item for item in out if isinstance(item, Frame)] == frames
    assert all(item.reason == "garbage" for item in out if isinstance(item, FrameError))


@given(st.binary(max_size=3000))
@settings(max_examples=300, deadline=None)
def test_random_bytes_never_raise_and_never_grow_the_buffer(data: bytes) -> None:
    splitter = FrameSplitter()
    for item in splitter.feed(data) + splitter.feed(b"##" + data):
        assert isinstance(item, (Frame, FrameError))
    assert splitter.buffered <= 6 + 1024 + 4


def test_several_frames_in_one_read_with_garbage_and_no_final_crlf() -> None:
    good = [encode(parse(raw)) for raw in FRAMES[:3]]
    stream = good[0] + b"\x00\xffjunk" + good[1] + b"\r\n\r\n" + good[2][:-2]
    out = FrameSplitter().feed(stream)
    frames = [item for item in out if isinstance(item, Frame)]
    assert frames == [parse(raw) for raw in FRAMES[:3]]
    assert [item.reason for item in out if isinstance(item, FrameError)] == ["garbage"]


def test_damaged_frames_are_reported_and_the_next_good_one_still_comes_out() -> None:
    good = encode(parse(FRAMES[1]))
    bad_crc = good[:-6] + b"0000\r\n"
    too_long = b"##0200" + good[6:]  # says 200, ends sooner: no waiting for bytes that never come
    too_short = b"##0050" + good[6:]
    oversized = b"##9000" + good[6:]
    truncated = good[:40] + b"\r\n"
    out = FrameSplitter().feed(bad_crc + too_long + too_short + oversized + truncated + good)
    reasons = [item.reason for item in out if isinstance(item, FrameError)]
    assert reasons[:3] == ["crc", "length", "length"] and "too_long" in reasons
    assert out[-1] == parse(good)


def test_split_packets_are_reassembled_in_order() -> None:
    def part(number: int, items: tuple[tuple[tuple[str, str], ...], ...]) -> Frame:
        header = (
            ("QN", "20240101000000000"),
            ("ST", "39"),
            ("CN", "2011"),
            ("PW", "1"),
            ("MN", "M1"),
            ("Flag", "7"),
            ("PNUM", "3"),
            ("PNO", str(number)),
        )
        return parse(encode(Frame(header, items)))

    packets = SplitPackets()
    assert packets.add(part(2, ((("a34002-Rtd", "60"),),))) is None
    assert packets.add(part(1, ((("DataTime", "20240101000000"),),))) is None
    whole = packets.add(part(3, ((("a34004-Rtd", "30"),),)))
    assert whole is not None and whole.get("PNUM") is None
    assert whole.cp_fields() == {"DataTime": "20240101000000", "a34002-Rtd": "60", "a34004-Rtd": "30"}
    with pytest.raises(FrameError, match="split"):
        packets.add(part(4, ()))


@given(st.binary(max_size=200))
def test_the_table_driven_crc_equals_the_standards_bit_by_bit_algorithm(data: bytes) -> None:
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    assert crc16(data) == crc


def test_unfinished_split_messages_are_bounded() -> None:
    packets = SplitPackets(max_pending=2)
    for qn in range(5):
        header = (
            ("QN", f"2024010100000000{qn}"),
            ("CN", "2011"),
            ("MN", "M1"),
            ("Flag", "7"),
            ("PNUM", "2"),
            ("PNO", "1"),
        )
        assert packets.add(Frame(header, ())) is None
    assert packets.dropped == 3


def test_a_split_message_whose_parts_stop_coming_is_dropped_in_time() -> None:
    now = [0.0]
    packets = SplitPackets(max_age_s=60, clock=lambda: now[0])

    def first(qn: str) -> Frame:
        header = (("QN", qn), ("CN", "2011"), ("MN", "M1"), ("Flag", "7"), ("PNUM", "2"), ("PNO", "1"))
        return Frame(header, ())

    assert packets.add(first("20240101000000001")) is None
    now[0] = 61.0
    assert packets.add(first("20240101000000002")) is None  # the first message is too old by now
    assert packets.dropped == 1
    second = Frame((*first("20240101000000001").header[:-1], ("PNO", "2")), ())
    assert packets.add(second) is None  # its first part is gone: it waits anew, bounded the same way
