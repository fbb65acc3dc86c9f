"""Split packets (Flag bit D): the PNUM parts of one message, joined in PNO order."""

from __future__ import annotations

import logging
from collections import OrderedDict

from drivers.hj212.codec import Frame, FrameError

log = logging.getLogger(__name__)

_SPLIT_FIELDS = ("PNUM", "PNO")


class SplitPackets:
    """Holds the parts of at most ``max_pending`` split messages; the oldest goes first."""

    def __init__(self, *, source: str = "hj212", max_pending: int = 8, max_parts: int = 64) -> None:
        self.source = source
        self.max_pending = max_pending
        self.max_parts = max_parts
        self.dropped = 0
        self._pending: OrderedDict[tuple[str | None, ...], dict[int, Frame]] = OrderedDict()

    def add(self, frame: Frame) -> Frame | None:
        """The whole message once ``frame`` completes it, else None (``frame`` is kept)."""
        total, number = self._numbers(frame)
        key = (frame.mn, frame.cn, frame.qn, str(total))
        parts = self._pending.setdefault(key, {})
        parts[number] = frame
        if len(parts) < total:
            if len(self._pending) > self.max_pending:
                (mn, cn, qn, pnum), kept = self._pending.popitem(last=False)
                self.dropped += 1
                log.warning(
                    "hj212 %s: split message MN=%s CN=%s QN=%s dropped with %d part(s) missing",
                    self.source,
                    mn,
                    cn,
                    qn,
                    int(pnum or 0) - len(kept),
                )
            return None
        del self._pending[key]
        first = parts[1]
        header = tuple((k, v) for k, v in first.header if k not in _SPLIT_FIELDS)
        items = tuple(item for n in range(1, total + 1) for item in parts[n].cp)
        return Frame(header, items)

    def _numbers(self, frame: Frame) -> tuple[int, int]:
        pnum, pno = frame.get("PNUM"), frame.get("PNO")
        if pnum is None or pno is None or not pnum.isdigit() or not pno.isdigit():
            why = f"needs numeric PNUM and PNO, not {pnum!r}, {pno!r}"
            raise FrameError(self.source, "split", why)
        total, number = int(pnum), int(pno)
        if not 1 <= number <= total <= self.max_parts:
            raise FrameError(
                self.source, "split", f"packet {number} of {total} (at most {self.max_parts} parts)"
            )
        return total, number
