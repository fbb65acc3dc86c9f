"""HJ 212 frames: ``##`` + 4-digit length + data segment + CRC + CRLF, both ways.

The codec is strict where a deviation could let damaged data in: the length
must match the data segment, the segment must have its ``CP=&&...&&``, and the
CRC must be the standard's own algorithm, not CRC-16/MODBUS, unless the
sending datalogger is configured otherwise (:class:`CrcMode`, by MN). What
cannot corrupt a value is accepted and named in :attr:`Frame.tolerated`, so
it can be counted: a lower-case CRC, empty fields from doubled separators, no
``;`` before ``CP``, DataTime with milliseconds. Finding frames in a byte
stream is :mod:`drivers.hj212.framing`'s job.

Frames of the 2005 edition parse too: their header keys are the same, only
shorter and sometimes without QN or Flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from contracts.errors import DeviceProtocolError

HEADER = b"##"
TRAILER = b"\r\n"
_HEX = frozenset(b"0123456789abcdefABCDEF")
MAX_SEGMENT = 1024  # the standard's limit on the data segment, in bytes
MAX_CP = 950

FLAG_ANSWER = 0b01  # A: the sender wants a data answer (CN 9014)
FLAG_SPLIT = 0b10  # D: one of several packets, numbered by PNUM/PNO
VERSION_2017 = 0b000001

CN_REALTIME = "2011"
CN_MINUTE = "2051"
CN_HOUR = "2061"
CN_DAY = "2031"
CN_DATA_ANSWER = "9014"
ST_SYSTEM = "91"


class CrcMode(str, Enum):
    """Which CRC a datalogger's frames must carry; a CRC right by the standard is always accepted."""

    STANDARD = "standard"
    MODBUS = "modbus"  # firmware that computes CRC-16/MODBUS (init 0xFFFF, crc ^= byte) instead
    NONE = "none"  # not checked at all: only for a logger whose CRC is known broken; counted


class Tolerance(str, Enum):
    """A deviation from the standard that was accepted, named for counting."""

    CRC_MODBUS = "crc_modbus"
    CRC_UNCHECKED = "crc_unchecked"
    CRC_LOWER_CASE = "crc_lower_case"
    NO_CRLF = "no_crlf"
    EMPTY_FIELD = "empty_field"
    NO_SEPARATOR_BEFORE_CP = "no_separator_before_cp"
    DATATIME_MILLIS = "datatime_millis"
    CODE_2005 = "code_2005"


class FrameError(DeviceProtocolError):
    """A frame was rejected; ``reason`` is a short tag for counting, the message says why."""

    def __init__(self, source: str, reason: str, message: str) -> None:
        self.reason = reason
        self.detail = message
        super().__init__(source, f"{reason}: {message}")


def _crc_of_byte(value: int) -> int:
    for _ in range(8):
        value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return value


# After ``crc = (crc >> 8) ^ byte`` the register holds 8 bits only, so the eight
# shift/XOR steps that follow are one lookup: the same CRC, several times faster.
_CRC_TABLE = tuple(_crc_of_byte(value) for value in range(256))


