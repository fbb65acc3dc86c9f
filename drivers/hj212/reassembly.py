"""Split packets (Flag bit D): the PNUM parts of one message, joined in PNO order.

Bounded in memory (``max_pending`` messages of at most ``max_parts`` parts) and
in time: a message whose parts stop coming is dropped ``max_age_s`` after its
first part, and the drop is logged with what was missing.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from drivers.hj212.codec import Frame, FrameError

log = logging.getLogger(__name__)

_SPLIT_FIELDS = ("PNUM", "PNO")


class SplitPackets:
    """Holds the parts of at most ``max_pending`` split messages; the oldest goes first."""

    def __init__(
        self,
        *,
        source: str = "hj212",
        max_pending: int = 8,
        max_parts: int = 64,
        max_age_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.max_pending = max_pending
        self.max_parts = max_parts
        self.max_age_s = max_age_s
        self.dropped = 0
        self._clock = clock
        self._pending: OrderedDict[tuple[str | None, ...], dict[int, Frame]] = OrderedDict()
        self._started: dict[tuple[str | None, ...], float] = {}

    def add(self, frame: Frame) -> Frame | None:
        """The whole message once ``frame`` completes it, else None (``frame`` is kept)."""
        total, number = self._numbers(frame)
        now = self._clock()
        while self._pending and now - self._started[next(iter(self._pending))] > self.max_age_s:
            self._drop("too old")
        key = (frame.mn, frame.cn, frame.qn, str(total))
        parts = self._pending.setdefault(key, {})
        self._started.setdefault(key, now)
        parts[number] = frame
        if len(parts) < total:
            if len(self._pending) > self.max_pending:
                self._drop("too many pending")
            return None
        del self._pending[key]
        del self._started[key]
        first = parts[1]
        header = tuple((k, v) for k, v in first.header if k not in _SPLIT_FIELDS)
        items = tuple(item for n in range(1, total + 1) for item in parts[n].cp)
        return Frame(header, items)

    def _drop(self, why: str) -> None:
        key, kept = self._pending.popitem(last=False)
        del self._started[key]
        mn, cn, qn, pnum = key
        self.dropped += 1
        log.warning(
            "hj212 %s: split message MN=%s CN=%s QN=%s dropped (%s) with %d part(s) missing",
            self.source,
            mn,
            cn,
            qn,
            why,
            int(pnum or 0) - len(kept),
        )

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
