"""Finding HJ 212 frames in a byte stream, tolerant of how the bytes arrive.

Partial frames wait for their rest, several frames in one read all come out,
garbage between frames is skipped (and reported), and a frame is complete once
its length and CRC are in: the CRLF is not waited for, so a stream that ends
without one loses nothing (a frame that the next one follows without its CRLF
is counted in ``tolerated``). What it keeps is bounded by one maximal frame.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from drivers.hj212.codec import HEADER, MAX_SEGMENT, TRAILER, CrcMode, Frame, FrameError, Tolerance, parse

_WHITESPACE = b"\r\n\t "


class FrameSplitter:
    """``feed(bytes)`` returns, in order, every frame completed and every rejection."""

    def __init__(
        self,
        *,
        source: str = "hj212",
        max_segment: int = MAX_SEGMENT,
        crc_modes: Mapping[str, CrcMode] | None = None,
    ) -> None:
        self.source = source
        self.max_segment = max_segment
        self.crc_modes = crc_modes
        self.tolerated: Counter[Tolerance] = Counter()
        self._buffer = bytearray()
        self._after_frame = False  # the last thing taken was a frame: its CRLF should come next

    @property
    def buffered(self) -> int:
        """Bytes waiting for the rest of their frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        """Add bytes just received; what they completed, frames and rejections alike."""
        buf = self._buffer
        buf += data
        out: list[Frame | FrameError] = []
        while buf:
            if self._after_frame:
                if buf[:1] == b"\r" and len(buf) < 2:
                    break
                self._after_frame = False
                if buf[:2] == TRAILER:
                    del buf[:2]
                    continue
                self.tolerated[Tolerance.NO_CRLF] += 1
            start = buf.find(HEADER)
            if start < 0:
                keep = 1 if buf.endswith(b"#") else 0  # may be the first half of the next '##'
                self._skip(len(buf) - keep, out)
                break
            if start:
                self._skip(start, out)
            if len(buf) < 6:
                break
            length_field = bytes(buf[2:6])
            if not length_field.isdigit():
                why = f"4 digits must follow '##', not {length_field!r}"
                out.append(self._reject("length", why))
                del buf[:2]
                continue
            length = int(length_field)
            if length > self.max_segment:
                why = f"data segment of {length} bytes (max {self.max_segment})"
                out.append(self._reject("too_long", why))
                del buf[:2]
                continue
            end = 6 + length + 4
            early = buf.find(TRAILER, 6, end)
            if early >= 0:  # a data segment holds no CRLF: the length field is too big
                why = f"length field says {length}, the frame has {max(early - 10, 0)}"
                out.append(self._reject("length", why))
                del buf[: early + 2]
                continue
            if len(buf) < end:
                break
            out.append(self._take(end))
        return out

    def _take(self, end: int) -> Frame | FrameError:
        buf = self._buffer
        try:
            frame = parse(
                bytes(buf[:end]), source=self.source, max_segment=self.max_segment, crc_modes=self.crc_modes
            )
        except FrameError as error:
            actual_end = buf.find(TRAILER, end, 6 + self.max_segment + 4 + 2)
            next_frame = buf.find(HEADER, 2)
            if actual_end < 0 or 0 <= next_frame < actual_end:
                del buf[:2]  # resynchronise on the next '##'
                return error
            # the frame runs on to a later CRLF: report why it fails as a whole, drop all of it
            whole = bytes(buf[:actual_end])
            del buf[: actual_end + 2]
            return self._why_rejected(whole)
        del buf[:end]
        self._after_frame = True
        return frame

    def _why_rejected(self, raw: bytes) -> FrameError:
        try:
            parse(raw, source=self.source, max_segment=self.max_segment, crc_modes=self.crc_modes)
        except FrameError as error:
            return error
        return self._reject("length", "the length field does not match the data segment")

    def _skip(self, count: int, out: list[Frame | FrameError]) -> None:
        junk = bytes(self._buffer[:count])
        del self._buffer[:count]
        if junk.strip(_WHITESPACE):
            out.append(self._reject("garbage", f"{len(junk)} bytes between frames: {junk[:16]!r}"))

    def _reject(self, reason: str, message: str) -> FrameError:
        return FrameError(self.source, reason, message)