def crc16(data: bytes) -> int:
    """The HJ 212 CRC of ``data``: register 0xFFFF, ``crc = (crc >> 8) ^ byte``, poly 0xA001."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc >> 8) ^ byte]
    return crc


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS of ``data`` (``crc ^= byte``, not ``(crc >> 8) ^ byte``): what some firmware sends."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


@dataclass(frozen=True, slots=True)
class Frame:
    """One data segment, split into its header fields and CP items.

    ``header`` keeps every ``key=value`` before ``CP`` in the order sent;
    ``cp`` is one tuple of ``(key, value)`` fields per ``;``-separated item.
    """

    header: tuple[tuple[str, str], ...]
    cp: tuple[tuple[tuple[str, str], ...], ...]
    tolerated: tuple[Tolerance, ...] = field(default=(), compare=False)

    def get(self, key: str) -> str | None:
        """A header field (``QN``, ``ST``, ``CN``, ``PW``, ``MN``, ``Flag``, ``PNUM``, ``PNO``)."""
        for name, value in self.header:
            if name == key:
                return value
        return None

    @property
    def qn(self) -> str | None:
        return self.get("QN")

    @property
    def cn(self) -> str | None:
        return self.get("CN")

    @property
    def mn(self) -> str | None:
        return self.get("MN")

    @property
    def pw(self) -> str | None:
        return self.get("PW")

    @property
    def flag(self) -> int:
        """The Flag field as a number; 0 when the frame has none (2005 frames may not)."""
        text = self.get("Flag")
        return int(text) if text is not None else 0

    @property
    def edition(self) -> int:
        """2017 when the Flag's version bits say so, else 2005 (whose Flag has none, or no Flag)."""
        return 2017 if self.flag >> 2 == VERSION_2017 else 2005

    @property
    def wants_answer(self) -> bool:
        return bool(self.flag & FLAG_ANSWER)

    @property
    def is_split(self) -> bool:
        return bool(self.flag & FLAG_SPLIT)

    def cp_fields(self) -> dict[str, str]:
        """Every CP field by key; for data frames, where keys are unique."""
        return {key: value for item in self.cp for key, value in item}

    def segment(self) -> str:
        """The data segment this frame encodes to."""
        head = "".join(f"{key}={value};" for key, value in self.header)
        cp = ";".join(",".join(f"{key}={value}" for key, value in item) for item in self.cp)
        return f"{head}CP=&&{cp}&&"


def encode(frame: Frame) -> bytes:
    """The complete wire frame, CRC in upper case, ending in CRLF."""
    return encode_segment(frame.segment())


def encode_segment(segment: str) -> bytes:
    """Wrap a data segment: header, length, CRC and CRLF."""
    data = segment.encode("utf-8")
    if len(data) > 9999:
        raise ValueError(f"a data segment of {len(data)} bytes does not fit the 4-digit length")
    return b"%s%04d%s%04X%s" % (HEADER, len(data), data, crc16(data), TRAILER)


def parse(
    raw: bytes,
    *,
    source: str = "hj212",
    max_segment: int = MAX_SEGMENT,
    crc_modes: Mapping[str, CrcMode] | None = None,
) -> Frame:
    """Verify one complete frame (trailing CRLF optional) and split its data segment.

    ``crc_modes`` says, by MN, which datalogger may send another CRC than the standard's.
    """
    segment, sent = split(raw, source=source, max_segment=max_segment)
    case = () if sent.isupper() or sent.isdigit() else (Tolerance.CRC_LOWER_CASE,)
    value = int(sent, 16)
    expected = crc16(segment)
    if value == expected:
        frame = parse_segment(segment, source=source)
        return _with(frame, case) if case else frame
    modbus = value == crc16_modbus(segment)
    why = f"CRC is {sent.decode()}, the data segment gives {expected:04X}"
    if modbus:
        why += ' (it is CRC-16/MODBUS: set crc = "modbus" for this datalogger)'
    try:
        frame = parse_segment(segment, source=source)
    except FrameError:
        raise FrameError(source, "crc", why) from None
    mode = crc_modes.get(frame.mn or "", CrcMode.STANDARD) if crc_modes else CrcMode.STANDARD
    if modbus and mode is not CrcMode.STANDARD:
        return _with(frame, (Tolerance.CRC_MODBUS, *case))
    if mode is CrcMode.NONE:
        return _with(frame, (Tolerance.CRC_UNCHECKED, *case))
    raise FrameError(source, "crc", why)


def _with(frame: Frame, tolerated: tuple[Tolerance, ...]) -> Frame:
    return Frame(frame.header, frame.cp, (*tolerated, *frame.tolerated))


