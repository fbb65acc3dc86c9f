"""HJ 212 frames: ``##`` + 4-digit length + data segment + CRC + CRLF, both ways.

The codec is strict about what it accepts: the length must match the data
segment, the CRC (the standard's own algorithm, not CRC-16/MODBUS, printed in
either letter case) must match, and the segment must have its ``CP=&&...&&``.
Finding frames in a byte stream is :mod:`drivers.hj212.framing`'s job.

Frames of the 2005 edition parse too: their header keys are the same, only
shorter and sometimes without QN or Flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import DeviceProtocolError

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


@dataclass(frozen=True, slots=True)
class Frame:
    """One data segment, split into its header fields and CP items.

    ``header`` keeps every ``key=value`` before ``CP`` in the order sent;
    ``cp`` is one tuple of ``(key, value)`` fields per ``;``-separated item.
    """

    header: tuple[tuple[str, str], ...]
    cp: tuple[tuple[tuple[str, str], ...], ...]

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


def data_answer(frame: Frame) -> bytes:
    """The CN 9014 data answer to ``frame`` (same QN, PW and MN; answers need no answer)."""
    header = [("QN", frame.qn or ""), ("ST", ST_SYSTEM), ("CN", CN_DATA_ANSWER)]
    header += [("PW", frame.pw or ""), ("MN", frame.mn or ""), ("Flag", str(VERSION_2017 << 2))]
    if frame.qn is None:
        header = header[1:]
    return encode(Frame(tuple(header), ()))


def parse(raw: bytes, *, source: str = "hj212", max_segment: int = MAX_SEGMENT) -> Frame:
    """Verify one complete frame (trailing CRLF optional) and split its data segment."""
    return parse_segment(verify(raw, source=source, max_segment=max_segment), source=source)


def verify(raw: bytes, *, source: str = "hj212", max_segment: int = MAX_SEGMENT) -> bytes:
    """The data segment of ``raw`` once its header, length and CRC check out."""
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
    expected = crc16(segment)
    if int(crc_field, 16) != expected:
        raise FrameError(source, "crc", f"CRC is {crc_field.decode()}, the data segment gives {expected:04X}")
    return segment


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
    if start and text[start - 1] != ";":
        raise FrameError(source, "syntax", "no ';' before CP=&&")
    header = tuple(_pairs(text[:start], ";", source, "header"))
    if "&&" in cp_text:
        raise FrameError(source, "syntax", "'&&' inside CP")
    cp = tuple(tuple(_pairs(item, ",", source, "CP")) for item in cp_text.split(";") if item)
    flag = next((value for key, value in header if key == "Flag"), None)
    if flag is not None and not flag.isdigit():
        raise FrameError(source, "syntax", f"Flag must be a number, got {flag!r}")
    return Frame(header, cp)


def _pairs(text: str, separator: str, source: str, where: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split(separator):
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise FrameError(source, "syntax", f"{where} field {part!r} is not key=value")
        pairs.append((key, value))
    return pairs
