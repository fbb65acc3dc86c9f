"""``gridgate hj212 decode``: one JSON object per frame, for technicians debugging a datalogger.

Reads frames one per line (blank lines and ``//`` comments skipped) and says
for each what it holds, or exactly why it was rejected, and which deviations
from the standard it needed (``tolerated``): what to set for that datalogger
(``crc = "modbus"``) can be read off the output. ``crc`` is the mode to decode
under, as a device's ``crc`` setting would be.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import Any, TextIO

from drivers.hj212.codec import (
    FLAG_ANSWER,
    FLAG_SPLIT,
    MAX_SEGMENT,
    TRAILER,
    CrcMode,
    Frame,
    FrameError,
    crc16,
    parse,
    parse_segment,
)


def describe(
    raw: bytes, *, max_segment: int = MAX_SEGMENT, crc: CrcMode = CrcMode.STANDARD
) -> dict[str, Any]:
    """What one frame holds (``ok`` true), or why it was rejected (``reason``, ``error``)."""
    raw = raw.rstrip(b"\r\n")
    modes = None
    if crc is not CrcMode.STANDARD:
        with contextlib.suppress(FrameError):
            modes = {parse_segment(raw[6:-4]).mn or "": crc}
    try:
        frame = parse(raw, max_segment=max_segment, crc_modes=modes)
    except FrameError as error:
        out: dict[str, Any] = {"ok": False, "reason": error.reason, "error": error.detail}
        if error.reason == "crc":  # the structure may still help: show it with the right CRC
            segment = raw[6:-4]
            out["crc_expected"] = f"{crc16(segment):04X}"
            with contextlib.suppress(FrameError):
                out.update(_fields(parse_segment(segment)))
        return out
    tolerated = [t.value for t in frame.tolerated]
    crc_text = raw[-4:].decode().upper()
    return {"ok": True, "length": int(raw[2:6]), "crc": crc_text, "tolerated": tolerated, **_fields(frame)}


def _fields(frame: Frame) -> dict[str, Any]:
    flag = frame.flag
    bits = {"version": flag >> 2, "split": bool(flag & FLAG_SPLIT), "answer": bool(flag & FLAG_ANSWER)}
    return {
        "fields": dict(frame.header),
        "flag": bits,
        "cp": [dict(item) for item in frame.cp],
    }


def decode_lines(lines: Iterable[bytes], out: TextIO, *, crc: CrcMode = CrcMode.STANDARD) -> int:
    """Print one JSON object per frame line; return how many were rejected."""
    rejected = 0
    for number, line in enumerate(lines, start=1):
        text = line.strip(b" \t" + TRAILER)
        if not text or text.startswith(b"//"):
            continue
        result = {"line": number, **describe(text, crc=crc)}
        rejected += not result["ok"]
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    return rejected