def verify(raw: bytes, *, source: str = "hj212", max_segment: int = MAX_SEGMENT) -> bytes:
    """The data segment of ``raw`` once its header, length and (standard) CRC check out."""
    segment, sent = split(raw, source=source, max_segment=max_segment)
    expected = crc16(segment)
    if int(sent, 16) != expected:
        raise FrameError(source, "crc", f"CRC is {sent.decode()}, the data segment gives {expected:04X}")
    return segment


def split(raw: bytes, *, source: str = "hj212", max_segment: int = MAX_SEGMENT) -> tuple[bytes, bytes]:
    """The data segment of ``raw`` and the CRC it was sent with, once header and length check out."""
    if raw.endswith(TRAILER):
        raw = raw[: -len(TRAILER)]
    if not raw.startswith(HEADER):
        raise FrameError(source, "header", f"a frame starts with '##', not {raw[:2]!r}")
    length_field = raw[2:6]
    if len(length_field) < 4 or not length_field.isdigit():
        raise FrameError(source, "length", f"expected 4 digits after '##', got {length_field!r}")
    length = int(length_field)
    if length > max_segment:
        raise FrameError(source, "too_long", f"data segment of {length} bytes (max {max_segment})")
    body = raw[6:]
    if len(body) != length + 4:
        actual = len(body) - 4
        raise FrameError(source, "length", f"length field says {length}, data segment has {actual}")
    segment, crc_field = body[:length], body[length:]
    if len(crc_field) != 4 or not all(c in _HEX for c in crc_field):
        raise FrameError(source, "crc", f"CRC must be 4 hex digits, got {crc_field!r}")
    return segment, crc_field


def parse_segment(segment: bytes, *, source: str = "hj212") -> Frame:
    """Split a verified data segment into header fields and CP items."""
    try:
        text = segment.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError(source, "syntax", f"not UTF-8 at byte {exc.start}") from exc
    start = text.find("CP=&&")
    if start < 0 or not text.endswith("&&") or len(text) < start + 7:
        raise FrameError(source, "syntax", "no CP=&&...&& at the end of the data segment")
    cp_text = text[start + 5 : -2]
    if len(cp_text) > MAX_CP:
        raise FrameError(source, "syntax", f"CP of {len(cp_text)} characters (at most {MAX_CP})")
    if "&&" in cp_text:
        raise FrameError(source, "syntax", "'&&' inside CP")
    tolerated: list[Tolerance] = []
    head_text = text[:start]
    if head_text.endswith(";"):
        head_text = head_text[:-1]
    elif head_text:
        tolerated.append(Tolerance.NO_SEPARATOR_BEFORE_CP)
    header = tuple(_pairs(head_text, ";", source, "header", tolerated))
    cp = tuple(tuple(_pairs(item, ",", source, "CP", tolerated)) for item in _items(cp_text, tolerated))
    flag = next((value for key, value in header if key == "Flag"), None)
    if flag is not None and not flag.isdigit():
        raise FrameError(source, "syntax", f"Flag must be a number, got {flag!r}")
    at = cp_text.find("DataTime=")
    if at >= 0:
        stamp = cp_text[at + 9 : at + 26]
        if len(stamp) == 17 and stamp.isdigit() and cp_text[at + 26 : at + 27] in ("", ";", ","):
            tolerated.append(Tolerance.DATATIME_MILLIS)
    return Frame(header, cp, tuple(dict.fromkeys(tolerated)) if tolerated else ())


def _items(cp_text: str, tolerated: list[Tolerance]) -> list[str]:
    items = cp_text.split(";")
    kept = [item for item in items if item]
    if cp_text and len(kept) != len(items):
        tolerated.append(Tolerance.EMPTY_FIELD)
    return kept


def _pairs(
    text: str, separator: str, source: str, where: str, tolerated: list[Tolerance]
) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split(separator):
        if not part:
            if text:
                tolerated.append(Tolerance.EMPTY_FIELD)
            continue
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise FrameError(source, "syntax", f"{where} field {part!r} is not key=value")
        pairs.append((key, value))
    return pairs
